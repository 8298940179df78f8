"""Bad input to every public op and module, one test per class (issue 12): wrong dtype, device (a meta
tensor among CPU ones), shape, layout (non-contiguous, strided, offset and stride-0 views of every tensor
argument), empty sizes, out-of-range integers, NaN/Inf. Each case either computes the right answer
(vs the float64 reference) or raises a clear error naming the argument, with the inputs left untouched;
through the public function and torch.ops.lavin_fast.*, on the CPU kernels and the emulated CUDA
kernels (simt). The cases live in tests/bad_input_cases.py; docs/input_checks.md sums them up."""

import re

import pytest
import torch

import lavin_fast.packing
from lavin_fast.attention import TileMask
from tests.bad_input_cases import OK, SPECS, Either, to64
from tests.helpers import TOL, host_backend

ERRORS = (ValueError, TypeError, RuntimeError)


def _leaves(out):
    return [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]


def _bits(t):
    return t.detach().reshape(-1).contiguous().view(torch.uint8) if t.numel() else t


def _lowest_precision(args):
    floats = [v.dtype for v in args.values() if isinstance(v, torch.Tensor) and v.is_floating_point()]
    return max(floats, key=lambda d: TOL.get(d, TOL[torch.float32])["rtol"]) if floats else torch.float32


def assert_right_answer(got, want, args):
    """Equal to the float64 reference within the tolerance of the least precise input where that is finite;
    non-finite exactly where it is not: NaN where it is NaN, the same infinity (or NaN) where it is infinite."""
    tol = TOL.get(_lowest_precision(args), TOL[torch.float32])
    got, want = _leaves(got), _leaves(want)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, f"output {i}: shape {tuple(g.shape)} != {tuple(w.shape)}"
        assert g.device == w.device, f"output {i}: on {g.device}"
        g = g.detach().to(torch.float64)
        finite = torch.isfinite(w)
        assert torch.equal(torch.isfinite(g), finite), f"output {i}: non-finite where the reference is finite, or not"
        assert torch.isnan(g[torch.isnan(w)]).all(), f"output {i}: not NaN where the reference is NaN"
        inf = torch.isinf(w)
        assert ((g[inf] == w[inf]) | torch.isnan(g[inf])).all(), f"output {i}: an infinity of the other sign"
        torch.testing.assert_close(g[finite], w[finite], **tol, msg=lambda m: f"output {i}: {m}")


def check(spec, layer, args, outcome):
    """Calls the op on each backend and asserts `outcome` (bad_input_cases: OK, err(...), Either, per layer)."""
    if isinstance(outcome, dict):
        outcome = outcome[layer]
    want = None
    for backend in spec.backends:
        inputs = {k: (v, v.clone()) for k, v in args.items() if isinstance(v, torch.Tensor) and v.device.type != "meta"}
        with torch.no_grad(), host_backend(backend):
            try:
                got = spec.call(layer, args)
            except ERRORS as e:
                if outcome == OK:
                    raise AssertionError(f"{backend}: expected the right answer, got {type(e).__name__}: {e}") from e
                parts = outcome.error if isinstance(outcome, Either) else outcome
                for part in parts:
                    assert re.search(part, str(e)), f"{backend}: message {str(e)!r} lacks {part!r}"
                for name, (t, before) in inputs.items():
                    assert torch.equal(_bits(t), _bits(before)), f"{backend}: '{name}' was written on error"
                continue
        if isinstance(outcome, tuple):
            raise AssertionError(f"{backend}: expected an error matching {outcome}, got a result")
        if want is None:
            want = spec.reference(to64(args))
        assert_right_answer(got, want, args)


def _specs(cls):
    return [s for s in SPECS if s.runs(cls)]



def params(cases):
    """pytest params from (values, id)."""
    return [pytest.param(*values, id=ident) for values, ident in cases]


# ---- dtype: one argument in another dtype ----

