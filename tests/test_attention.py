"""Varlen attention against the float64 reference: outputs, lse and gradients of q, k, v on random
packed batches, every mask kind and their combinations, GQA, head dims, dtypes and fully masked rows.
Parametrised over ATTENTION_BACKENDS (tests/helpers.py)."""

import pytest
import torch

import lavin_fast.reference as ref
from lavin_fast.attention import TileMask, varlen_attention
from tests.attention_cases import MASKS, make_problem, packed_lengths_cases
from tests.helpers import (ATTENTION_BACKENDS, assert_bitwise_equal, assert_close,
                           assert_grad_close, cu_seqlens, device_of, f64, randn, run_on)

backends = pytest.mark.parametrize("backend", ATTENTION_BACKENDS)


def _to(args, kw, device):
    move = lambda t: t.to(device) if isinstance(t, torch.Tensor) else t
    kw = {n: (TileMask(t.mask.to(device), t.tile_q, t.tile_k) if isinstance(t, TileMask) else move(t))
          for n, t in kw.items()}
    return tuple(move(a) for a in args), kw


def _reference(args, kw):
    q, k, v, *rest = args
    return ref.varlen_attention(f64(q), f64(k), f64(v), *rest, **kw)


def assert_lse_close(lse, ref_lse, what):
    assert lse.dtype == torch.float32 and lse.shape == ref_lse.shape
    assert torch.equal(torch.isneginf(lse), torch.isneginf(ref_lse)), f"{what}: -inf rows differ"
    assert not torch.isnan(lse).any(), f"{what}: NaN in lse (an unwritten element?)"
    finite = torch.isfinite(ref_lse)
    torch.testing.assert_close(lse[finite].double(), ref_lse[finite], rtol=1e-5, atol=1e-5, msg=what)


def skip_unsupported(backend, dtype):
    # The CUDA kernels take bf16/fp16 only (fp32 attention on a GPU is out of scope).
    if backend == "cuda" and dtype == torch.float32:
        pytest.skip("the CUDA backend supports bf16/fp16 only")


def check_forward(backend, args, kw, dtype, what=""):
    skip_unsupported(backend, dtype)
    dev = device_of(backend)
    dargs, dkw = _to(args, kw, dev)
    out, lse = run_on(backend, lambda: varlen_attention(*dargs, **dkw))
    ref_out, ref_lse = _reference(args, kw)
    assert_close(out.cpu(), ref_out, dtype, f"{what} out")
    assert_lse_close(lse.cpu(), ref_lse, f"{what} lse")
    return out, lse


def check_gradients(backend, args, kw, dtype, what=""):
    skip_unsupported(backend, dtype)
    dev = device_of(backend)
    q, k, v, *rest = args
    g = randn(*q.shape, dtype=dtype)
    leaves = [t.detach().clone().to(dev).requires_grad_() for t in (q, k, v)]
    _, dkw = _to(args, kw, dev)
    drest = [r.to(dev) if isinstance(r, torch.Tensor) else r for r in rest]

    def run():
        for t in leaves:
            t.grad = None
        out, _ = varlen_attention(*leaves, *drest, **dkw)
        out.backward(g.to(dev))
        return [t.grad.clone() for t in leaves]

    grads = run_on(backend, run)
    ref_leaves = [f64(t).requires_grad_() for t in (q, k, v)]
    ref_out, _ = ref.varlen_attention(*ref_leaves, *rest, **kw)
    ref_grads = torch.autograd.grad(ref_out, ref_leaves, g.double())
    # Baseline: plain PyTorch autograd of the reference in the test dtype's compute (fp32).
    base_leaves = [t.detach().float().requires_grad_() for t in (q, k, v)]
    base_out, _ = ref.varlen_attention(*base_leaves, *rest, **kw)
    base_grads = torch.autograd.grad(base_out, base_leaves, g.float())
    for name, got, want, base in zip("qkv", grads, ref_grads, base_grads):
        assert got.dtype == dtype and got.shape == want.shape
        assert_grad_close(got.cpu(), want, dtype, f"{what} grad_{name}", baseline=base)


