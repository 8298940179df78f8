"""lavin_fast.linear: values and gradients vs the float64 reference, the nn.Linear drop-in, opcheck,
torch.compile, and errors."""

import math

import pytest
import torch

from lavin_fast import Linear, linear
from lavin_fast import reference as ref
from tests.helpers import DTYPES, assert_close, assert_grad_close, f64, randn
from tests.views import KINDS, strided

ops = torch.ops.lavin_fast

# (leading shape of x, in_features, out_features): empty, one row, odd sizes, 3-D input, the released
# hidden size and the small J-DiT's MLP.
SHAPES = [((0,), 8, 5), ((1,), 576, 1536), ((7,), 33, 5), ((2, 5), 72, 31), ((3,), 2304, 2304), ((130,), 576, 1536)]


def _args(lead, k, n, dtype, bias):
    x = randn(*lead, k, dtype=dtype)
    w = randn(n, k, dtype=dtype, scale=1 / math.sqrt(k))
    b = randn(n, dtype=dtype) if bias else None
    return x, w, b


@pytest.mark.parametrize("dtype", DTYPES + [torch.float64])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lead,k,n", SHAPES)
def test_forward_backward_match_reference(lead, k, n, bias, dtype):
    x, w, b = _args(lead, k, n, dtype, bias)
    leaves = [t.requires_grad_() for t in (x, w, b) if t is not None]
    y = linear(x, w, b)
    want = ref.linear(f64(x), f64(w), f64(b))
    if dtype == torch.float64:
        torch.testing.assert_close(y, want)
    else:
        assert_close(y, want, dtype, "y")
    gy = randn(*y.shape, dtype=dtype)
    y.backward(gy)
    refs = [t.detach().double().requires_grad_() for t in leaves]
    ref.linear(*refs, *([None] if b is None else [])).backward(gy.double())
    for name, got, r in zip("xwb", leaves, refs):
        assert got.grad.dtype == dtype and got.grad.shape == r.grad.shape, name
        if got.grad.numel() == 0:
            continue
        if dtype == torch.float64:
            torch.testing.assert_close(got.grad, r.grad)
        else:
            assert_grad_close(got.grad, r.grad, dtype, f"grad {name}")


def test_strided_inputs():
    x = randn(40, 24).t()  # (24, 40) with column stride 24
    w = randn(40, 16).t()  # weight (16, 40) transposed view
    b = randn(16)
    assert_close(linear(x, w, b), ref.linear(f64(x), f64(w), f64(b)), torch.float32, "strided")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("arg", ["x", "weight", "bias", "grad_y"])
