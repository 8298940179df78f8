"""Training through the fused J-DiT: parameter gradients vs the reference model, activation
checkpointing, bf16 autocast, the flow-matching loss on packed batches."""

import torch

from jdit_cases import latents, pair
from lavin_fast.models.jdit.training import flow_matching_loss, logit_normal

CFG = dict(hidden_size=144, depth=2, num_heads=2, kv_group=2)


def _grads(model):
    """Gradients by name; parameters that cannot affect the output (the last block's condition-stream
    MLP) have none in either model and count as zero."""
    return {k: (torch.zeros_like(p) if p.grad is None else p.grad.detach().clone())
            for k, p in model.named_parameters()}


def _check_grads(got, want, rel):
    assert set(got) == set(want)
    for k in want:
        err = (got[k].double() - want[k].double()).abs().max().item()
        scale = max(want[k].abs().max().item(), 1e-6)
        assert err <= rel * scale, f"{k}: max abs error {err:.3g} vs gradient magnitude {scale:.3g}"


def test_parameter_gradients_match_reference():
    ref, fast = pair(CFG, seed=3)
    x, cond, t = latents(2, 1, 3, 4), latents(2, 3, 3, 4), torch.tensor([0.2, 0.7])
    w = torch.randn(2, 16, 1, 6, 8)
    (ref(x, t, cond) * w).sum().backward()
    (fast(x, t, cond) * w).sum().backward()
    _check_grads(_grads(fast), _grads(ref), 1e-4)


def test_activation_checkpointing_gives_the_same_gradients():
    _, fast = pair(CFG, seed=4)
    x, cond, t = latents(2, 1, 2, 3), latents(2, 2, 2, 3), torch.rand(2)
    fast(x, t, cond).square().sum().backward()
    want = _grads(fast)
    fast.zero_grad()
    fast.gradient_checkpointing = True
    fast(x, t, cond).square().sum().backward()
    _check_grads(_grads(fast), want, 1e-6)


def test_bf16_autocast_forward_backward():
    ref, fast = pair(CFG, seed=5)
    x, cond, t = latents(1, 1, 4, 4), latents(1, 3, 4, 4), torch.rand(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fast(x, t, cond)
    out.float().square().mean().backward()
    with torch.no_grad():
        want = ref(x, t, cond)
    assert torch.isfinite(out.float()).all()
    err = (out.float() - want).abs().max() / want.abs().max()
    assert err < 5e-2, f"bf16 autocast relative error {err:.3g}"
    # The last block's condition-stream output projection and MLP cannot affect the output.
    unused = ("blocks.1.cond_mlp", "blocks.1.joint_attn.cond_proj")
    grads = {k: p.grad for k, p in fast.named_parameters() if not k.startswith(unused)}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())


def test_flow_matching_loss_on_packed_batch():
    ref, fast = pair(CFG, seed=6)
    shapes = [(3, 1, 4, 4), (1, 1, 2, 6), (5, 1, 3, 3)]
    conds = [latents(1, tc, h, w)[0] for tc, tx, h, w in shapes]
    data = [latents(1, tx, h, w)[0] for tc, tx, h, w in shapes]
    noise = [torch.randn_like(d) for d in data]
    t = logit_normal(3, torch.Generator().manual_seed(0))
    assert ((t > 0) & (t < 1)).all()
    loss, _ = flow_matching_loss(fast, conds, data, t=t, noise=noise)
    loss.backward()
    # The same loss computed sample by sample with the reference model.
    from lavin_fast.models.jdit.patches import patchify
    want = 0
    for i in range(3):
        x_t = t[i] * data[i] + (1 - t[i]) * noise[i]
        v = patchify(ref(x_t[None], t[i:i + 1], conds[i][None]))[0]
        want = want + (v - (data[i] - noise[i])).square().mean() / 3
    want.backward()
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-6)
    _check_grads(_grads(fast), _grads(ref), 1e-4)