def _dtype_variants(spec, t):
    if t.dtype == torch.bool:
        return [torch.int32]
    if not t.is_floating_point():
        return [torch.float32, torch.int64]
    return [torch.int32] + [d for d in (torch.float64, torch.float32, torch.bfloat16, torch.float16) if d != spec.dtype]


def _dtype_cases():
    for spec in _specs("dtype"):
        good = spec.make(spec.dtype)
        for arg in spec.tensors():
            for dt in _dtype_variants(spec, good[arg]):
                name = str(dt).removeprefix("torch.")
                for layer in spec.layers():
                    yield (spec, arg, dt, layer), f"{spec.name}-{arg}-{name}-{layer}"


@pytest.mark.parametrize("spec,arg,dtype,layer", params(_dtype_cases()))
def test_dtype(spec, arg, dtype, layer):
    args = spec.make(spec.dtype)
    args[arg] = args[arg].to(dtype)
    name = str(dtype).removeprefix("torch.")
    accepted = (arg, name) in spec.accepts or (arg, name, layer) in spec.accepts
    check(spec, layer, args, OK if accepted else (spec.name_re(arg), "dtype|bool tensor"))


def _all_float64_cases():
    for spec in _specs("dtype"):
        for layer in spec.layers():
            yield (spec, layer), f"{spec.name}-{layer}"


@pytest.mark.parametrize("spec,layer", params(_all_float64_cases()))
def test_dtype_all_float64(spec, layer):
    """Every float argument in float64: computed in float64 by causal_conv3d and linear (and modules on
    them), refused by the fp32-accumulating kernels."""
    args = {k: v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
            for k, v in spec.make(spec.dtype).items()}
    accepted = ("*", "float64") in spec.accepts
    check(spec, layer, args, OK if accepted else ("float64", "dtype"))


# ---- device: one argument on the meta device, the others on the CPU ----

def _device_cases():
    for spec in _specs("device"):
        for arg in spec.tensors():
            for layer in spec.layers():
                yield (spec, arg, layer), f"{spec.name}-{arg}-{layer}"


@pytest.mark.parametrize("spec,arg,layer", params(_device_cases()))
def test_device_mismatch(spec, arg, layer):
    args = spec.make(spec.dtype)
    args[arg] = args[arg].to("meta")
    # The message names the argument, or the one it is compared with ("... on meta (the device of 'x')").
    check(spec, layer, args, (spec.name_re(arg), "meta", "cpu"))


# ---- shape: one argument of the wrong rank or size ----

def _reshaped(t, variant):
    if variant == "rank":
        return t.unsqueeze(0)
    return t[..., :-1] if t.shape[-1] > 1 else torch.cat([t, t], -1)


def _shape_cases():
    for spec in _specs("shape"):
        for arg in spec.tensors():
            for variant in ("rank", "size"):
                for layer in spec.layers():
                    yield (spec, arg, variant, layer), f"{spec.name}-{arg}-{variant}-{layer}"


@pytest.mark.parametrize("spec,arg,variant,layer", params(_shape_cases()))
def test_shape(spec, arg, variant, layer):
    args = spec.make(spec.dtype)
    args[arg] = _reshaped(args[arg], variant)
    outcome = spec.shape_outcomes.get((arg, variant), (spec.name_re(arg), "shape|-D"))
    check(spec, layer, args, outcome)


# ---- layout: the same values through views with other strides ----

def _junk(t):
    if t.is_floating_point():
        return float("nan")
    return True if t.dtype == torch.bool else 12345


def _view(t, variant):
    """A view of a new buffer holding t's values, with junk (NaN) wherever the view does not look."""
    if variant == "strided":  # every other element in every dimension
        big = torch.full([2 * n for n in t.shape], _junk(t), dtype=t.dtype)
        view = big[tuple(slice(None, None, 2) for _ in t.shape)]
    elif variant == "transposed":  # the last dimension not contiguous
        if t.dim() < 2:
            return _view(t, "strided")
        big = torch.full((*t.shape[:-2], t.shape[-1], t.shape[-2]), _junk(t), dtype=t.dtype)
        view = big.transpose(-1, -2)
    elif variant == "offset":  # storage offset 1 (misaligned for vector loads)
        big = torch.full((t.numel() + 1,), _junk(t), dtype=t.dtype)
        view = big[1:].view(t.shape)
    view.copy_(t)
    return view


