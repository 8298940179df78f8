// What every op's registration file (csrc/<op>/*_register.cpp: schemas, backends, registrations) shares:
// the dtype handed to torch-free launchers, how a simt backend runs one launcher call, the CUDA
// backends' launch check, the device guard, and the registration under CPU and CUDA.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>
#include <c10/util/string_view.h>

#include <optional>
#include <string_view>

#include "common/elem_type.h"
#include "simt/mode.h"

#ifdef LAVIN_FAST_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace lavin_fast {

// c10::ScalarType -> ElemType, for the host files that hand activations to torch-free launchers (CUDA,
// simt). The host checks admit only these three dtypes before any launcher runs.
inline ElemType elem_type_of(c10::ScalarType t) {
  switch (t) {
    case c10::kFloat: return ElemType::kFloat32;
    case c10::kBFloat16: return ElemType::kBFloat16;
    case c10::kHalf: return ElemType::kFloat16;
    default: TORCH_INTERNAL_ASSERT(false, "lavin_fast: no kernels for dtype ", t);
  }
  return ElemType::kFloat32;
}

// The CUDA registrations' allocations and launches go to the device of the op's main input. When that
// input is not on CUDA, the host side's device checks report it.
inline c10::OptionalDeviceGuard guard_device_of(const at::Tensor& t) {
  return c10::OptionalDeviceGuard(t.is_cuda() ? std::optional<c10::Device>(t.device()) : std::nullopt);
}

#ifdef LAVIN_FAST_WITH_CUDA
// A CUDA launcher's error (launch failure, or cudaErrorInvalidValue for what it does not take) as a
// c10::Error naming the kernels.
inline void check_launch(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, "lavin_fast: launching the CUDA ", what, " kernels failed: ",
              cudaGetErrorName(err), ": ", cudaGetErrorString(err));
}
#endif

// The backend of an op's CPU registration: its CPU kernels, or its CUDA kernels under the SIMT emulator
// while the backend switch (lavin_fast.simt) is on.
template <typename Backend>
const Backend& cpu_or_simt(const Backend& cpu, const Backend& simt) {
  return lf::emu::mode().enabled ? simt : cpu;
}

// Registers an op's functions, impl_all<&backend>(m) (a template of the backend getter), under CPU with
// cpu_backend and, in CUDA builds, under CUDA with cuda_backend. Used in the op's namespace, after
// #include <torch/library.h>.
#ifdef LAVIN_FAST_WITH_CUDA
#define LAVIN_FAST_CUDA_ONLY(...) __VA_ARGS__
#else
#define LAVIN_FAST_CUDA_ONLY(...)
#endif
#define LAVIN_FAST_IMPL_CPU_AND_CUDA(impl_all)                          \
  TORCH_LIBRARY_IMPL(lavin_fast, CPU, m) { impl_all<&cpu_backend>(m); } \
  LAVIN_FAST_CUDA_ONLY(TORCH_LIBRARY_IMPL(lavin_fast, CUDA, m) { impl_all<&cuda_backend>(m); })

// A schema's `str` argument as the host APIs take it.
inline std::string_view std_view(c10::string_view s) { return std::string_view(s.data(), s.size()); }

// How a simt backend runs one launcher call: with the schedule and seed of the backend switch
// (lavin_fast.simt.enabled), turning the emulator's errors into c10::Error (a Python RuntimeError
// naming the op). The host side has already rejected what the kernels do not take, so a launcher that
// still refuses is an internal error.
template <typename F>  // F: bool(lf::emu::Schedule, uint64_t seed)
void run_simt(const char* what, F&& call) {
  const lf::emu::Mode m = lf::emu::mode();
  bool ok = false;
  try {
    ok = call(m.schedule, m.seed);
  } catch (const lf::emu::Error& e) {
    TORCH_CHECK(false, "lavin_fast: ", what, ": ", e.what());
  }
  TORCH_INTERNAL_ASSERT(ok, "lavin_fast: ", what, ": the simt launcher rejected its arguments");
}

}  // namespace lavin_fast
