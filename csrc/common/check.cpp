#include "common/check.h"

#include <sstream>

namespace lavin_fast {

std::string shape_str(at::IntArrayRef sizes) {
  std::ostringstream s;
  s << "(";
  for (size_t i = 0; i < sizes.size(); ++i) s << (i ? ", " : "") << sizes[i];
  s << (sizes.size() == 1 ? ",)" : ")");
  return s.str();
}

std::string dtype_name(at::ScalarType t) {
  // The names users write in Python (torch.float32), not c10's (Float).
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kInt: return "int32";
    case at::kLong: return "int64";
    case at::kShort: return "int16";
    case at::kByte: return "uint8";
    case at::kChar: return "int8";
    case at::kBool: return "bool";
    default: return c10::toString(t);
  }
}

void check_dtype(const char* op, const char* name, const at::Tensor& t,
                 std::initializer_list<at::ScalarType> allowed) {
  for (auto a : allowed)
    if (t.scalar_type() == a) return;
  std::ostringstream s;
  bool first = true;
  for (auto a : allowed) {
    s << (first ? "" : " or ") << dtype_name(a);
    first = false;
  }
  TORCH_CHECK_TYPE(false, op, ": argument '", name, "' must have dtype ", s.str(), ", got ",
                   dtype_name(t.scalar_type()));
}

void check_float_dtype(const char* op, const char* name, const at::Tensor& t) {
  check_dtype(op, name, t, {at::kFloat, at::kBFloat16, at::kHalf});
}

void check_same_device(const char* op, const char* name, const at::Tensor& t, const at::Tensor& ref,
                       const char* ref_name) {
  TORCH_CHECK_VALUE(t.device() == ref.device(), op, ": argument '", name, "' must be on ", ref.device(),
                    " (the device of '", ref_name, "'), got ", t.device());
}

void check_dim(const char* op, const char* name, const at::Tensor& t, int64_t dim, const char* layout) {
  TORCH_CHECK_VALUE(t.dim() == dim, op, ": argument '", name, "' must be ", dim, "-D ", layout,
                    ", got shape ", shape_str(t.sizes()));
}

void check_shape(const char* op, const char* name, const at::Tensor& t, at::IntArrayRef expected,
                 const char* layout) {
  TORCH_CHECK_VALUE(t.sizes() == expected, op, ": argument '", name, "' must have shape ", layout,
                    " = ", shape_str(expected), ", got ", shape_str(t.sizes()));
}

void check_cu_seqlens_meta(const char* op, const at::Tensor& cu) {
  check_dtype(op, "cu_seqlens", cu, {at::kInt});
  TORCH_CHECK_VALUE(cu.dim() == 1 && cu.size(0) >= 1, op,
                    ": argument 'cu_seqlens' must be 1-D (S + 1,) with S >= 0, got shape ",
                    shape_str(cu.sizes()));
}

int64_t check_cu_seqlens(const char* op, const at::Tensor& cu, int64_t total) {
  check_cu_seqlens_meta(op, cu);
  const int64_t n = cu.size(0);
  const int64_t stride = cu.stride(0);
  const int32_t* c = cu.const_data_ptr<int32_t>();
  TORCH_CHECK_VALUE(c[0] == 0, op, ": argument 'cu_seqlens' must start at 0, got cu_seqlens[0] = ",
                    c[0]);
  for (int64_t i = 1; i < n; ++i) {
    TORCH_CHECK_VALUE(c[i * stride] >= c[(i - 1) * stride], op,
                      ": argument 'cu_seqlens' must be non-decreasing, got cu_seqlens[", i - 1,
                      "] = ", c[(i - 1) * stride], " > cu_seqlens[", i, "] = ", c[i * stride]);
  }
  TORCH_CHECK_VALUE(c[(n - 1) * stride] == total, op,
                    ": argument 'cu_seqlens' must end at the number of tokens ", total,
                    ", got cu_seqlens[-1] = ", c[(n - 1) * stride]);
  return n - 1;
}

int64_t uniform_row_stride(const at::Tensor& t) {
  if (t.dim() == 0 || (t.size(-1) > 1 && t.stride(-1) != 1)) return -1;
  // Leading dims of size 1 do not matter; the others must nest like a C-ordered array of rows.
  // A stride of 0 (an expanded gradient) is fine: rows are only read through it.
  int64_t stride = -1, expected = 0;
  for (int64_t d = t.dim() - 2; d >= 0; --d) {
    if (t.size(d) == 1) continue;
    if (stride < 0) {
      stride = t.stride(d);
    } else if (t.stride(d) != expected) {
      return -1;
    }
    expected = t.stride(d) * t.size(d);
  }
  return stride < 0 ? t.size(-1) : stride;
}

Rows as_rows(const at::Tensor& t) {
  const int64_t s = uniform_row_stride(t);
  if (s >= 0) return {t, s};
  at::Tensor c = t.contiguous();
  return {c, c.size(-1)};
}

}  // namespace lavin_fast