def _expanded(t, variant):
    """A stride-0 view (new values: t's first row or column repeated)."""
    if variant == "expanded":
        dim = next((d for d, n in enumerate(t.shape) if n > 1), 0)
    else:
        dim = t.dim() - 1
    return t.narrow(dim, 0, 1).expand(t.shape)


LAYOUTS = ["transposed", "strided", "offset", "expanded", "expanded_last"]


def _layout_cases():
    for spec in _specs("layout"):
        good = spec.make(spec.dtype)
        for arg in spec.tensors():
            for variant in LAYOUTS:
                if variant in ("expanded_last", "transposed") and good[arg].dim() < 2 or good[arg].numel() < 2:
                    continue  # 1-D: "strided" and "expanded" cover them
                for layer in spec.layers():
                    yield (spec, arg, variant, layer), f"{spec.name}-{arg}-{variant}-{layer}"


@pytest.mark.parametrize("spec,arg,variant,layer", params(_layout_cases()))
def test_layout(spec, arg, variant, layer):
    args = spec.make(spec.dtype)
    if variant.startswith("expanded") and arg in spec.expanded:
        args = spec.expanded[arg](args)
        assert 0 in args[arg].stride()
    elif variant.startswith("expanded"):
        args[arg] = _expanded(args[arg], variant)
    else:
        args[arg] = _view(args[arg], variant)
    check(spec, layer, args, OK)


# ---- empty sizes and out-of-range integers: cases listed per op ----

def _listed_cases(attr):
    for spec in _specs(attr):
        for case, change, outcome in getattr(spec, attr):
            for layer in spec.layers():
                o = outcome[layer] if isinstance(outcome, dict) else outcome
                yield (spec, change, o, layer), f"{spec.name}-{case}-{layer}"


@pytest.mark.parametrize("spec,change,outcome,layer", params(_listed_cases("empty")))
def test_empty(spec, change, outcome, layer):
    check(spec, layer, change(spec.make(spec.dtype)), outcome)


@pytest.mark.parametrize("spec,change,outcome,layer", params(_listed_cases("out_of_range")))
def test_out_of_range(spec, change, outcome, layer):
    check(spec, layer, change(spec.make(spec.dtype)), outcome)


# ---- NaN and Inf: propagate where the math says so, never crash, never silently zero ----

def _nonfinite_cases():
    for spec in _specs("nonfinite"):
        for arg in spec.float_tensors():
            for value in ("nan", "inf", "-inf"):
                for layer in spec.layers():
                    yield (spec, arg, value, layer), f"{spec.name}-{arg}-{value}-{layer}"


@pytest.mark.parametrize("spec,arg,value,layer", params(_nonfinite_cases()))
def test_nan_inf(spec, arg, value, layer):
    args = spec.make(spec.dtype)
    args[arg].view(-1)[spec.nonfinite_index.get(arg, 0)] = float(value)  # in the first row / sample
    check(spec, layer, args, OK)


# ---- TileMask and its helpers ----

@pytest.mark.parametrize("make", [
    lambda: TileMask.full(2, 8, 8, tile_q=0),
    lambda: TileMask.full(2, 8, 8, tile_k=-4),
    lambda: TileMask.num_tiles(8, 8, 0, 4),
    lambda: TileMask.block_causal(2, 8, 0),
    lambda: TileMask.local(2, 8, 1, tile=0),
    lambda: TileMask.random(2, 8, 8, 0.5, tile_q=0),
    lambda: TileMask.from_function(lambda s, q, k: q >= k, 2, 8, 8, 0, 4),
    lambda: TileMask(torch.ones(2, 1, 1, dtype=torch.bool), 0, 8),
    lambda: TileMask.from_dense(torch.ones(2, 1, 1, dtype=torch.bool), 4, 0),
], ids=["full", "full-tile_k", "num_tiles", "block_causal", "local", "random", "from_function", "init",
        "from_dense"])
