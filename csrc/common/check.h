// Argument checks shared by every op. Each message names the op, the argument and what was expected,
// so a user can fix the call without reading our source. All checks run before any output is written.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <initializer_list>
#include <string>

namespace lavin_fast {

std::string shape_str(at::IntArrayRef sizes);
std::string dtype_name(at::ScalarType t);  // "float32", as Python spells it

// dtype must be one of `allowed`.
void check_dtype(const char* op, const char* name, const at::Tensor& t,
                 std::initializer_list<at::ScalarType> allowed);
// Floating dtypes our kernels compute in (fp32 accumulation for all three).
void check_float_dtype(const char* op, const char* name, const at::Tensor& t);
void check_same_device(const char* op, const char* name, const at::Tensor& t, const at::Tensor& ref,
                       const char* ref_name);
void check_dim(const char* op, const char* name, const at::Tensor& t, int64_t dim, const char* layout);
// `layout` spells the expected shape symbolically, e.g. "(B, D)".
void check_shape(const char* op, const char* name, const at::Tensor& t, at::IntArrayRef expected,
                 const char* layout);

// cu_seqlens: int32, 1-D, (S + 1,), cu[0] == 0, non-decreasing, cu[S] == total. Empty segments are
// allowed. Reads the values, so it must be called on a CPU tensor (the CUDA path checks shape and
// dtype only, to avoid a device synchronisation). Returns S.
int64_t check_cu_seqlens(const char* op, const at::Tensor& cu_seqlens, int64_t total);
void check_cu_seqlens_meta(const char* op, const at::Tensor& cu_seqlens);

// Row view of a tensor whose last dimension is contiguous: the stride (in elements) between
// consecutive rows when all leading dimensions collapse into one, or -1 when they do not.
int64_t uniform_row_stride(const at::Tensor& t);

// A (..., D) tensor seen as rows: zero-copy when its leading dims collapse to one stride (slices of a
// wider projection such as q of a fused qkv, expanded gradients), otherwise a contiguous copy.
struct Rows {
  at::Tensor t;
  int64_t stride;
};
Rows as_rows(const at::Tensor& t);

}  // namespace lavin_fast
