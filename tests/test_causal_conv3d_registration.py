"""causal_conv3d as a PyTorch operator: opcheck (schema, fake kernel, autograd) and torch.compile."""

import pytest
import torch

from lavin_fast import reference as ref
from lavin_fast.conv import CausalConv3d, causal_conv3d
from tests.helpers import assert_close, f64, host_backend, randn

ops = torch.ops.lavin_fast


def _samples():
    x, w, b = randn(1, 3, 4, 5, 6), randn(2, 3, 3, 3, 3, scale=0.2), randn(2)
    xh, wh = randn(2, 8, 3, 4, 5, dtype=torch.bfloat16), randn(8, 8, 3, 1, 3, dtype=torch.bfloat16, scale=0.2)
    cache = randn(1, 3, 2, 5, 6)
    gy = randn(1, 2, 4, 5, 6)
    return [
        (ops.causal_conv3d, (x, w, b, [1, 1, 1], [1, 1], "replicate", None, True)),
        (ops.causal_conv3d, (x, w, None, [2, 2, 1], [1, 0], "zeros", None, False)),
        (ops.causal_conv3d, (x, w, b, [1, 1, 1], [1, 1], "replicate", cache, True)),
        (ops.causal_conv3d, (xh, wh, None, [1, 1, 1], [0, 1], "replicate", None, False)),
        (ops.causal_conv3d_backward, (gy, randn(1, 3, 2, 5, 6), x, w, True, [1, 1, 1], [1, 1], "replicate", cache)),
        (ops.causal_conv3d_backward, (gy, None, x, w, False, [1, 1, 1], [1, 1], "zeros", None)),
    ]


@pytest.mark.parametrize("backend", ["cpu", "simt"])
@pytest.mark.parametrize("op,args", _samples(), ids=lambda v: getattr(v, "__name__", None) if callable(v) else "")
def test_opcheck(op, args, backend):
    differentiable = op is ops.causal_conv3d
    args = tuple(a.detach().clone().requires_grad_(differentiable and a.is_floating_point())
                 if isinstance(a, torch.Tensor) else a for a in args)
    with host_backend(backend):
        torch.library.opcheck(op, args)


def test_compile_module_fullgraph_with_cache():
    torch._dynamo.reset()
    m = CausalConv3d(3, 4, 3)
    x = randn(1, 3, 5, 6, 7).requires_grad_(True)
    compiled = torch.compile(m, fullgraph=True)
    y, cache = compiled(x)
    y2, _ = compiled(randn(1, 3, 2, 6, 7), conv_cache=cache)
    assert_close(y, ref.causal_conv3d(f64(x), f64(m.conv.weight), f64(m.conv.bias), spatial_padding=1),
                 torch.float32)
    (y.sum() + y2.sum()).backward()
    assert x.grad is not None and m.conv.weight.grad is not None


def test_compile_function_fullgraph():
    torch._dynamo.reset()
    x, w = randn(1, 3, 5, 6, 7), randn(4, 3, 3, 3, 3, scale=0.2)
    fn = torch.compile(lambda a, b: causal_conv3d(a, b, stride=(2, 1, 1), spatial_padding=1, temporal_pad="zeros"),
                       fullgraph=True)
    assert_close(fn(x, w), ref.causal_conv3d(f64(x), f64(w), stride=(2, 1, 1), spatial_padding=1,
                                             temporal_pad="zeros"), torch.float32)