def test_tile_mask_tile_size_zero(make):
    with pytest.raises(ValueError, match=r"'tile_(q|k)' must be an int > 0"):
        make()


@pytest.mark.parametrize("make,pattern", [
    (lambda: TileMask.full(2, -1, 8), r"'max_seqlen_q' must be an int >= 0, got -1"),
    (lambda: TileMask.full(-1, 8, 8), r"'num_segments' must be an int >= 0, got -1"),
    (lambda: TileMask.full(2, 8, 8, tile_q=2.5), r"'tile_q' must be an int > 0, got 2.5"),
    (lambda: TileMask(torch.ones(2, 1, 1, dtype=torch.bool), True, 8), r"'tile_q' must be an int > 0"),
    (lambda: TileMask(torch.ones(2, 1, dtype=torch.bool), 4, 4), r"'mask' must be a 3-D bool tensor"),
    (lambda: TileMask(torch.ones(2, 1, 1), 4, 4), r"'mask' must be a 3-D bool tensor"),
])
def test_tile_mask_bad_arguments(make, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        make()


def test_tile_mask_helpers_accept_empty_and_views():
    assert TileMask.full(0, 8, 8, 4, 4).mask.shape == (0, 2, 2)
    assert TileMask.full(2, 0, 0, 4, 4).mask.shape == (2, 0, 0)
    assert TileMask.full(2, 8, 8, 4, 4).density() == 1.0
    assert TileMask.from_dense(torch.ones(0, 2, dtype=torch.bool), 4, 4).density() == 0.0
    expanded = torch.ones(1, 2, 2, dtype=torch.bool).expand(3, 2, 2)
    assert TileMask.from_dense(expanded, 4, 4).mask.is_contiguous()


# ---- packing helpers (lavin_fast.packing): plain PyTorch, one layer, no backends ----

def _grid(*shape):
    return torch.randn(*shape)


def _expect_pack_tokens(samples):
    def check_packed(p):
        want = torch.cat([s.reshape(-1, s.shape[-1]) for s in samples])
        assert torch.equal(p.tokens, want) and p.cu_seqlens.tolist()[-1] == want.shape[0]
    return check_packed


_SAMPLES = [_grid(2, 3, 4), _grid(1, 2, 2, 4)]
_VIEWS = [_grid(3, 2, 4).transpose(0, 1), _grid(1, 4).expand(2, 2, 4), _grid(1, 4, 4, 4)[..., 1:3, :]]
_CU = torch.tensor([0, 2, 2, 5], dtype=torch.int32)
_TOKENS = torch.arange(20.0).view(5, 4)


def _pooled(tokens, cu):
    def check_pool(got):
        rows = [tokens[a:b].mean(0) if b > a else torch.zeros(tokens.shape[1]) for a, b in zip(cu[:-1], cu[1:])]
        torch.testing.assert_close(got, torch.stack(rows), equal_nan=True)
    return check_pool


def _nan_token():
    t = _TOKENS.clone()
    t[3, 1] = float("nan")
    return t


PACKING = [
    # dtype
    ("pack mixed dtypes", lambda: lavin_fast.packing.pack([_SAMPLES[0], _SAMPLES[1].double()]),
     ("sample 1", "dtype float64", "float32")),
    ("cu_seqlens_of float lengths", lambda: lavin_fast.packing.cu_seqlens_of([2.5, 3]), ("lengths", "int")),
    ("masked_mean_pool float mask (weights)", lambda: lavin_fast.packing.masked_mean_pool(
        _TOKENS, _CU, torch.ones(5)), _pooled(_TOKENS, _CU)),
    # device
    ("pack meta and cpu samples", lambda: lavin_fast.packing.pack([_SAMPLES[0], _SAMPLES[1].to("meta")]),
     ("sample 1", "meta", "cpu")),
    # shape
    ("pack a 2-D sample", lambda: lavin_fast.packing.pack([_grid(3, 4)]), ("sample 0", r"\(H, W, C\)")),
    ("pack channels differ", lambda: lavin_fast.packing.pack([_grid(2, 2, 3), _grid(2, 2, 4)]), ("sample 1", "channels")),
    ("unpack rows", lambda: lavin_fast.packing.unpack(torch.zeros(9, 4), lavin_fast.packing.pack(_SAMPLES)),
     ("tokens has 9 rows", "10")),
    # layout
    ("pack views", lambda: lavin_fast.packing.pack(_VIEWS), _expect_pack_tokens([v.contiguous() for v in _VIEWS])),
    ("masked_mean_pool strided tokens", lambda: lavin_fast.packing.masked_mean_pool(
        _TOKENS.t().contiguous().t(), _CU[::1]), _pooled(_TOKENS, _CU)),
    ("masked_mean_pool expanded tokens", lambda: lavin_fast.packing.masked_mean_pool(
        _TOKENS[:1].expand(5, 4), _CU), _pooled(_TOKENS[:1].expand(5, 4), _CU)),
    # empty
    ("pack no samples", lambda: lavin_fast.packing.pack([]), ("at least one sample",)),
    ("pack an empty grid", lambda: lavin_fast.packing.pack([_grid(0, 3, 4)]),
     lambda p: p.cu_seqlens.tolist() == [0, 0] and p.tokens.shape == (0, 4)),
    ("masked_mean_pool empty segment", lambda: lavin_fast.packing.masked_mean_pool(_TOKENS, _CU), _pooled(_TOKENS, _CU)),
    ("greedy_pack nothing", lambda: lavin_fast.packing.greedy_pack([], 8), lambda bins: bins == []),
    ("padding_fraction nothing", lambda: lavin_fast.packing.padding_fraction([]), lambda f: f == 0.0),
    # out-of-range integers
    ("greedy_pack negative length", lambda: lavin_fast.packing.greedy_pack([3, -1], 8), ("'lengths'\\[1\\]", ">= 0")),
    ("greedy_pack longer than budget", lambda: lavin_fast.packing.greedy_pack([9], 8), ("sample 0", "budget=8")),
    ("cu_seqlens_of negative length", lambda: lavin_fast.packing.cu_seqlens_of([3, -1]), ("length",)),
    ("cu_seqlens_of total past 2^31", lambda: lavin_fast.packing.cu_seqlens_of([2**30, 2**30]), ("2\\^31",)),
    ("masked_mean_pool decreasing offsets", lambda: lavin_fast.packing.masked_mean_pool(
        _TOKENS, torch.tensor([0, 4, 2, 5], dtype=torch.int32)), ("cu_seqlens",)),
    ("drop_tokens rate 1", lambda: lavin_fast.packing.drop_tokens(lavin_fast.packing.pack(_SAMPLES), 1.0),
     ("rate 0", r"\[0, 1\)")),
    # NaN
    ("drop_tokens rate nan", lambda: lavin_fast.packing.drop_tokens(lavin_fast.packing.pack(_SAMPLES), float("nan")),
     ("rate 0", r"\[0, 1\)")),
    ("masked_mean_pool NaN token stays in its sample", lambda: lavin_fast.packing.masked_mean_pool(_nan_token(), _CU),
     _pooled(_nan_token(), _CU)),
]


def _packing_params():
    for name, call, expected in PACKING:
        yield pytest.param(call, expected, id=name)


@pytest.mark.parametrize("call,expected", list(_packing_params()))
def test_packing_helpers(call, expected):
    if isinstance(expected, tuple):
        with pytest.raises(ERRORS) as e:
            call()
        for part in expected:
            assert re.search(part, str(e.value)), f"message {str(e.value)!r} lacks {part!r}"
        return
    result = expected(call())
    assert result is None or result is True
