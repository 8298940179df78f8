"""causal_conv3d reads every tensor argument in any layout: transposed, sliced, stride-0 (expanded)
and offset views and channels-last, of x, weight, bias, cache and the gradients of y and of the new
cache, on each path (fp32 oneDNN on NCDHW x with head pieces or a padded head, on channels-last x;
float64 and bf16 through at::convolution; the CUDA kernel under the SIMT emulator): values and
gradients equal the float64 reference. A meta tensor among CPU ones is an error naming it."""

import math

import pytest
import torch

from lavin_fast import reference as ref
from lavin_fast.conv import CausalConv3d, causal_conv3d
from tests.helpers import assert_close, assert_grad_close, f64, randn, run_on
from tests.views import KINDS, strided

ops = torch.ops.lavin_fast

N, C, T, H, W, O, K = 2, 3, 5, 5, 6, 4, (3, 3, 3)
SHAPES = dict(x=(N, C, T, H, W), weight=(O, C, *K), bias=(O,), cache=(N, C, K[0] - 1, H, W),
              grad_y=(N, O, T, H, W), grad_new_cache=(N, C, K[0] - 1, H, W))
# path: (dtype, backend, LAVIN_FAST_CONV_HEAD, channels-last x when x is not the view under test)
PATHS = {
    "fp32-pieces": (torch.float32, "cpu", "pieces", False),
    "fp32-padded": (torch.float32, "cpu", "padded", False),
    "fp32-cl": (torch.float32, "cpu", None, True),
    "float64": (torch.float64, "cpu", None, False),
    "bf16": (torch.bfloat16, "cpu", None, False),
    "simt-bf16": (torch.bfloat16, "simt", None, False),
}


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("arg", list(SHAPES))
def test_every_argument_in_any_layout(arg, kind, path, monkeypatch):
    dtype, backend, head, x_cl = PATHS[path]
    if head:
        monkeypatch.setenv("LAVIN_FAST_CONV_HEAD", head)
    scales = dict(weight=(C * math.prod(K)) ** -0.5)
    made = {}
    for name, shape in SHAPES.items():
        if name == arg:
            made[name] = strided(shape, kind, dtype, scales.get(name, 1.0))
        elif name == "x" and x_cl:
            made[name] = randn(*shape, dtype=dtype), lambda b: b.contiguous(memory_format=torch.channels_last_3d)
        else:
            made[name] = randn(*shape, dtype=dtype, scale=scales.get(name, 1.0)), lambda b: b
    # The cache replaces the temporal padding: present only when under test, so the other cases
    # cover the head pieces that read x's first frame.
    names = ["x", "weight", "bias"] + (["cache"] if arg == "cache" else [])
    bases = [made[n][0].requires_grad_() for n in names]
    grads = [made[n][1](made[n][0]) for n in ("grad_y", "grad_new_cache")]

    def run(fn, leaves):
        args = dict(zip(names, (made[n][1](b) for n, b in zip(names, leaves))))
        return fn(args.pop("x"), args.pop("weight"), args.pop("bias"), spatial_padding=1, return_cache=True, **args)

    y, new_cache = run_on(backend, lambda: run(causal_conv3d, bases))
    got = torch.autograd.grad((y, new_cache), bases, grads)
    bases64 = [f64(b).requires_grad_() for b in bases]
    want_y, want_cache = run(ref.causal_conv3d, bases64)
    expected = torch.autograd.grad((want_y, want_cache), bases64, [f64(g) for g in grads])
    assert torch.equal(new_cache.double(), want_cache), "the new cache is x's last k_t - 1 frames"
    if dtype == torch.float64:
        torch.testing.assert_close(y, want_y)
    else:
        assert_close(y, want_y, dtype, f"y {arg} {kind}")
    for name, g, e in zip(names, got, expected):
        if dtype == torch.float64:
            torch.testing.assert_close(g, e, msg=f"grad {name}")
        else:
            assert_grad_close(g, e, dtype, f"grad {name}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("arg", ["grad_y", "grad_new_cache"])
def test_backward_op_reads_strided_gradients(arg, kind):
    """The native backward called directly (autograd may hand it any layout, e.g. the stride-0
    gradient of y.sum())."""
    x, w, cache = randn(*SHAPES["x"]), randn(*SHAPES["weight"], scale=0.2), randn(*SHAPES["cache"])
    base, view = strided(SHAPES[arg], kind)
    plain = {"grad_y": randn(*SHAPES["grad_y"]), "grad_new_cache": randn(*SHAPES["grad_new_cache"])}
    plain[arg] = view(base)
    got = ops.causal_conv3d_backward(plain["grad_y"], plain["grad_new_cache"], x, w, True, [1, 1, 1], [1, 1],
                                     "replicate", cache)
    leaves = [f64(t).requires_grad_() for t in (x, w)]
    b64 = torch.zeros(O, dtype=torch.float64, requires_grad=True)
    c64 = f64(cache).requires_grad_()
    y, c = ref.causal_conv3d(*leaves, b64, spatial_padding=1, cache=c64, return_cache=True)
    expected = torch.autograd.grad((y, c), leaves + [b64, c64], [f64(plain["grad_y"]), f64(plain["grad_new_cache"])])
    for name, g, e in zip(["x", "weight", "bias", "cache"], got, expected):
        assert_grad_close(g, e, torch.float32, f"grad {name}")


@pytest.mark.parametrize("meta", ["x", "weight", "bias", "cache"])
def test_mixed_devices_are_an_error(meta):
    """A meta tensor among CPU ones sends the dispatcher to the shape-only kernel: that must raise, not
    return an uninitialised CPU tensor."""
    args = dict(x=randn(*SHAPES["x"]), weight=randn(*SHAPES["weight"]), bias=randn(O), cache=randn(*SHAPES["cache"]))
    args[meta] = args[meta].to("meta")
    culprit, want, got = ("weight", "meta", "cpu") if meta == "x" else (meta, "cpu", "meta")
    match = rf"'{culprit}' must be on {want} \(the device of 'x'\), got {got}"
    with pytest.raises((RuntimeError, ValueError), match=match):
        causal_conv3d(args["x"], args["weight"], args["bias"], spatial_padding=1, cache=args["cache"])
    with pytest.raises((RuntimeError, ValueError), match=match):
        ops.causal_conv3d(args["x"], args["weight"], args["bias"], [1, 1, 1], [1, 1], "replicate", args["cache"],
                          True)
    if meta != "bias":
        gy = randn(*SHAPES["grad_y"]).to(args["x"].device)
        with pytest.raises((RuntimeError, ValueError), match="must be on"):
            ops.causal_conv3d_backward(gy, None, args["x"], args["weight"], True, [1, 1, 1], [1, 1], "replicate",
                                       args["cache"])
    module = CausalConv3d(C, O, 3).to("meta")
    with pytest.raises((RuntimeError, ValueError), match=r"'weight' must be on cpu \(the device of 'x'\), got meta"):
        module(randn(*SHAPES["x"]))
