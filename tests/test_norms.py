"""The RMSNorm family against the float64 reference: values, gradients, layouts and dtypes, on every
backend (tests/helpers.py BACKENDS: the CPU kernels, the CUDA kernels under the SIMT emulator with
three schedules, the GPU when there is one)."""

import pytest
import torch

import lavin_fast
from lavin_fast import reference as ref
from tests.helpers import (DTYPES, assert_close, assert_grad_close, cu_seqlens, device_of, f64, randn, run_on,
                           with_backends)

# Sizes around the vector widths (16/32 lanes), the released model's (72 = head_dim, 2304 = hidden,
# 576 = K width), odd ones and the large end.
DIMS = [1, 7, 33, 72, 97, 576, 1025, 2304, 2305]
# simt runs every size too: its whole matrix (3 schedules each) takes about 15 s on 2 cores.
# Packed batches with empty and length-1 segments.
PACKED_LENGTHS = [[1], [3, 0, 1, 17, 5], [0, 9, 1, 0], [40, 1, 64]]


def _leaves(inputs, convert):
    return {k: (convert(v).requires_grad_(True)
                if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
            for k, v in inputs.items()}


def run_with_grads(fn, ref_fn, inputs, grad_dtype, backend="cpu"):
    """Runs fn on the inputs on `backend` (run_on), ref_fn on float64 copies and ref_fn on the inputs
    themselves (plain PyTorch in the test dtype: the error baseline), backpropagates one random
    gradient through all three, and returns (out, ref_out, grads, ref_grads, baseline_grads), ours
    back on the CPU."""
    refs = [_leaves(inputs, f64), _leaves(inputs, lambda v: v.clone())]
    ref_outs = [ref_fn(**r) for r in refs]
    g = randn(*ref_outs[0].shape, dtype=grad_dtype)
    device = device_of(backend)

    def ours():
        run = _leaves(inputs, lambda v: v.clone().to(device))
        out = fn(**run)
        out.backward(g.to(device, out.dtype))
        return out.cpu(), {k: v.grad.cpu() for k, v in run.items() if isinstance(v, torch.Tensor) and v.requires_grad}

    out, grads = run_on(backend, ours)
    for o, r in zip(ref_outs, refs):
        o.backward(g.to(o.dtype))
    ref_grads, baseline_grads = ({k: r[k].grad for k in grads} for r in refs)
    return out, ref_outs[0], grads, ref_grads, baseline_grads


def check_all(out, ref_out, grads, ref_grads, baseline_grads, dtype, param_dtypes):
    assert_close(out, ref_out, dtype, "output")
    for k, gr in grads.items():
        assert gr.dtype == param_dtypes.get(k, dtype), f"grad of {k}: dtype {gr.dtype}"
        assert_grad_close(gr, ref_grads[k], param_dtypes.get(k, dtype), f"grad of {k}",
                          baseline=baseline_grads[k])


# ---------------------------------------------------------------- rms_norm

@pytest.mark.parametrize("dtype", DTYPES)
@with_backends("backend,dim", DIMS)
@pytest.mark.parametrize("with_weight", [False, True])
def test_rms_norm(backend, dtype, dim, with_weight):
    inputs = dict(x=randn(5, 3, dim, dtype=dtype, scale=2.0, offset=0.5),
                  weight=randn(dim, dtype=dtype, offset=1.0) if with_weight else None)
    res = run_with_grads(lambda x, weight: lavin_fast.rms_norm(x, weight, eps=1e-6),
                         lambda x, weight: ref.rms_norm(x, weight, eps=1e-6), inputs, dtype, backend)
    check_all(*res, dtype, {})


# 2304 bf16: one 96-thread vectorised group per row and block; 16384: the forward's widest cached row
# (512 threads) and, for the backward, rows read twice (uncached); 16392: the forward's uncached path.
@with_backends("backend,dim", [2304, 16384, 16392])
def test_rms_norm_large_rows(backend, dim):
    dtype = torch.bfloat16
    inputs = dict(x=randn(3, dim, dtype=dtype), weight=randn(dim, dtype=dtype, offset=1.0))
    res = run_with_grads(lambda x, weight: lavin_fast.rms_norm(x, weight),
                         lambda x, weight: ref.rms_norm(x, weight), inputs, dtype, backend)
    check_all(*res, dtype, {})


@with_backends("backend")
def test_rms_norm_fp32_weight_with_half_input(backend):
    """apex-style mixed precision: fp32 parameters, bf16 activations; grads keep their own dtypes."""
    inputs = dict(x=randn(4, 72, dtype=torch.bfloat16), weight=randn(72, offset=1.0))
    res = run_with_grads(lambda x, weight: lavin_fast.rms_norm(x, weight),
                         lambda x, weight: ref.rms_norm(x, weight), inputs, torch.bfloat16, backend)
    check_all(*res, torch.bfloat16, {"weight": torch.float32})


@with_backends("backend")
def test_rms_norm_qk_norm_shape(backend):
    """QK-norm of the released model: weight over the whole projected width (32 heads x 72). 37 rows
    make the backward's weight gradient a split reduction (chunks of 16 rows, then the finalize)."""
    dtype = torch.bfloat16
    inputs = dict(x=randn(37, 32 * 72, dtype=dtype), weight=randn(32 * 72, dtype=dtype, offset=1.0))
    res = run_with_grads(lambda x, weight: lavin_fast.rms_norm(x, weight),
                         lambda x, weight: ref.rms_norm(x, weight), inputs, dtype, backend)
    check_all(*res, dtype, {})


@with_backends("backend")
def test_rms_norm_empty_rows(backend):
    def run():
        x = randn(0, 72).to(device_of(backend)).requires_grad_(True)
        w = randn(72).to(device_of(backend)).requires_grad_(True)
        y = lavin_fast.rms_norm(x, w)
        y.sum().backward()
        return y.cpu(), w.grad.cpu()

    y, grad_w = run_on(backend, run)
    assert y.shape == (0, 72)
    assert torch.equal(grad_w, torch.zeros(72))


# ---------------------------------------------------------------- rms_norm_modulate

@pytest.mark.parametrize("dtype", DTYPES)
@with_backends("backend,dim", DIMS)
@pytest.mark.parametrize("lengths", PACKED_LENGTHS, ids=str)
@pytest.mark.parametrize("with_shift", [False, True])
def test_modulate_packed(backend, dtype, dim, lengths, with_shift):
    cu = cu_seqlens(lengths)
    cu_dev = cu.to(device_of(backend))
    s = len(lengths)
    inputs = dict(x=randn(sum(lengths), dim, dtype=dtype, scale=2.0), scale=randn(s, dim, dtype=dtype),
                  shift=randn(s, dim, dtype=dtype) if with_shift else None)
    res = run_with_grads(
        lambda x, scale, shift: lavin_fast.rms_norm_modulate(x, scale, shift, cu_seqlens=cu_dev),
        lambda x, scale, shift: ref.rms_norm_modulate(x, scale, shift, cu_seqlens=cu), inputs, dtype, backend)
    check_all(*res, dtype, {})
    grads = res[2]
    for i, n in enumerate(lengths):  # a sample with no tokens gets exactly zero gradient
        if n == 0:
            assert torch.equal(grads["scale"][i], torch.zeros_like(grads["scale"][i]))


@pytest.mark.parametrize("dtype", DTYPES)
@with_backends("backend,dim", [1, 72, 2305])
@pytest.mark.parametrize("broadcast_dim", [False, True])
def test_modulate_padded(backend, dtype, dim, broadcast_dim):
    b, l = 3, 11
    shape = (b, 1, dim) if broadcast_dim else (b, dim)
    inputs = dict(x=randn(b, l, dim, dtype=dtype), scale=randn(*shape, dtype=dtype),
                  shift=randn(*shape, dtype=dtype))
    res = run_with_grads(
        lambda x, scale, shift: lavin_fast.rms_norm_modulate(x, scale, shift),
        lambda x, scale, shift: ref.rms_norm_modulate(x, scale.reshape(b, dim), shift.reshape(b, dim)),
        inputs, dtype, backend)
    check_all(*res, dtype, {})


@with_backends("backend")
def test_modulate_fp32_scale_with_bf16_input(backend):
    cu = cu_seqlens([4, 9])
    cu_dev = cu.to(device_of(backend))
    inputs = dict(x=randn(13, 72, dtype=torch.bfloat16), scale=randn(2, 72), shift=randn(2, 72))
    res = run_with_grads(
        lambda x, scale, shift: lavin_fast.rms_norm_modulate(x, scale, shift, cu_seqlens=cu_dev),
        lambda x, scale, shift: ref.rms_norm_modulate(x, scale, shift, cu_seqlens=cu), inputs,
        torch.bfloat16, backend)
    check_all(*res, torch.bfloat16, {"scale": torch.float32, "shift": torch.float32})


@with_backends("backend")
def test_modulate_packed_equals_padded(backend):
    """Packing is only a layout: equal-length samples give the padded result bit for bit."""
    dev = device_of(backend)
    x = randn(3, 8, 72).to(dev)
    scale, shift = randn(3, 72).to(dev), randn(3, 72).to(dev)
    padded, packed = run_on(backend, lambda: (
        lavin_fast.rms_norm_modulate(x, scale, shift),
        lavin_fast.rms_norm_modulate(x.reshape(24, 72), scale, shift, cu_seqlens=cu_seqlens([8] * 3, dev))))
    assert torch.equal(padded.reshape(24, 72), packed)


# ---------------------------------------------------------------- gated_rms_residual

@pytest.mark.parametrize("dtype", DTYPES)
@with_backends("backend,dim", DIMS)
@pytest.mark.parametrize("gate_act", ["tanh", "none"])
def test_gated_residual_packed(backend, dtype, dim, gate_act):
    lengths = [2, 0, 1, 13]
    cu = cu_seqlens(lengths)
    cu_dev = cu.to(device_of(backend))
    t = sum(lengths)
    inputs = dict(residual=randn(t, dim, dtype=dtype), y=randn(t, dim, dtype=dtype, scale=3.0),
                  gate=randn(len(lengths), dim, dtype=dtype))
    res = run_with_grads(
        lambda residual, y, gate: lavin_fast.gated_rms_residual(residual, y, gate, gate_act=gate_act,
                                                                cu_seqlens=cu_dev),
        lambda residual, y, gate: ref.gated_rms_residual(residual, y, gate, gate_act=gate_act,
                                                         cu_seqlens=cu), inputs, dtype, backend)
    check_all(*res, dtype, {})


@pytest.mark.parametrize("dtype", DTYPES)
@with_backends("backend")
def test_gated_residual_padded(backend, dtype):
    inputs = dict(residual=randn(2, 9, 2304, dtype=dtype), y=randn(2, 9, 2304, dtype=dtype),
                  gate=randn(2, 1, 2304, dtype=dtype))
    res = run_with_grads(
        lambda residual, y, gate: lavin_fast.gated_rms_residual(residual, y, gate),
        lambda residual, y, gate: ref.gated_rms_residual(residual, y, gate.squeeze(1)), inputs, dtype, backend)
    check_all(*res, dtype, {})


@with_backends("backend")
def test_gated_residual_mixed_stream_dtypes(backend):
    """fp32 residual stream with a bf16 sub-layer output (autocast): the result stays fp32."""
    r, y, g = randn(10, 72), randn(10, 72, dtype=torch.bfloat16), randn(1, 72)
    dev = device_of(backend)
    out = run_on(backend, lambda: lavin_fast.gated_rms_residual(
        r.to(dev), y.to(dev), g.to(dev), cu_seqlens=cu_seqlens([10], dev)).cpu())
    assert out.dtype == torch.float32
    assert_close(out, ref.gated_rms_residual(f64(r), f64(y), f64(g), cu_seqlens=cu_seqlens([10])),
                 torch.float32)


# ---------------------------------------------------------------- strides

@with_backends("backend")
def test_sliced_input_is_read_in_place(backend):
    """A slice of a wider projection (row stride > D) is normalised without a copy."""
    qkv = randn(17, 3 * 72)
    q = qkv[:, :72]
    w = randn(72, offset=1.0)
    dev = device_of(backend)
    out = run_on(backend, lambda: lavin_fast.rms_norm(qkv.to(dev)[:, :72], w.to(dev)).cpu())
    assert_close(out, ref.rms_norm(f64(q), f64(w)), torch.float32)


@with_backends("backend")
def test_non_collapsible_and_transposed_inputs(backend):
    dev = device_of(backend)
    x = randn(72, 9).t()  # last dim not contiguous
    out = run_on(backend, lambda: lavin_fast.rms_norm(x.to(dev)).cpu())
    assert_close(out, ref.rms_norm(f64(x)), torch.float32)
    x3 = randn(4, 6, 72).transpose(0, 1)  # leading dims do not collapse
    s = randn(6, 72)
    out = run_on(backend, lambda: lavin_fast.rms_norm_modulate(x3.to(dev), s.to(dev)).cpu())
    assert_close(out, ref.rms_norm_modulate(f64(x3), f64(s)), torch.float32)


@with_backends("backend")
def test_expanded_grad(backend):
    """y.sum().backward() sends a stride-0 gradient into the backward kernel."""
    x0 = randn(6, 72)
    xr = f64(x0).requires_grad_(True)

    def run():
        x = x0.clone().to(device_of(backend)).requires_grad_(True)
        lavin_fast.rms_norm(x).sum().backward()
        return x.grad.cpu()

    grad = run_on(backend, run)
    ref.rms_norm(xr).sum().backward()
    assert_grad_close(grad, xr.grad, torch.float32, "grad of x")


# ---------------------------------------------------------------- determinism

def test_backward_deterministic_across_threads():
    """The split of the per-sample reductions depends only on shapes, never on the thread count."""
    cu = cu_seqlens([700, 1, 300])
    x, scale, g = randn(1001, 72), randn(3, 72).requires_grad_(True), randn(1001, 72)
    grads = []
    threads = torch.get_num_threads()
    try:
        for n in (1, threads, 1):
            torch.set_num_threads(n)
            scale.grad = None
            lavin_fast.rms_norm_modulate(x, scale, cu_seqlens=cu).backward(g)
            grads.append(scale.grad.clone())
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(grads[0], gr) for gr in grads[1:])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("dim", [2304, 2305])
def test_outputs_beyond_cache_size(dtype, dim):
    """Outputs of 8 MiB and more are written with streaming stores (64-byte aligned rows only; D = 2305
    mixes aligned and unaligned rows)."""
    rows = (10 << 20) // (dim * dtype.itemsize)
    cu = cu_seqlens([rows - 700, 700])
    inputs = dict(x=randn(rows, dim, dtype=dtype), scale=randn(2, dim, dtype=dtype))
    res = run_with_grads(lambda x, scale: lavin_fast.rms_norm_modulate(x, scale, cu_seqlens=cu),
                         lambda x, scale: ref.rms_norm_modulate(x, scale, cu_seqlens=cu), inputs, dtype)
    check_all(*res, dtype, {})
