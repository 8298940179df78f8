#include "attention/attention_api.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "common/alloc.h"
#include "common/check.h"
#include "common/backend.h"

namespace lavin_fast::attention {
namespace {

constexpr const char* kFwd = "lavin_fast.varlen_attention";
constexpr const char* kBwd = "lavin_fast.varlen_attention_backward";

// Kernels read the last dimension contiguously and take any row and head strides.
at::Tensor last_dim_contiguous(const at::Tensor& t) { return t.stride(-1) == 1 ? t : t.contiguous(); }

void check_same_dtype(const char* op, const char* name, const at::Tensor& t, const at::Tensor& ref,
                      const char* ref_name) {
  TORCH_CHECK_TYPE(t.scalar_type() == ref.scalar_type(), op, ": argument '", name,
                   "' must have the dtype of '", ref_name, "' (", dtype_name(ref.scalar_type()),
                   "), got ", dtype_name(t.scalar_type()));
}

void check_qkv(const char* op, const Backend& be, const at::Tensor& q, const at::Tensor& k,
               const at::Tensor& v) {
  check_float_dtype(op, "q", q);
  check_same_dtype(op, "k", k, q, "q");
  check_same_dtype(op, "v", v, q, "q");
  check_same_device(op, "k", k, q, "q");
  check_same_device(op, "v", v, q, "q");
  check_dim(op, "q", q, 3, "(total_q, H, D)");
  check_dim(op, "k", k, 3, "(total_k, H_kv, D)");
  check_dim(op, "v", v, 3, "(total_k, H_kv, D)");
  TORCH_CHECK_VALUE(q.size(1) >= 1 && q.size(2) >= 1, op,
                    ": argument 'q' must have H >= 1 heads and head_dim D >= 1, got shape ",
                    shape_str(q.sizes()));
  check_shape(op, "k", k, {k.size(0), k.size(1), q.size(2)}, "(total_k, H_kv, D) with D = q.shape[2]");
  TORCH_CHECK_VALUE(k.size(1) >= 1 && q.size(1) % k.size(1) == 0, op,
                    ": the number of query heads H = q.shape[1] = ", q.size(1),
                    " must be a multiple of the number of KV heads H_kv = k.shape[1] = ", k.size(1));
  check_shape(op, "v", v, k.sizes(), "(total_k, H_kv, D) = k.shape");
  TORCH_CHECK_VALUE(q.size(0) <= std::numeric_limits<int32_t>::max() &&
                        k.size(0) <= std::numeric_limits<int32_t>::max(),
                    op, ": at most 2^31 - 1 tokens are supported (cu_seqlens are int32), got total_q = ",
                    q.size(0), ", total_k = ", k.size(0));
  const char* why = be.unsupported(elem_type_of(q.scalar_type()), static_cast<int>(q.size(2)), q.size(1));
  TORCH_CHECK_VALUE(why == nullptr, op, ": unsupported (dtype, head_dim) = (", dtype_name(q.scalar_type()),
                    ", q.shape[2] = ", q.size(2), ") with H = q.shape[1] = ", q.size(1), " heads on the ",
                    be.name, " backend: ", why ? why : "");
}

// cu_seqlens: int32 1-D (S + 1,) on q's device, max_seqlen in [0, 2^31 - 1].
void check_cu_meta(const char* op, const char* name, const at::Tensor& cu, const char* max_name,
                   int64_t max_seqlen, const at::Tensor& q) {
  check_same_device(op, name, cu, q, "q");
  check_dtype(op, name, cu, {at::kInt});
  TORCH_CHECK_VALUE(cu.dim() == 1 && cu.size(0) >= 1, op, ": argument '", name,
                    "' must be 1-D (S + 1,) with S >= 0 segments, got shape ", shape_str(cu.sizes()));
  TORCH_CHECK_VALUE(max_seqlen >= 0 && max_seqlen <= std::numeric_limits<int32_t>::max(), op,
                    ": argument '", max_name, "' must be in [0, 2^31 - 1], got ", max_seqlen);
}

// Values (backends that validate them, i.e. CPU tensors): starts at 0, non-decreasing, ends at
// `total`, every segment length <= max_seqlen.
void check_cu_values(const char* op, const char* name, const at::Tensor& cu, int64_t total,
                     const char* total_name, const char* max_name, int64_t max_seqlen) {
  const at::Tensor c = cu.contiguous();
  const int32_t* p = c.const_data_ptr<int32_t>();
  const int64_t n = c.size(0);
  TORCH_CHECK_VALUE(p[0] == 0, op, ": argument '", name, "' must start at 0, got ", name, "[0] = ", p[0]);
  int64_t longest = 0;
  for (int64_t i = 1; i < n; ++i) {
    TORCH_CHECK_VALUE(p[i] >= p[i - 1], op, ": argument '", name, "' must be non-decreasing, got ",
                      name, "[", i - 1, "] = ", p[i - 1], " > ", name, "[", i, "] = ", p[i]);
    longest = std::max<int64_t>(longest, p[i] - p[i - 1]);
  }
  TORCH_CHECK_VALUE(p[n - 1] == total, op, ": argument '", name, "' must end at ", total_name, " = ",
                    total, ", got ", name, "[-1] = ", p[n - 1]);
  TORCH_CHECK_VALUE(longest <= max_seqlen, op, ": argument '", max_name,
                    "' must be >= every segment length of '", name, "' (the longest is ", longest,
                    "), got ", max_seqlen);
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Everything a kernel call needs, validated; keeps the contiguous copies alive with the params.
struct Prepared {
  at::Tensor q, k, v, cu_q, cu_k, frame_q, frame_k, tiles;
  VarlenAttentionFwdParams p;
};

Prepared prepare(const char* op, const Backend& be, const at::Tensor& q, const at::Tensor& k,
                 const at::Tensor& v, const at::Tensor& cu_seqlens_q, const at::Tensor& cu_seqlens_k,
                 int64_t max_seqlen_q, int64_t max_seqlen_k, double softmax_scale, bool causal,
                 const std::optional<at::Tensor>& frame_ids_q,
                 const std::optional<at::Tensor>& frame_ids_k,
                 const std::optional<at::Tensor>& tile_mask, int64_t tile_q, int64_t tile_k) {
  check_qkv(op, be, q, k, v);
  const int64_t total_q = q.size(0), total_k = k.size(0);
  check_cu_meta(op, "cu_seqlens_q", cu_seqlens_q, "max_seqlen_q", max_seqlen_q, q);
  check_cu_meta(op, "cu_seqlens_k", cu_seqlens_k, "max_seqlen_k", max_seqlen_k, q);
  TORCH_CHECK_VALUE(cu_seqlens_k.size(0) == cu_seqlens_q.size(0), op,
                    ": argument 'cu_seqlens_k' must have the length of 'cu_seqlens_q' (S + 1 = ",
                    cu_seqlens_q.size(0), "), got ", cu_seqlens_k.size(0));
  const int64_t S = cu_seqlens_q.size(0) - 1;
  if (be.validates_cu_seqlens) {
    check_cu_values(op, "cu_seqlens_q", cu_seqlens_q, total_q, "total_q = q.shape[0]", "max_seqlen_q",
                    max_seqlen_q);
    check_cu_values(op, "cu_seqlens_k", cu_seqlens_k, total_k, "total_k = k.shape[0]", "max_seqlen_k",
                    max_seqlen_k);
  }
  TORCH_CHECK_VALUE(std::isfinite(softmax_scale), op, ": argument 'softmax_scale' must be finite, got ",
                    softmax_scale);
  TORCH_CHECK_VALUE(frame_ids_q.has_value() == frame_ids_k.has_value(), op,
                    ": arguments 'frame_ids_q' and 'frame_ids_k' must be given together (got only '",
                    frame_ids_q.has_value() ? "frame_ids_q" : "frame_ids_k", "')");
  Prepared r;
  if (frame_ids_q.has_value()) {
    for (auto [name, f, total, layout] :
         {std::tuple{"frame_ids_q", &*frame_ids_q, total_q, "(total_q,)"},
          std::tuple{"frame_ids_k", &*frame_ids_k, total_k, "(total_k,)"}}) {
      check_same_device(op, name, *f, q, "q");
      check_dtype(op, name, *f, {at::kInt});
      check_shape(op, name, *f, {total}, layout);
    }
    r.frame_q = frame_ids_q->contiguous();
    r.frame_k = frame_ids_k->contiguous();
  }
  int64_t n_tq = 0, n_tk = 0;
  if (tile_mask.has_value()) {
    TORCH_CHECK_VALUE(tile_q > 0 && tile_k > 0 && tile_q <= std::numeric_limits<int32_t>::max() &&
                          tile_k <= std::numeric_limits<int32_t>::max(),
                      op, ": arguments 'tile_q' and 'tile_k' must be > 0 with a tile_mask, got tile_q = ",
                      tile_q, ", tile_k = ", tile_k);
    check_same_device(op, "tile_mask", *tile_mask, q, "q");
    check_dtype(op, "tile_mask", *tile_mask, {at::kBool});
    n_tq = ceil_div(max_seqlen_q, tile_q);
    n_tk = ceil_div(max_seqlen_k, tile_k);
    check_shape(op, "tile_mask", *tile_mask, {S, n_tq, n_tk},
                "(S, ceil(max_seqlen_q / tile_q), ceil(max_seqlen_k / tile_k))");
    r.tiles = tile_mask->contiguous();
  }

  r.q = last_dim_contiguous(q);
  r.k = last_dim_contiguous(k);
  r.v = last_dim_contiguous(v);
  r.cu_q = cu_seqlens_q.contiguous();
  r.cu_k = cu_seqlens_k.contiguous();
  VarlenAttentionFwdParams& p = r.p;
  p.dtype = elem_type_of(q.scalar_type());
  p.num_segments = static_cast<int>(S);
  p.total_q = total_q;
  p.total_k = total_k;
  p.max_seqlen_q = static_cast<int>(max_seqlen_q);
  p.max_seqlen_k = static_cast<int>(max_seqlen_k);
  p.num_heads = static_cast<int>(q.size(1));
  p.num_kv_heads = static_cast<int>(k.size(1));
  p.head_dim = static_cast<int>(q.size(2));
  p.softmax_scale = static_cast<float>(softmax_scale);
  p.cu_seqlens_q = r.cu_q.const_data_ptr<int32_t>();
  p.cu_seqlens_k = r.cu_k.const_data_ptr<int32_t>();
  p.mask.causal = causal;
  if (r.frame_q.defined()) {
    p.mask.frame_q = r.frame_q.const_data_ptr<int32_t>();
    p.mask.frame_k = r.frame_k.const_data_ptr<int32_t>();
  }
  if (r.tiles.defined()) {
    p.mask.tile_mask = reinterpret_cast<const uint8_t*>(r.tiles.const_data_ptr<bool>());
    p.mask.tile_q = static_cast<int>(tile_q);
    p.mask.tile_k = static_cast<int>(tile_k);
    p.mask.n_tiles_q = static_cast<int>(n_tq);
    p.mask.n_tiles_k = static_cast<int>(n_tk);
  }
  p.q = r.q.const_data_ptr();
  p.q_row_stride = r.q.stride(0);
  p.q_head_stride = r.q.stride(1);
  p.k = r.k.const_data_ptr();
  p.k_row_stride = r.k.stride(0);
  p.k_head_stride = r.k.stride(1);
  p.v = r.v.const_data_ptr();
  p.v_row_stride = r.v.stride(0);
  p.v_head_stride = r.v.stride(1);
  return r;
}

void check_like(const char* op, const char* name, const at::Tensor& t, const at::Tensor& ref,
                const char* ref_name) {
  check_same_device(op, name, t, ref, ref_name);
  check_same_dtype(op, name, t, ref, ref_name);
  check_shape(op, name, t, ref.sizes(), "q.shape");
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> varlen_attention(
    const Backend& be, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& cu_seqlens_q, const at::Tensor& cu_seqlens_k, int64_t max_seqlen_q,
    int64_t max_seqlen_k, double softmax_scale, bool causal,
    const std::optional<at::Tensor>& frame_ids_q, const std::optional<at::Tensor>& frame_ids_k,
    const std::optional<at::Tensor>& tile_mask, int64_t tile_q, int64_t tile_k) {
  Prepared r = prepare(kFwd, be, q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                       softmax_scale, causal, frame_ids_q, frame_ids_k, tile_mask, tile_q, tile_k);
  at::Tensor out = empty_output(q.sizes(), q.options().memory_format(at::MemoryFormat::Contiguous));
  at::Tensor lse = empty_output({q.size(1), q.size(0)}, q.options().dtype(at::kFloat));
  at::Tensor lse_residual = empty_output({q.size(1), q.size(0)}, q.options().dtype(at::kFloat));
  if (r.p.total_q == 0) return {out, lse, lse_residual};
  if (r.p.total_k == 0) {  // no query sees a key
    out.zero_();
    lse.fill_(-std::numeric_limits<float>::infinity());
    lse_residual.zero_();
    return {out, lse, lse_residual};
  }
  r.p.out = out.data_ptr();
  r.p.lse = lse.data_ptr<float>();
  if (be.writes_lse_residual)
    r.p.lse_residual = lse_residual.data_ptr<float>();
  else
    lse_residual.zero_();
  be.fwd(r.p);
  return {out, lse, lse_residual};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> varlen_attention_backward(
    const Backend& be, const at::Tensor& grad_out, const at::Tensor& q, const at::Tensor& k,
    const at::Tensor& v, const at::Tensor& out, const at::Tensor& lse,
    const std::optional<at::Tensor>& lse_residual, const at::Tensor& cu_seqlens_q,
    const at::Tensor& cu_seqlens_k, int64_t max_seqlen_q, int64_t max_seqlen_k, double softmax_scale,
    bool causal, const std::optional<at::Tensor>& frame_ids_q,
    const std::optional<at::Tensor>& frame_ids_k, const std::optional<at::Tensor>& tile_mask,
    int64_t tile_q, int64_t tile_k, bool deterministic) {
  Prepared r = prepare(kBwd, be, q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                       softmax_scale, causal, frame_ids_q, frame_ids_k, tile_mask, tile_q, tile_k);
  check_like(kBwd, "grad_out", grad_out, q, "q");
  check_like(kBwd, "out", out, q, "q");
  check_same_device(kBwd, "lse", lse, q, "q");
  check_dtype(kBwd, "lse", lse, {at::kFloat});
  check_shape(kBwd, "lse", lse, {q.size(1), q.size(0)}, "(H, total_q)");
  if (lse_residual) {
    check_same_device(kBwd, "lse_residual", *lse_residual, q, "q");
    check_dtype(kBwd, "lse_residual", *lse_residual, {at::kFloat});
    check_shape(kBwd, "lse_residual", *lse_residual, {q.size(1), q.size(0)}, "(H, total_q)");
  }

  at::Tensor grad_q = empty_output(q.sizes(), q.options().memory_format(at::MemoryFormat::Contiguous));
  at::Tensor grad_k = empty_output(k.sizes(), k.options().memory_format(at::MemoryFormat::Contiguous));
  at::Tensor grad_v = empty_output(v.sizes(), v.options().memory_format(at::MemoryFormat::Contiguous));
  if (r.p.total_q == 0 || r.p.total_k == 0) {  // no query sees a key: every gradient is zero
    grad_q.zero_();
    grad_k.zero_();
    grad_v.zero_();
    return {grad_q, grad_k, grad_v};
  }
  const at::Tensor g = last_dim_contiguous(grad_out);
  const at::Tensor o = out.contiguous();
  const at::Tensor l = lse.contiguous();
  const at::Tensor lr = lse_residual ? lse_residual->contiguous() : at::Tensor();
  VarlenAttentionBwdParams p;
  static_cast<VarlenAttentionFwdParams&>(p) = r.p;
  p.out = const_cast<void*>(o.const_data_ptr());  // read only in the backward
  p.lse = const_cast<float*>(l.const_data_ptr<float>());
  p.lse_residual = lr.defined() ? const_cast<float*>(lr.const_data_ptr<float>()) : nullptr;
  p.grad_out = g.const_data_ptr();
  p.grad_out_row_stride = g.stride(0);
  p.grad_out_head_stride = g.stride(1);
  p.grad_q = grad_q.data_ptr();
  p.grad_k = grad_k.data_ptr();
  p.grad_v = grad_v.data_ptr();
  p.deterministic = deterministic;
  at::Tensor workspace;
  const int64_t ws = be.bwd_workspace_floats(p);
  if (ws > 0) {
    workspace = at::zeros({ws}, q.options().dtype(at::kFloat));
    p.workspace = workspace.data_ptr<float>();
    p.workspace_floats = ws;
  }
  be.bwd(p);
  return {grad_q, grad_k, grad_v};
}

}  // namespace lavin_fast::attention