def test_every_argument_in_any_layout(arg, kind, dtype):
    """Transposed, sliced, stride-0 and offset views of each argument (fp32 hands its operands to
    oneDNN, which reads strides of some and not of others) give the reference's values and gradients."""
    shapes = dict(x=(3, 4, 8), weight=(5, 8), bias=(5,), grad_y=(3, 4, 5))
    made = {name: strided(shape, kind, dtype) if name == arg else (randn(*shape, dtype=dtype), lambda b: b)
            for name, shape in shapes.items()}
    bases = [made[name][0].requires_grad_() for name in ("x", "weight", "bias")]
    views = [made[name][1] for name in ("x", "weight", "bias")]
    gy = made["grad_y"][1](made["grad_y"][0])
    y = linear(*(v(b) for v, b in zip(views, bases)))
    got = torch.autograd.grad(y, bases, gy)
    bases64 = [f64(b).requires_grad_() for b in bases]
    want = ref.linear(*(v(b) for v, b in zip(views, bases64)))
    expected = torch.autograd.grad(want, bases64, f64(gy))
    if dtype == torch.float64:
        torch.testing.assert_close(y, want)
    else:
        assert_close(y, want, dtype, "y")
    for name, g, e in zip(("x", "weight", "bias"), got, expected):
        if dtype == torch.float64:
            torch.testing.assert_close(g, e, msg=f"grad {name}")
        else:
            assert_grad_close(g, e, dtype, f"grad {name}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("arg", ["grad_y", "x", "weight"])
def test_backward_op_reads_any_layout(arg, kind):
    """The native backward called directly (autograd hands it a contiguous grad_y; other callers need
    not): both products go to oneDNN in fp32."""
    shapes = dict(grad_y=(3, 4, 5), x=(3, 4, 8), weight=(5, 8))
    t = {name: randn(*shape) for name, shape in shapes.items()}
    base, view = strided(shapes[arg], kind)
    t[arg] = view(base)
    gx, gw, gb = ops.linear_backward(t["grad_y"], t["x"], t["weight"], [True, True, True])
    x64, w64, b64 = f64(t["x"]).requires_grad_(), f64(t["weight"]).requires_grad_(), torch.zeros(5, dtype=torch.float64,
                                                                                                   requires_grad=True)
    expected = torch.autograd.grad(ref.linear(x64, w64, b64), (x64, w64, b64), f64(t["grad_y"]))
    for name, g, e in zip("xwb", (gx, gw, gb), expected):
        assert_grad_close(g, e, torch.float32, f"grad {name}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape,out_features", [((0,), 5), ((3, 0), 5), ((2, 4, 0), 5), ((0, 0), 5), ((3, 8), 0),
                                                  ((3, 0), 0)], ids=str)
def test_empty_features_match_f_linear(x_shape, out_features, bias, dtype):
    """in_features = 0 gives the bias broadcast (or zeros), out_features = 0 an empty output, as
    F.linear does; gradients of the empty tensors are empty, the bias's is grad_y summed."""
    x = randn(*x_shape, dtype=dtype).requires_grad_()
    w = randn(out_features, x_shape[-1], dtype=dtype).requires_grad_()
    b = randn(out_features, dtype=dtype).requires_grad_() if bias else None
    leaves = [t for t in (x, w, b) if t is not None]
    y = linear(x, w, b)
    want = torch.nn.functional.linear(x, w, b)
    assert y.shape == want.shape
    torch.testing.assert_close(y, want)
    gy = randn(*y.shape, dtype=dtype)
    got = torch.autograd.grad(y, leaves, gy)
    expected = torch.autograd.grad(want, leaves, gy)
    for g, e in zip(got, expected):
        assert g.shape == e.shape and g.dtype == e.dtype
        torch.testing.assert_close(g, e, atol=1e-2 if dtype == torch.bfloat16 else None,
                                   rtol=1e-2 if dtype == torch.bfloat16 else None)


@pytest.mark.parametrize("meta", ["x", "weight", "bias"])
def test_mixed_devices_are_an_error(meta):
    """A meta tensor among CPU ones sends the dispatcher to the shape-only kernel: that must raise, not
    return an uninitialised CPU tensor."""
    args = dict(x=randn(3, 8), weight=randn(4, 8), bias=randn(4))
    args[meta] = args[meta].to("meta")
    culprit, expected = ("weight", "meta") if meta == "x" else (meta, "cpu")
    match = rf"'{culprit}' must be on {expected} \(the device of 'x'\), got {'cpu' if meta == 'x' else 'meta'}"
    with pytest.raises((RuntimeError, ValueError), match=match):
        linear(**args)
    with pytest.raises((RuntimeError, ValueError), match=match):
        ops.linear(args["x"], args["weight"], args["bias"])
    if meta != "bias":
        gy = randn(3, 4).to(args["x"].device)
        with pytest.raises((RuntimeError, ValueError), match=f"'{culprit}' must be on"):
            ops.linear_backward(gy, args["x"], args["weight"], [True, True, True])
    module = Linear(8, 4, device="meta")
    with pytest.raises((RuntimeError, ValueError), match=r"'weight' must be on cpu \(the device of 'x'\), got meta"):
        module(randn(3, 8))


def test_module_is_a_drop_in_for_nn_linear():
    torch.manual_seed(0)
    plain = torch.nn.Linear(72, 40)
    ours = Linear(72, 40)
    assert isinstance(ours, torch.nn.Linear)
    ours.load_state_dict(plain.state_dict(), strict=True)
    assert list(ours.state_dict()) == ["weight", "bias"]
    x = randn(3, 5, 72)
    assert_close(ours(x), ref.linear(f64(x), f64(plain.weight), f64(plain.bias)), torch.float32, "module")
    assert Linear(8, 4, bias=False).bias is None


def test_autocast_matches_nn_linear():
    m = Linear(64, 32)
    x = randn(9, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
        want = torch.nn.functional.linear(x, m.weight, m.bias)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y, want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_opcheck(dtype):
    x, w, b = _args((6,), 20, 12, dtype, True)
    torch.library.opcheck(ops.linear, (x.requires_grad_(), w.requires_grad_(), b.requires_grad_()))
    torch.library.opcheck(ops.linear, (x, w, None))
    gy = randn(6, 12, dtype=dtype)
    torch.library.opcheck(ops.linear_backward, (gy, x.detach(), w.detach(), [True, True, True]))
    torch.library.opcheck(ops.linear_backward, (gy, x.detach(), w.detach(), [True, False, False]))


def test_compile_fullgraph():
    torch._dynamo.reset()
    m = Linear(48, 24)
    x = randn(2, 7, 48).requires_grad_()
    y = torch.compile(lambda a: torch.nn.functional.silu(m(a)), fullgraph=True, dynamic=True)(x)
    assert_close(y, torch.nn.functional.silu(ref.linear(f64(x), f64(m.weight), f64(m.bias))), torch.float32, "y")
    y.sum().backward()
    assert x.grad is not None and m.weight.grad is not None and m.bias.grad is not None


@pytest.mark.parametrize("call,match", [
    (lambda: ops.linear(randn(3, 8), randn(4, 9), None), r"x's last dimension must equal weight.shape\[1\] = 9"),
    (lambda: ops.linear(randn(3, 8), randn(4, 8, dtype=torch.float64), None), "weight must have x's dtype float32"),
    (lambda: ops.linear(randn(3, 8), randn(4, 8), randn(5)), r"'bias' must have shape \(out_features,\) = \(4,\)"),
    (lambda: ops.linear(randn(3, 8), randn(4, 8), randn(4, dtype=torch.bfloat16)), "bias must have x's dtype"),
    (lambda: ops.linear(randn(3, 8), randn(32), None), "weight"),
    (lambda: ops.linear(torch.ones(3, 8, dtype=torch.int32), torch.ones(4, 8, dtype=torch.int32), None), "x"),
    (lambda: ops.linear_backward(randn(3, 5), randn(3, 8), randn(4, 8), [True, True, False]), "grad_y"),
])
def test_bad_input_is_a_clear_error(call, match):
    with pytest.raises((RuntimeError, ValueError, TypeError), match=match):
        call()
