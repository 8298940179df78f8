"""GPU checks the backend-parametrised tests leave out (skipped without a GPU; scripts/gpu-check runs
them with every other "cuda" test):

- the deterministic backward, run twice on the same inputs, gives the same bits: varlen attention with
  deterministic=True (dQ by query tiles instead of fp32 atomics), and the RMSNorm family and
  qk_norm_rope, whose CUDA backwards reduce the weight / per-sample gradients without atomics; at
  sizes where those reductions span many blocks, and against the float64 reference;
- causal_conv3d on CUDA (no backend parametrisation covers it): the bf16/fp16 implicit-GEMM forward
  kernel and the fp32 and backward composites, against the float64 reference.
"""

import pytest
import torch

import lavin_fast
from lavin_fast import reference as ref
from lavin_fast.attention import TileMask, varlen_attention
from lavin_fast.conv import causal_conv3d
from tests.attention_cases import make_problem
from tests.helpers import assert_bitwise_equal, assert_close, assert_grad_close, cu_seqlens, f64, randn

DEVICE = "cuda"
pytestmark = pytest.mark.skipif(not (torch.cuda.is_available() and lavin_fast._C.cuda_compiled()),
                                reason="needs a CUDA GPU and lavin_fast built with its CUDA kernels")


def _grads_twice(fn, leaves, grad_out):
    """(output, grads) of two runs of fn on fresh copies of the same leaves."""
    runs = []
    for _ in range(2):
        xs = [t.detach().clone().requires_grad_(True) for t in leaves]
        out = fn(*xs)
        runs.append((out.detach(), torch.autograd.grad(out, xs, grad_out)))
    return runs


# ---------------------------------------------------------------- attention, deterministic=True

ATTENTION_CASES = {
    # LaVin-DiT's heads, long segments (several key blocks add into every dQ row), every mask kind
    "bf16-d72-h32/8-causal+frames": dict(dtype=torch.bfloat16, H=32, H_kv=8, D=72, masks="causal+frames",
                                         lens_q=[1100, 1, 0, 513], lens_k=[1100, 64, 3, 700]),
    "fp16-d128-h8/2-tiles": dict(dtype=torch.float16, H=8, H_kv=2, D=128, masks="tiles",
                                 lens_q=[777, 65], lens_k=[901, 65]),
    "bf16-d64-h8/1-none": dict(dtype=torch.bfloat16, H=8, H_kv=1, D=64, masks="none", lens_q=[2048], lens_k=[2048]),
}


@pytest.mark.parametrize("case", ATTENTION_CASES)
def test_attention_backward_deterministic_twice(case):
    c = ATTENTION_CASES[case]
    dtype = c["dtype"]
    args, kw = make_problem(31, H=c["H"], H_kv=c["H_kv"], D=c["D"], dtype=dtype, masks=c["masks"],
                            lens_q=c["lens_q"], lens_k=c["lens_k"], device=DEVICE)
    q, k, v, *rest = args
    g = randn(*q.shape, dtype=dtype).to(DEVICE)
    runs = _grads_twice(lambda *qkv: varlen_attention(*qkv, *rest, **kw, deterministic=True)[0], (q, k, v), g)
    assert_bitwise_equal(runs[0], runs[1], f"{case}: deterministic backward run twice")
    # ... and right: against the float64 reference, with plain fp32 autograd as the error baseline.
    cpu_rest = [r.cpu() if isinstance(r, torch.Tensor) else r for r in rest]
    cpu_kw = {n: (TileMask(t.mask.cpu(), t.tile_q, t.tile_k) if isinstance(t, TileMask) else
                  t.cpu() if isinstance(t, torch.Tensor) else t) for n, t in kw.items()}
    grads = {}
    for name, convert in (("ref", f64), ("base", lambda t: t.detach().cpu().float())):
        leaves = [convert(t).cpu().requires_grad_(True) for t in (q, k, v)]
        out, _ = ref.varlen_attention(*leaves, *cpu_rest, **cpu_kw)
        grads[name] = torch.autograd.grad(out, leaves, g.cpu().to(out.dtype))
    for name, got, want, base in zip("qkv", runs[0][1], grads["ref"], grads["base"]):
        assert_grad_close(got.cpu(), want, dtype, f"{case} grad_{name}", baseline=base)


# ---------------------------------------------------------------- norms and rope: bitwise twice

T_ROWS = 10240
SEGMENTS = [4096, 1, 0, 3072, 3071]


def _norm_problem(op, dtype):
    d, s = 2304, len(SEGMENTS)
    cu = cu_seqlens(SEGMENTS, DEVICE)
    x, y = randn(T_ROWS, d, dtype=dtype).to(DEVICE), randn(T_ROWS, d, dtype=dtype).to(DEVICE)
    per_sample = randn(s, d, dtype=dtype, scale=0.1).to(DEVICE)
    if op == "rms_norm_weight":
        return (lambda x_, w_: lavin_fast.rms_norm(x_, w_, 1e-6)), (x, 1 + per_sample[0])
    if op == "rms_norm_modulate":
        return (lambda x_, s_, b_: lavin_fast.rms_norm_modulate(x_, s_, b_, cu_seqlens=cu)), (x, per_sample,
                                                                                               per_sample.flip(0))
    if op == "gated_rms_residual":
        return (lambda r_, y_, g_: lavin_fast.gated_rms_residual(r_, y_, g_, gate_act="tanh", cu_seqlens=cu)), (
            x, y, per_sample)
    raise ValueError(op)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("op", ["rms_norm_weight", "rms_norm_modulate", "gated_rms_residual"])
