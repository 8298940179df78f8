// Which instruction-set variant of the CPU kernels to run. Follows ATen's own choice, so the
// ATEN_CPU_CAPABILITY environment variable (default, avx2, avx512) selects ours too: the tests use it to
// run every variant on one machine.
#pragma once

namespace lavin_fast::cpu {

enum class CpuIsa { kDefault = 0, kAvx2 = 1, kAvx512 = 2 };

CpuIsa cpu_isa();
const char* cpu_isa_name(CpuIsa isa);

// Picks the table of the variant to run; variants not compiled in fall back to the next lower one.
template <typename Table>
const Table& select_isa(const Table& default_table, const Table* avx2_table, const Table* avx512_table) {
  const CpuIsa isa = cpu_isa();
  if (isa >= CpuIsa::kAvx512 && avx512_table) return *avx512_table;
  if (isa >= CpuIsa::kAvx2 && avx2_table) return *avx2_table;
  return default_table;
}

}  // namespace lavin_fast::cpu
