// Which instruction-set variant of the CPU kernels to run. Follows ATen's own choice, so the
// ATEN_CPU_CAPABILITY environment variable (default, avx2, avx512) selects ours too: the tests use it to
// run every variant on one machine.
#pragma once

#include <type_traits>

namespace lavin_fast::cpu {

enum class CpuIsa { kDefault = 0, kAvx2 = 1, kAvx512 = 2 };

CpuIsa cpu_isa();
const char* cpu_isa_name(CpuIsa isa);
// Whether this CPU (and OS) can run the variant: ATen may name AVX512 where the OS has not enabled
// the 512-bit registers (seen in a VM), so our choice also asks the CPU.
bool cpu_supports(CpuIsa isa);

// Picks the table of the variant to run; variants not compiled in fall back to the next lower one.
template <typename Table>
const Table& select_isa(const Table& default_table, std::type_identity_t<const Table*> avx2_table,
                        std::type_identity_t<const Table*> avx512_table) {  // nullptr: not compiled
  const CpuIsa isa = cpu_isa();
  if (isa >= CpuIsa::kAvx512 && avx512_table) return *avx512_table;
  if (isa >= CpuIsa::kAvx2 && avx2_table) return *avx2_table;
  return default_table;
}

}  // namespace lavin_fast::cpu

// The variant table of a kernel family whose per-ISA files define `<table>_DEFAULT`, `<table>_AVX2`
// and `<table>_AVX512` (declare all three extern: a variant the build did not compile is never
// referenced, so its missing definition does not matter).
#ifdef LAVIN_FAST_CPU_AVX2
#define LAVIN_FAST_ISA_AVX2_TABLE(table) (&table##_AVX2)
#else
#define LAVIN_FAST_ISA_AVX2_TABLE(table) nullptr
#endif
#ifdef LAVIN_FAST_CPU_AVX512
#define LAVIN_FAST_ISA_AVX512_TABLE(table) (&table##_AVX512)
#else
#define LAVIN_FAST_ISA_AVX512_TABLE(table) nullptr
#endif
#define LAVIN_FAST_SELECT_ISA(table) \
  ::lavin_fast::cpu::select_isa(table##_DEFAULT, LAVIN_FAST_ISA_AVX2_TABLE(table), LAVIN_FAST_ISA_AVX512_TABLE(table))

// In a per-ISA file (compiled with -DCPU_CAPABILITY=<ISA>): defines `<table>_<ISA>`, this variant's
// table, from the members' initialisers.
#define LAVIN_FAST_CONCAT_(a, b) a##b
#define LAVIN_FAST_CONCAT(a, b) LAVIN_FAST_CONCAT_(a, b)
#define LAVIN_FAST_DEFINE_ISA_TABLE(Type, table, ...) \
  extern const Type LAVIN_FAST_CONCAT(table##_, CPU_CAPABILITY) = {__VA_ARGS__}

// In the file that picks: declares the variants of `table` and defines `getter()`, the table of the
// variant this CPU runs (chosen on first use, after ATen has read ATEN_CPU_CAPABILITY).
#define LAVIN_FAST_ISA_TABLE_GETTER(Type, table, getter)            \
  extern const Type table##_DEFAULT, table##_AVX2, table##_AVX512; \
  static const Type& getter() {                                     \
    static const Type& k = LAVIN_FAST_SELECT_ISA(table);            \
    return k;                                                       \
  }