@backends
@pytest.mark.parametrize("masks,dtype", [(m, torch.float32) for m in MASKS] + [
    (m, d) for m in ("none", "causal+frames", "all") for d in (torch.bfloat16, torch.float16)],
    ids=lambda v: str(v).removeprefix("torch."))
def test_forward_masks(backend, masks, dtype):
    args, kw = make_problem(11, n_segments=5, max_len=150, masks=masks, dtype=dtype)
    check_forward(backend, args, kw, dtype, masks)


@backends
@pytest.mark.parametrize("case", range(len(packed_lengths_cases())))
@pytest.mark.parametrize("masks", ["none", "all"])
def test_forward_packed_lengths(backend, case, masks):
    lens_q, lens_k = packed_lengths_cases()[case]
    args, kw = make_problem(case, lens_q=lens_q, lens_k=lens_k, masks=masks)
    check_forward(backend, args, kw, torch.float32, f"{lens_q} {lens_k}")


@backends
@pytest.mark.parametrize("heads", [(4, 4), (8, 2), (8, 1), (32, 8)], ids=lambda h: f"{h[0]}-{h[1]}")
@pytest.mark.parametrize("head_dim", [64, 72, 128])
def test_forward_gqa_and_head_dims(backend, heads, head_dim):
    args, kw = make_problem(head_dim + heads[1], n_segments=3, max_len=100, H=heads[0], H_kv=heads[1],
                            D=head_dim, masks="causal+frames")
    check_forward(backend, args, kw, torch.float32)


@pytest.mark.parametrize("head_dim", [1, 13, 40, 200, 256])
def test_forward_odd_head_dims_cpu(head_dim):
    args, kw = make_problem(head_dim, n_segments=3, max_len=90, H=4, H_kv=2, D=head_dim, masks="tiles")
    check_forward("cpu", args, kw, torch.float32)


@backends
@pytest.mark.parametrize("masks", MASKS)
def test_gradients_masks(backend, masks):
    args, kw = make_problem(7, n_segments=4, max_len=130, masks=masks)
    check_gradients(backend, args, kw, torch.float32, masks)


@backends
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("heads,head_dim", [((8, 2), 72), ((8, 8), 64), ((8, 1), 128)])
def test_gradients_dtypes_gqa(backend, dtype, heads, head_dim):
    args, kw = make_problem(3, n_segments=3, max_len=100, H=heads[0], H_kv=heads[1], D=head_dim,
                            masks="all", dtype=dtype)
    check_gradients(backend, args, kw, dtype)


@pytest.mark.parametrize("head_dim", [1, 13, 256])
def test_gradients_odd_head_dims_cpu(head_dim):
    args, kw = make_problem(5, n_segments=2, max_len=80, H=4, H_kv=1, D=head_dim, masks="causal")
    check_gradients("cpu", args, kw, torch.float32)


@pytest.mark.parametrize("masks,heads", [("none", (4, 2)), ("causal+frames", (4, 2)), ("tiles", (6, 2))])
def test_gradients_long_segments_cpu(masks, heads):
    # Segments longer than the CPU backward's key chunk (4 tiles of 64 keys), with partial tiles; G = 3
    # stacks 126 query rows, not a multiple of the vector width.
    args, kw = make_problem(13, lens_q=[333, 70], lens_k=[601, 290], H=heads[0], H_kv=heads[1], masks=masks)
    check_gradients("cpu", args, kw, torch.float32, masks)


