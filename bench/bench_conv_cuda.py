"""causal_conv3d on the GPU, bf16, at the ST-VAE decoder's full-resolution layer (128 channels, 3x3x3,
17 frames of 256 x 256), NCDHW and channels-last (GPU only): lavin_fast (its implicit-GEMM forward
kernel; the backward is the ATen composite on cuDNN) against what every causal VAE does, replicate-pad
the first frame (a padded copy of the input) then cuDNN's conv3d, eager and under torch.compile. The
peers' outputs are checked against lavin_fast's once, outside the timed region; the harness records
each one's peak extra memory, where the padded copy shows.

FLOPs 2 * C_out * C_in * 27 per output element (forward; forward+backward 3x). Bytes that must move:
x read, y written (+ the weight), forward+backward also grad_y read, grad_x written.
"""

import functools

import pytest
import torch

from bench.bench_conv import K, pad_conv3d

C, T, H, W = 128, 17, 256, 256
LAYOUTS = ("ncdhw", "cl")
IMPLS = ("lavin_fast", "pad+conv3d", "compile pad+conv3d")
REL_TOL = 2e-2  # bf16 outputs, relative Frobenius error


@functools.cache
def _compiled():
    return torch.compile(pad_conv3d, dynamic=False)


def fn_of(impl):
    if impl == "lavin_fast":
        from lavin_fast.conv import causal_conv3d
        return lambda x, w, b: causal_conv3d(x, w, b, spatial_padding=1)
    return {"pad+conv3d": pad_conv3d, "compile pad+conv3d": _compiled()}[impl]


def inputs(layout, device, requires_grad, dtype=torch.bfloat16):
    g = torch.Generator(device).manual_seed(0)
    x = torch.randn(1, C, T, H, W, device=device, dtype=dtype, generator=g)
    if layout == "cl":
        x = x.contiguous(memory_format=torch.channels_last_3d)
    w = (torch.randn(C, C, K, K, K, device=device, generator=g) * (C * K ** 3) ** -0.5).to(dtype)
    b = torch.randn(C, device=device, generator=g).to(dtype)
    return tuple(t.requires_grad_(requires_grad) for t in (x, w, b))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("passes", ["fwd", "fwd+bwd"])
def test_causal_conv3d_gpu(benchmark, harness, device, quick, passes, layout, impl):
    if device.type != "cuda":
        pytest.skip("GPU suite (--device cuda)")
    if quick and passes != "fwd":
        pytest.skip("--quick")
    x, w, b = inputs(layout, device, requires_grad=passes != "fwd")
    fn = fn_of(impl)
    with torch.no_grad():
        got, want = fn(x, w, b).float(), pad_conv3d(x, w, b).float()
    err = ((got - want).norm() / want.norm()).item()
    assert err < REL_TOL, f"{impl}: relative error {err:.3g} vs pad+conv3d"
    del got, want
    out_elems = C * T * H * W
    e = x.element_size()
    if passes == "fwd":
        def run():
            with torch.no_grad():
                fn(x, w, b)
        bytes_moved, flops = 2 * x.numel() * e + w.numel() * e, 2 * out_elems * C * K ** 3
    else:
        gy = torch.randn_like(x)

        def run():
            torch.autograd.grad(fn(x, w, b), (x, w, b), gy)
        bytes_moved, flops = 4 * x.numel() * e + 2 * w.numel() * e, 3 * 2 * out_elems * C * K ** 3
    case = f"causal_conv3d T={T} {H}x{W} {layout}"
    harness.run(benchmark, run, group=f"{case} {passes} bf16", bytes_moved=bytes_moved, flops=flops,
                elements=out_elems, kind="op", case=case, op="causal_conv3d", dtype="bf16", passes=passes,
                impl=impl, layout=layout, T=T)