def test_norm_backward_twice_bitwise(op, dtype):
    fn, leaves = _norm_problem(op, dtype)
    g = randn(T_ROWS, 2304, dtype=dtype).to(DEVICE)
    runs = _grads_twice(fn, leaves, g)
    assert_bitwise_equal(runs[0], runs[1], f"{op}: backward run twice")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("heads", [32, 8])
def test_qk_norm_rope_backward_twice_bitwise(dtype, heads):
    from lavin_fast.rope import joint_positions
    pos = joint_positions(9, 1, 32, 32, device=DEVICE)  # 10 frames of 32 x 32 tokens
    x = randn(pos.shape[0], heads * 72, dtype=dtype).to(DEVICE)
    w = randn(heads * 72, dtype=dtype, offset=1.0, scale=0.2).to(DEVICE)
    g = randn(pos.shape[0], heads, 72, dtype=dtype).to(DEVICE)
    runs = _grads_twice(lambda x_, w_: lavin_fast.qk_norm_rope(x_, w_, pos, heads), (x, w), g)
    assert_bitwise_equal(runs[0], runs[1], "qk_norm_rope: backward run twice")


# ---------------------------------------------------------------- causal_conv3d on CUDA

CONV_CASES = [
    # (n, c, t, h, w, o, kernel, stride, temporal_pad): K from 3 to 3456, O past one 64-channel tile
    (1, 3, 5, 7, 9, 6, (3, 3, 3), (1, 1, 1), "replicate"),
    (2, 4, 3, 6, 5, 70, (3, 3, 3), (2, 2, 2), "zeros"),
    (1, 5, 4, 5, 7, 8, (3, 1, 1), (1, 1, 1), "cache"),
    (1, 16, 2, 5, 6, 16, (1, 1, 1), (1, 1, 1), "zeros"),
    (1, 128, 9, 16, 16, 128, (3, 3, 3), (1, 1, 1), "replicate"),  # the ST-VAE's 128-channel layer
]


def _conv_inputs(case, dtype):
    n, c, t, h, w, o, k, stride, mode = case
    x = randn(n, c, t, h, w, dtype=dtype)
    weight = randn(o, c, *k, dtype=dtype, scale=(c * k[0] * k[1] * k[2]) ** -0.5)
    bias = randn(o, dtype=dtype)
    cache = randn(n, c, k[0] - 1, h, w, dtype=dtype) if mode == "cache" else None
    kw = dict(stride=stride, spatial_padding=(k[1] // 2, k[2] // 2),
              temporal_pad="replicate" if mode == "cache" else mode)
    return x, weight, bias, cache, kw


@pytest.fixture
def no_tf32():
    """fp32 runs the composite on cuDNN, which takes TF32 by default (1e-3 relative error)."""
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = before


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=str)
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"c{c[1]}-o{c[5]}-{c[6]}-s{c[7]}-{c[8]}")
def test_causal_conv3d_forward(case, dtype, no_tf32):
    x, weight, bias, cache, kw = _conv_inputs(case, dtype)
    y = causal_conv3d(*(t.to(DEVICE) for t in (x, weight, bias)), cache=None if cache is None else cache.to(DEVICE),
                      **kw)
    expected = ref.causal_conv3d(f64(x), f64(weight), f64(bias), cache=f64(cache), **kw)
    assert_close(y.cpu(), expected, dtype, f"forward {case}")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=str)
@pytest.mark.parametrize("layout", ["ncdhw", "channels_last"])
def test_causal_conv3d_layouts_and_gradients(dtype, layout, no_tf32):
    x, weight, bias, _, kw = _conv_inputs((1, 8, 5, 9, 10, 12, (3, 3, 3), (1, 1, 1), "replicate"), dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last_3d)
    g = randn(1, 12, 5, 9, 10, dtype=dtype)
    leaves = [t.to(DEVICE).requires_grad_(True) for t in (x, weight, bias)]
    y = causal_conv3d(*leaves, **kw)
    grads = torch.autograd.grad(y, leaves, g.to(DEVICE))
    r_leaves = [f64(t).requires_grad_(True) for t in (x, weight, bias)]
    r_y = ref.causal_conv3d(*r_leaves, **kw)
    r_grads = torch.autograd.grad(r_y, r_leaves, f64(g))
    b_leaves = [t.detach().float().requires_grad_(True) for t in (x, weight, bias)]
    b_grads = torch.autograd.grad(ref.causal_conv3d(*b_leaves, **kw), b_leaves, g.float())
    assert_close(y.cpu(), r_y.detach(), dtype, f"{layout} forward")
    for name, got, want, base in zip(("x", "weight", "bias"), grads, r_grads, b_grads):
        assert got.dtype == dtype
        assert_grad_close(got.cpu(), want, dtype, f"{layout} grad_{name}", baseline=base)
