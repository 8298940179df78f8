// Element types of activations as the torch-free layers (CUDA launchers, portable kernels) see them:
// the host code maps c10::ScalarType to this, so launchers need no torch headers.
#pragma once

namespace lavin_fast {

enum class ElemType : int { kFloat32 = 0, kBFloat16 = 1, kFloat16 = 2 };

inline const char* elem_type_name(ElemType t) {
  switch (t) {
    case ElemType::kFloat32: return "float32";
    case ElemType::kBFloat16: return "bfloat16";
    case ElemType::kFloat16: return "float16";
  }
  return "unknown";
}

}  // namespace lavin_fast
