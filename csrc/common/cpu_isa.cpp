#include "common/cpu_isa.h"

#include <ATen/Version.h>

#include <string>

namespace lavin_fast::cpu {

bool cpu_supports(CpuIsa isa) {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return isa == CpuIsa::kDefault || (isa == CpuIsa::kAvx2 && avx2) || (isa == CpuIsa::kAvx512 && avx512);
#else
  return isa == CpuIsa::kDefault;
#endif
}

CpuIsa cpu_isa() {
  static const CpuIsa isa = [] {
    const std::string aten = at::get_cpu_capability();  // honours ATEN_CPU_CAPABILITY
    if (aten == "AVX512" && cpu_supports(CpuIsa::kAvx512)) return CpuIsa::kAvx512;
    if ((aten == "AVX512" || aten == "AVX2") && cpu_supports(CpuIsa::kAvx2)) return CpuIsa::kAvx2;
    return CpuIsa::kDefault;
  }();
  return isa;
}

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAvx512: return "AVX512";
    case CpuIsa::kAvx2: return "AVX2";
    default: return "DEFAULT";
  }
}

}  // namespace lavin_fast::cpu
