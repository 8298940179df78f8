// c10::ScalarType -> ElemType, for the host files that hand activations to torch-free launchers (CUDA,
// simt). Kept apart from elem_type.h, which must stay free of torch headers.
#pragma once

#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>

#include "common/elem_type.h"

namespace lavin_fast {

// The host checks admit only these three dtypes before any launcher runs.
inline ElemType elem_type_of(c10::ScalarType t) {
  switch (t) {
    case c10::kFloat: return ElemType::kFloat32;
    case c10::kBFloat16: return ElemType::kBFloat16;
    case c10::kHalf: return ElemType::kFloat16;
    default: TORCH_INTERNAL_ASSERT(false, "lavin_fast: no kernels for dtype ", t);
  }
  return ElemType::kFloat32;
}

}  // namespace lavin_fast