@backends
def test_fully_masked_rows_are_zero_with_zero_gradient(backend):
    # Segment 0: causal with len_q > len_k, so the first 3 queries see nothing (bottom-right aligned).
    # Segment 1: queries of frame 0 while every key is of frame >= 1. Segment 2: a tile row set to
    # False. Segment 3: queries without keys.
    lens_q, lens_k = [8, 6, 40, 5], [5, 7, 40, 0]
    fq = torch.cat([torch.full((8,), 9), torch.tensor([0, 0, 1, 1, 2, 2]), torch.full((40,), 9),
                    torch.full((5,), 9)]).int()
    fk = torch.cat([torch.zeros(5), torch.tensor([1, 1, 1, 2, 2, 2, 2]), torch.zeros(40)]).int()
    tiles = torch.ones(4, 4, 3, dtype=torch.bool)
    tiles[2, 1] = False  # queries 10..19 of segment 2
    kw = dict(causal=True, frame_ids_q=fq, frame_ids_k=fk, tile_mask=TileMask(tiles, 10, 16))
    args = (randn(59, 4, 72), randn(52, 2, 72), randn(52, 2, 72), cu_seqlens(lens_q), cu_seqlens(lens_k),
            40, 40)
    out, lse = check_forward(backend, args, kw, torch.float32)
    empty_rows = torch.cat([torch.arange(0, 3), torch.tensor([8, 9]), torch.arange(24, 34),
                            torch.arange(54, 59)])
    assert torch.equal(out.cpu()[empty_rows], torch.zeros(len(empty_rows), 4, 72))
    assert torch.isneginf(lse.cpu()[:, empty_rows]).all()
    check_gradients(backend, args, kw, torch.float32)


@backends
def test_non_contiguous_inputs(backend):
    # q, k, v as slices of one fused projection (T, H + 2 H_kv, D), and a strided grad_out.
    T, H, Hk, D = 150, 8, 2, 72
    qkv = randn(T, H + 2 * Hk, D)
    q, k, v = qkv[:, :H], qkv[:, H:H + Hk], qkv[:, H + Hk:]
    assert not q.is_contiguous()
    args = (q, k, v, cu_seqlens([100, 50]), cu_seqlens([100, 50]), 100, 100)
    check_forward(backend, args, dict(causal=True), torch.float32)
    check_gradients(backend, args, dict(causal=True), torch.float32)


@backends
def test_softmax_scale_and_empty_batch(backend):
    args, kw = make_problem(2, n_segments=3, max_len=70, masks="causal")
    check_forward(backend, args, dict(kw, softmax_scale=0.37), torch.float32)
    dev = device_of(backend)
    z = torch.zeros(0, 4, 64, device=dev, dtype=torch.float32 if backend == "cpu" else torch.bfloat16)
    cu = torch.zeros(1, dtype=torch.int32, device=dev)
    out, lse = varlen_attention(z, z[:, :2], z[:, :2], cu, cu, 0, 0)
    assert out.shape == (0, 4, 64) and lse.shape == (4, 0)


@pytest.mark.parametrize("layout", ["many segments", "one segment MQA", "long segment"])
def test_backward_is_deterministic_across_thread_counts(layout):
    # With one (segment, KV head) the CPU backward runs as two passes on 2 threads and fused on 1:
    # the bits must not change either way.
    if layout == "many segments":
        args, kw = make_problem(9, n_segments=6, max_len=200, masks="causal+frames")
    elif layout == "one segment MQA":
        args, kw = make_problem(9, lens_q=[300], lens_k=[250], H=4, H_kv=1, masks="causal+tiles")
    else:  # several key chunks of the fused backward
        args, kw = make_problem(9, lens_q=[330], lens_k=[700], H=4, H_kv=1, masks="frames")
    q, k, v, *rest = args
    g = randn(*q.shape)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            leaves = [t.clone().requires_grad_() for t in (q, k, v)]
            out, lse = varlen_attention(*leaves, *rest, **kw, deterministic=True)
            out.backward(g)
            results.append([out, lse] + [t.grad for t in leaves])
    finally:
        torch.set_num_threads(threads)
    assert_bitwise_equal(results[0], results[1], "1 vs 2 threads")
