"""The RMSNorm ops as PyTorch operators: opcheck (schema, fake kernel, autograd registration) and
torch.compile(fullgraph=True) of every module."""

import pytest
import torch

import lavin_fast
from lavin_fast import reference as ref
from tests.helpers import assert_close, cu_seqlens, f64, host_backend, randn

ops = torch.ops.lavin_fast


def _opcheck_samples():
    cu = cu_seqlens([3, 0, 1, 6])
    x = randn(10, 72)
    w = randn(72, offset=1.0)
    s4 = randn(4, 72)
    xb = randn(2, 5, 33, dtype=torch.bfloat16)
    sb = randn(2, 33, dtype=torch.bfloat16)
    rstd = ops.rms_norm(x, w, 1e-6)[1]
    rstd_b = ops.rms_norm_modulate(xb, sb, None, None, 1e-6)[1]
    g = randn(10, 72)
    return [
        (ops.rms_norm, (x, w, 1e-6)),
        (ops.rms_norm, (xb, None, 1e-5)),
        (ops.rms_norm_backward, (g, x, w, rstd, True)),
        (ops.rms_norm_backward, (g, x, None, rstd, False)),
        (ops.rms_norm_modulate, (x, s4, randn(4, 72), cu, 1e-6)),
        (ops.rms_norm_modulate, (xb, sb, sb, None, 1e-6)),
        (ops.rms_norm_modulate_backward, (g, x, s4, cu, rstd, True, True)),
        (ops.rms_norm_modulate_backward, (randn(2, 5, 33, dtype=torch.bfloat16), xb, sb, None, rstd_b,
                                          True, False)),
        (ops.gated_rms_residual, (randn(10, 72), x, s4, cu, 1e-6, "tanh")),
        (ops.gated_rms_residual, (randn(2, 5, 33, dtype=torch.bfloat16), xb, sb, None, 1e-6, "none")),
        (ops.gated_rms_residual_backward, (g, x, s4, cu, rstd, "tanh", True)),
    ]


@pytest.mark.parametrize("backend", ["cpu", "simt"])
@pytest.mark.parametrize("op,args", _opcheck_samples(),
                         ids=lambda v: getattr(v, "__name__", None) if callable(v) else "")
def test_opcheck(op, args, backend):
    # Forward ops are checked with inputs that require grad (their autograd registration is tested);
    # samples share tensors, so each test works on copies.
    differentiable = op in (ops.rms_norm, ops.rms_norm_modulate, ops.gated_rms_residual)
    args = tuple(a.detach().clone().requires_grad_(differentiable and a.is_floating_point())
                 if isinstance(a, torch.Tensor) else a for a in args)
    with host_backend(backend):
        torch.library.opcheck(op, args)


def _compile(module):
    torch._dynamo.reset()
    return torch.compile(module, fullgraph=True)


def test_compile_rms_norm_module():
    m = lavin_fast.RMSNorm(72, eps=1e-6)
    with torch.no_grad():
        m.weight.copy_(randn(72, offset=1.0))
    x = randn(4, 9, 72).requires_grad_(True)
    out = _compile(m)(x)
    assert_close(out, ref.rms_norm(f64(x), f64(m.weight), eps=1e-6), torch.float32)
    out.sum().backward()
    assert x.grad is not None and m.weight.grad is not None


def test_compile_ada_and_gated_modules_packed():
    cu = cu_seqlens([5, 0, 7])
    x, y, scale, gate = randn(12, 72), randn(12, 72), randn(3, 72), randn(3, 72)
    ada, gated = lavin_fast.AdaRMSNorm(), lavin_fast.GatedRMSResidual()
    out = _compile(lambda x, s: ada(x, s, cu_seqlens=cu))(x, scale)
    assert_close(out, ref.rms_norm_modulate(f64(x), f64(scale), cu_seqlens=cu), torch.float32)
    out = _compile(lambda r, y, g: gated(r, y, g, cu_seqlens=cu))(x, y, gate)
    assert_close(out, ref.gated_rms_residual(f64(x), f64(y), f64(gate), cu_seqlens=cu), torch.float32)


class _AdaRNBlockHalf(torch.nn.Module):
    """The norm-and-modulation skeleton of one J-DiT stream (attention/MLP replaced by linears)."""

    def __init__(self, d):
        super().__init__()
        self.modulation = lavin_fast.JDiTModulation(d)
        self.pre = lavin_fast.AdaRMSNorm()
        self.post = lavin_fast.GatedRMSResidual()
        self.attn = torch.nn.Linear(d, d, bias=False)
        self.mlp = torch.nn.Linear(d, d, bias=False)
        torch.nn.init.normal_(self.modulation[1].weight, std=0.1)

    def forward(self, s, c):
        scale_attn, gate_attn, scale_mlp, gate_mlp = self.modulation(c)
        s = self.post(s, self.attn(self.pre(s, scale_attn)), gate_attn)
        return self.post(s, self.mlp(self.pre(s, scale_mlp)), gate_mlp)


@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_block_fullgraph_with_backward(dynamic):
    block = _AdaRNBlockHalf(72)
    s, c = randn(2, 6, 72).requires_grad_(True), randn(2, 72)
    eager = block(s, c)
    eager.sum().backward()
    g_eager = s.grad.clone()
    s.grad = None
    torch._dynamo.reset()
    compiled = torch.compile(block, fullgraph=True, dynamic=dynamic)(s, c)
    compiled.sum().backward()
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(s.grad, g_eager, rtol=1e-5, atol=1e-5)


def test_modulation_keys_and_identity_init():
    m = lavin_fast.JDiTModulation(72)
    assert set(m.state_dict()) == {"1.weight", "1.bias"}
    assert m[1].weight.shape == (4 * 72, 72)
    chunks = m(randn(2, 72))
    assert len(chunks) == 4 and all(torch.equal(c, torch.zeros(2, 72)) for c in chunks)


def test_rms_norm_module_matches_apex_interface():
    """Constructor arguments and the `weight` parameter of apex's FusedRMSNorm."""
    m = lavin_fast.RMSNorm(normalized_shape=(4, 18), eps=1e-5, elementwise_affine=True,
                           memory_efficient=True)
    assert set(m.state_dict()) == {"weight"} and m.weight.shape == (4, 18)
    with torch.no_grad():
        m.weight.copy_(randn(4, 18, offset=1.0))
    x = randn(3, 4, 18)
    expected = ref.rms_norm(f64(x).reshape(3, 72), f64(m.weight).reshape(72), eps=1e-5).reshape(3, 4, 18)
    assert_close(m(x), expected, torch.float32)
    assert lavin_fast.RMSNorm(72, elementwise_affine=False).weight is None
