"""The table behind tests/test_bad_inputs.py: every public op and module with tiny good arguments, how
each layer calls it (the public function or module, and torch.ops.lavin_fast.* directly), its float64
reference, and the mixed dtypes it accepts. docs/input_checks.md summarises what the tests assert."""

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy
import torch
from torch import nn

import lavin_fast
from lavin_fast import reference as ref
from lavin_fast.attention import TileMask
from tests.helpers import cu_seqlens, randn

ops = torch.ops.lavin_fast

OK = "ok"  # outcome: computes the right answer (vs the float64 reference)


def err(*parts):
    """Outcome: an error (ValueError, TypeError or RuntimeError) whose message matches every regex part."""
    return tuple(parts)


@dataclass(frozen=True)
class Either:
    """Outcome: the right answer or the given error (the fix may choose either)."""
    error: tuple




@dataclass
class Spec:
    name: str
    make: Callable[[torch.dtype], dict]  # good arguments in the given float dtype (fresh tensors)
    python: Callable[[dict], object]  # the public function or module; returns a tensor or tuple
    reference: Callable[[dict], object]  # the same outputs from lavin_fast.reference
    native: Optional[Callable[[dict], object]] = None  # torch.ops.lavin_fast.*, the same outputs
    dtype: torch.dtype = torch.float32
    # (arg, dtype name[, layer]): one argument in another dtype that the op computes correctly
    # (the others stay in `dtype`); every other mix must be refused.
    accepts: frozenset = frozenset()
    # A consistent set of arguments in which `arg` is a stride-0 view (when a view of the good
    # argument cannot be, e.g. cu_seqlens: only all-empty segments have constant offsets).
    expanded: dict = field(default_factory=dict)
    # Changes that keep an argument's name but make its shape wrong, and what follows.
    shape_outcomes: dict = field(default_factory=dict)
    empty: list = field(default_factory=list)  # (case, change of the arguments, outcome)
    out_of_range: list = field(default_factory=list)  # (case, change of the arguments, outcome)
    quoted: bool = True  # whether messages quote argument names ('x'); linear's C++ checks do not
    aliases: dict = field(default_factory=dict)  # arg -> regex of the names its messages use
    # Where the NaN/Inf class puts its value (flat index; default 0): a conv weight's centre tap, as a
    # corner tap meets the zero padding, which the kernels skip rather than multiply (0 * NaN).
    nonfinite_index: dict = field(default_factory=dict)
    # Tensor arguments the per-argument classes vary (default: all); classes run (default: all). Specs
    # that share a path with another (flash_attn_varlen_func, the masked attention) vary only their own.
    vary: Optional[tuple] = None
    classes: Optional[tuple] = None
    # Where the emulated CUDA kernel is the same code as on the CPU (linear, fp32 conv: ATen; modules:
    # the ops above), "cpu" alone.
    backends: tuple = ("cpu", "simt")

    def runs(self, cls):
        return self.classes is None or cls in self.classes


    def name_re(self, arg):
        if arg in self.aliases:
            return self.aliases[arg]
        if arg == "tile_mask":  # TileMask's own check calls it 'mask'
            return "'(tile_)?mask'"
        return f"'{arg}'" if self.quoted else rf"\b{arg}\b"

    def layers(self):
        return ["python"] + (["native"] if self.native else [])

    def call(self, layer, args):
        return (self.python if layer == "python" else self.native)(args)

    def tensors(self):
        return [k for k, v in self.make(self.dtype).items()
                if isinstance(v, torch.Tensor) and (self.vary is None or k in self.vary)]

    def float_tensors(self):
        return [k for k in self.tensors() if self.make(self.dtype)[k].is_floating_point()]


def to64(args):
    """The arguments with every float tensor as a contiguous float64 copy (the reference's input)."""
    return {k: v.detach().to(torch.float64).contiguous() if isinstance(v, torch.Tensor) and v.is_floating_point()
            else v for k, v in args.items()}


def changed(**kw):
    """An argument change: values may be callables of the current arguments."""
    def apply(a):
        a = dict(a)
        for k, v in kw.items():
            a[k] = v(a) if callable(v) else v
        return a
    return apply


def ints(values):
    return torch.tensor(values, dtype=torch.int32)


# ---- the RMSNorm family ----

D = 16
LENGTHS = [3, 4]


def _rms_norm_args(dt):
    return dict(x=randn(2, 3, D, dtype=dt), weight=randn(D, dtype=dt), eps=1e-6)


def _modulate_args(dt):
    return dict(x=randn(sum(LENGTHS), D, dtype=dt), scale=randn(2, D, dtype=dt), shift=randn(2, D, dtype=dt),
                cu_seqlens=cu_seqlens(LENGTHS), eps=1e-6)


def _modulate_padded_args(dt):
    return dict(x=randn(2, 3, D, dtype=dt), scale=randn(2, D, dtype=dt), shift=randn(2, D, dtype=dt), eps=1e-6)


def _gated_args(dt):
    return dict(residual=randn(sum(LENGTHS), D, dtype=dt), y=randn(sum(LENGTHS), D, dtype=dt),
                gate=randn(2, D, dtype=dt), cu_seqlens=cu_seqlens(LENGTHS), eps=1e-6)


def _all_empty_segments(tokens, **more):
    """Arguments whose cu_seqlens is a stride-0 view: S = 2 empty segments, no token."""
    def apply(a):
        a = dict(a)
        for name in tokens:
            a[name] = a[name][:0]
        a["cu_seqlens"] = torch.zeros(1, dtype=torch.int32).expand(3)
        for k, v in more.items():
            a[k] = v(a)
        return a
    return apply


HALF = ("bfloat16", "float16")

RMS_NORM = Spec(
    "rms_norm", _rms_norm_args,
    python=lambda a: lavin_fast.rms_norm(a["x"], a["weight"], a["eps"]),
    native=lambda a: ops.rms_norm(a["x"], a["weight"], a["eps"])[0],
    reference=lambda a: ref.rms_norm(a["x"], a["weight"], a["eps"]),
    accepts=frozenset(("x", h) for h in HALF),
    shape_outcomes={("x", "rank"): OK, ("x", "size"): err("'weight'", r"\(D,\)")},
    empty=[("0 rows", changed(x=lambda a: a["x"][:, :0]), OK),
           ("0 samples", changed(x=lambda a: a["x"][:0]), OK),
           ("D = 0", changed(x=lambda a: a["x"][..., :0], weight=lambda a: a["weight"][:0]),
            err("'x'", "last dimension of size >= 1"))],
    out_of_range=[("eps < 0", changed(eps=-1.0), err("'eps'", ">= 0")),
                  ("eps nan", changed(eps=float("nan")), err("'eps'", ">= 0")),
                  ("eps inf", changed(eps=float("inf")), OK)],
)


def _cu_cases(total_arg, per_sample):
    """cu_seqlens values out of range, shared by the packed norms."""
    return [
        ("cu_seqlens[0] != 0", changed(cu_seqlens=ints([1, 3, 7])), err("'cu_seqlens'", "start at 0")),
        ("cu_seqlens negative", changed(cu_seqlens=ints([0, -1, 7])), err("'cu_seqlens'", "non-decreasing")),
        ("cu_seqlens past T", changed(cu_seqlens=ints([0, 3, 8])), err("'cu_seqlens'", "end at")),
        ("cu_seqlens 2^31 - 1", changed(cu_seqlens=ints([0, 2**31 - 1, 7])), err("'cu_seqlens'", "non-decreasing")),
        ("segment past T", changed(cu_seqlens=ints([0, 9, 7])), err("'cu_seqlens'", "non-decreasing")),
    ]


MODULATE = Spec(
    "rms_norm_modulate", _modulate_args,
    python=lambda a: lavin_fast.rms_norm_modulate(a["x"], a["scale"], a["shift"], a["eps"], cu_seqlens=a["cu_seqlens"]),
    native=lambda a: ops.rms_norm_modulate(a["x"], a["scale"], a["shift"], a["cu_seqlens"], a["eps"])[0],
    reference=lambda a: ref.rms_norm_modulate(a["x"], a["scale"], a["shift"], a["eps"], a["cu_seqlens"]),
    accepts=frozenset(("x", h) for h in HALF),
    expanded={"cu_seqlens": _all_empty_segments(["x"])},
    shape_outcomes={("x", "rank"): err("'x'", r"2-D \(T, D\)"), ("x", "size"): err("'scale'", r"\(S, D\)"),
                    ("cu_seqlens", "size"): err("'(scale|cu_seqlens)'")},
    empty=[("0 tokens, 2 segments", changed(x=lambda a: a["x"][:0], cu_seqlens=ints([0, 0, 0])), OK),
           ("0 segments", changed(x=lambda a: a["x"][:0], scale=lambda a: a["scale"][:0],
                                  shift=lambda a: a["shift"][:0], cu_seqlens=ints([0])), OK),
           ("empty segment", changed(cu_seqlens=ints([0, 0, 7])), OK),
           ("D = 0", changed(x=lambda a: a["x"][:, :0], scale=lambda a: a["scale"][:, :0],
                             shift=lambda a: a["shift"][:, :0]), err("'x'", "last dimension of size >= 1")),
           ("cu_seqlens without entries", changed(cu_seqlens=ints([])), err("'cu_seqlens'", "1-D"))],
    out_of_range=_cu_cases("x", ["scale", "shift"]) + [("eps < 0", changed(eps=-1e-3), err("'eps'", ">= 0"))],
)

MODULATE_PADDED = Spec(
    "rms_norm_modulate(padded)", _modulate_padded_args,
    python=lambda a: lavin_fast.rms_norm_modulate(a["x"], a["scale"], a["shift"], a["eps"]),
    native=lambda a: ops.rms_norm_modulate(a["x"], a["scale"], a["shift"], None, a["eps"])[0],
    reference=lambda a: ref.rms_norm_modulate(a["x"], a["scale"].flatten(0, -2), a["shift"], a["eps"]),
    accepts=frozenset(("x", h) for h in HALF),
    shape_outcomes={("x", "rank"): err("'x'", r"3-D \(B, L, D\)"), ("x", "size"): err("'scale'", r"\(B, D\)"),
                    # (B, 1, D): the usual DiT broadcast shape, accepted by the public function
                    ("scale", "rank"): err("'scale'", r"\(B, D\)"), ("shift", "rank"): err("'shift'", r"\(B, D\)")},
    empty=[("B = 0", changed(x=lambda a: a["x"][:0], scale=lambda a: a["scale"][:0],
                             shift=lambda a: a["shift"][:0]), OK),
           ("L = 0", changed(x=lambda a: a["x"][:, :0]), OK),
           ("(B, 1, D) scale", changed(scale=lambda a: a["scale"][:, None]), {"python": OK,
                                                                             "native": err("'scale'", r"\(B, D\)")})],
)

GATED = Spec(
    "gated_rms_residual", _gated_args,
    python=lambda a: lavin_fast.gated_rms_residual(a["residual"], a["y"], a["gate"], a["eps"], "tanh",
                                                   cu_seqlens=a["cu_seqlens"]),
    native=lambda a: ops.gated_rms_residual(a["residual"], a["y"], a["gate"], a["cu_seqlens"], a["eps"], "tanh")[0],
    reference=lambda a: ref.gated_rms_residual(a["residual"], a["y"], a["gate"], a["eps"], "tanh", a["cu_seqlens"]),
    # The public function casts y to the residual's dtype (bf16 attention output, fp32 residual stream).
    accepts=frozenset([("y", h, "python") for h in HALF] + [("residual", h, "python") for h in HALF]),
    expanded={"cu_seqlens": _all_empty_segments(["residual", "y"])},
    shape_outcomes={("residual", "rank"): err("'(y|residual)'", "shape"), ("residual", "size"): err("'(y|residual)'", "shape"),
                    ("y", "rank"): err("'(y|residual)'", "shape"), ("y", "size"): err("'(y|residual)'", "shape"),
                    ("cu_seqlens", "size"): err("'(gate|cu_seqlens)'")},
    empty=[("0 tokens", changed(residual=lambda a: a["residual"][:0], y=lambda a: a["y"][:0],
                                cu_seqlens=ints([0, 0, 0])), OK),
           ("empty segment", changed(cu_seqlens=ints([0, 7, 7])), OK),
           ("D = 0", changed(residual=lambda a: a["residual"][:, :0], y=lambda a: a["y"][:, :0],
                             gate=lambda a: a["gate"][:, :0]), err("'y'", "last dimension of size >= 1"))],
    out_of_range=_cu_cases("y", ["gate"]) + [("eps < 0", changed(eps=-1.0), err("'eps'", ">= 0"))],
)


# ---- QK-norm + 3-D RoPE ----

HEADS, HEAD_DIM, SECTIONS = 2, 12, [4, 4, 4]


def _rope_args(dt):
    return dict(x=randn(5, HEADS * HEAD_DIM, dtype=dt), weight=randn(HEADS * HEAD_DIM, dtype=dt),
                positions=torch.randint(0, 9, (5, 3), dtype=torch.int32), num_heads=HEADS, eps=1e-6,
                sections=SECTIONS, bases=10000.0)


def _rope_native(a):
    bases = [float(a["bases"])] if isinstance(a["bases"], (int, float)) else list(a["bases"])
    y = ops.qk_norm_rope(a["x"], a["weight"], a["positions"], a["num_heads"], a["eps"], list(a["sections"]),
                         bases, False, True)[0]
    return y.unflatten(-1, (a["num_heads"], y.shape[-1] // a["num_heads"]))


QK_NORM_ROPE = Spec(
    "qk_norm_rope", _rope_args,
    python=lambda a: lavin_fast.qk_norm_rope(a["x"], a["weight"], a["positions"], a["num_heads"], eps=a["eps"],
                                             sections=a["sections"], bases=a["bases"]),
    native=_rope_native,
    reference=lambda a: ref.qk_norm_rope(a["x"], a["weight"], a["positions"], a["num_heads"], a["eps"],
                                         a["sections"], a["bases"]),
    accepts=frozenset([("x", h) for h in HALF] + [("positions", "int64")]),
    shape_outcomes={("x", "rank"): err("'positions'", "shape"), ("x", "size"): err("'num_heads'", "divide"),
                    ("positions", "rank"): err("'positions'", "shape")},
    empty=[("0 tokens", changed(x=lambda a: a["x"][:0], positions=lambda a: a["positions"][:0]), OK),
           ("padded, L = 0", changed(x=lambda a: a["x"][:0].expand(2, 0, -1),
                                     positions=lambda a: a["positions"][:0].expand(2, 0, 3)), OK),
           ("one empty section", changed(sections=[0, 4, 8]), OK),
           ("W = 0", changed(x=lambda a: a["x"][:, :0], weight=lambda a: a["weight"][:0]),
            err("'x'", "last dimension of size >= 1"))],
    out_of_range=[("num_heads = 0", changed(num_heads=0), err("'num_heads'", ">= 1")),
                  ("num_heads < 0", changed(num_heads=-2), err("'num_heads'", ">= 1")),
                  ("head_dim 0 (num_heads > W)", changed(num_heads=48), err("'num_heads'", "divide")),
                  ("head_dim > 256", changed(x=randn(5, 516), weight=None, num_heads=1, sections=[172, 172, 172]),
                   err("head_dim", "<= 256")),
                  ("negative section", changed(sections=[-4, 8, 8]), err("'sections'", ">= 0")),
                  ("sections sum", changed(sections=[4, 4, 6]), err("'sections'", "sum to head_dim = 12")),
                  ("base 0", changed(bases=0.0), err("'bases'", "> 0")),
                  ("base inf", changed(bases=float("inf")), err("'bases'", "finite")),
                  ("base nan", changed(bases=float("nan")), err("'bases'", "> 0")),
                  ("eps < 0", changed(eps=-1.0), err("'eps'", ">= 0")),
                  ("eps nan", changed(eps=float("nan")), err("'eps'", ">= 0")),
                  ("negative positions", changed(positions=lambda a: -a["positions"]), OK),
                  ("positions 2^16", changed(positions=lambda a: a["positions"] + 2**16), OK),
                  ("positions 2^24 + 1", changed(positions=lambda a: a["positions"] + 2**24 + 1), Either(err("'positions'"))),
                  ("int64 positions past int32", changed(positions=lambda a: a["positions"].long() + 2**32),
                   Either(err("'positions'")))],
)


# ---- varlen attention ----

LQ, LK, H, H_KV, HD = [3, 4], [4, 5], 2, 1, 64


def _attention_args(dt):
    return dict(q=randn(sum(LQ), H, HD, dtype=dt), k=randn(sum(LK), H_KV, HD, dtype=dt),
                v=randn(sum(LK), H_KV, HD, dtype=dt), cu_seqlens_q=cu_seqlens(LQ), cu_seqlens_k=cu_seqlens(LK),
                max_seqlen_q=max(LQ), max_seqlen_k=max(LK), softmax_scale=0.125)


def _masked_attention_args(dt):
    a = _attention_args(dt)
    a["frame_ids_q"] = torch.cat([torch.arange(n, dtype=torch.int32) // 2 for n in LQ])
    a["frame_ids_k"] = torch.cat([torch.arange(n, dtype=torch.int32) // 2 for n in LK])
    tiles = torch.ones(2, *TileMask.num_tiles(max(LQ), max(LK), 2, 2), dtype=torch.bool)
    tiles[0, 0, 1] = False
    a["tile_mask"] = tiles
    return a


def _tiles(a):
    return None if a.get("tile_mask") is None else TileMask(a["tile_mask"], 2, 2)


def _attention_python(a):
    return lavin_fast.varlen_attention(a["q"], a["k"], a["v"], a["cu_seqlens_q"], a["cu_seqlens_k"], a["max_seqlen_q"],
                                       a["max_seqlen_k"], softmax_scale=a["softmax_scale"],
                                       frame_ids_q=a.get("frame_ids_q"), frame_ids_k=a.get("frame_ids_k"),
                                       tile_mask=_tiles(a))


def _attention_native(a):
    tiles = a.get("tile_mask")
    out, lse, _ = ops.varlen_attention(a["q"], a["k"], a["v"], a["cu_seqlens_q"], a["cu_seqlens_k"],
                                       a["max_seqlen_q"], a["max_seqlen_k"], a["softmax_scale"], False,
                                       a.get("frame_ids_q"), a.get("frame_ids_k"), tiles,
                                       0 if tiles is None else 2, 0 if tiles is None else 2)
    return out, lse  # the third output, lse_residual, has no counterpart in the reference


def _attention_reference(a):
    return ref.varlen_attention(a["q"], a["k"], a["v"], a["cu_seqlens_q"], a["cu_seqlens_k"],
                                softmax_scale=a["softmax_scale"], frame_ids_q=a.get("frame_ids_q"),
                                frame_ids_k=a.get("frame_ids_k"), tile_mask=_tiles(a))


def _no_queries(a):
    """Arguments whose cu_seqlens_q is a stride-0 view: both segments without queries."""
    a = dict(a, q=a["q"][:0], cu_seqlens_q=torch.zeros(1, dtype=torch.int32).expand(3), max_seqlen_q=0)
    if "frame_ids_q" in a:
        a["frame_ids_q"] = a["frame_ids_q"][:0]
        a["tile_mask"] = a["tile_mask"][:, :0]
    return a


def _no_keys(a):
    a = dict(a, k=a["k"][:0], v=a["v"][:0], cu_seqlens_k=torch.zeros(1, dtype=torch.int32).expand(3), max_seqlen_k=0)
    if "frame_ids_k" in a:
        a["frame_ids_k"] = a["frame_ids_k"][:0]
        a["tile_mask"] = a["tile_mask"][:, :, :0]
    return a


ATTENTION_SHAPES = {("q", "rank"): err("'q'", "3-D"), ("q", "size"): err("'k'", r"D = q.shape\[2\]"),
                    ("k", "rank"): err("'k'", "3-D"), ("k", "size"): err("'k'", r"D = q.shape\[2\]"),
                    ("v", "rank"): err("'v'", "3-D"), ("v", "size"): err("'v'", "shape"),
                    ("cu_seqlens_q", "size"): err("'cu_seqlens_k'", "length of 'cu_seqlens_q'"),
                    ("cu_seqlens_k", "size"): err("'cu_seqlens_k'", "length of 'cu_seqlens_q'")}

ATTENTION_EMPTY = [
    ("0 queries", _no_queries, OK),
    ("0 keys", _no_keys, OK),
    ("0 segments", lambda a: dict(_no_keys(_no_queries(a)), cu_seqlens_q=ints([0]), cu_seqlens_k=ints([0])), OK),
    ("empty query segment", changed(cu_seqlens_q=ints([0, 0, 7]), max_seqlen_q=7), OK),
    ("H = 0", changed(q=lambda a: a["q"][:, :0]), err("'q'", "H >= 1")),
    ("H_kv = 0", changed(k=lambda a: a["k"][:, :0], v=lambda a: a["v"][:, :0]), err("H_kv", "multiple")),
    ("head_dim = 0", changed(q=lambda a: a["q"][..., :0], k=lambda a: a["k"][..., :0], v=lambda a: a["v"][..., :0]),
     err("'q'", "head_dim D >= 1")),
    ("head_dim = 0, default scale", changed(q=lambda a: a["q"][..., :0], k=lambda a: a["k"][..., :0],
                                            v=lambda a: a["v"][..., :0], softmax_scale=None),
     {"python": err("'q'", "head_dim D >= 1"), "native": err("softmax_scale", "float")}),
]

ATTENTION_RANGE = [
    ("max_seqlen_q < a segment", changed(max_seqlen_q=3), err("'max_seqlen_q'", "longest is 4")),
    ("max_seqlen_k < 0", changed(max_seqlen_k=-1), err("'max_seqlen_k'", ">= 0|0, 2")),
    ("max_seqlen_q 2^31", changed(max_seqlen_q=2**31), err("'max_seqlen_q'", r"2\^31 - 1")),
    ("max_seqlen_q bool", changed(max_seqlen_q=True), {"python": err("'max_seqlen_q'", "int"),
                                                       "native": err("'max_seqlen_q'", "longest is 4")}),
    ("cu_seqlens_q negative", changed(cu_seqlens_q=ints([0, -3, 7])), err("'cu_seqlens_q'", "non-decreasing")),
    ("cu_seqlens_k past total", changed(cu_seqlens_k=ints([0, 4, 10])), err("'cu_seqlens_k'", "end at total_k")),
    ("cu_seqlens_k 2^31 - 1", changed(cu_seqlens_k=ints([0, 2**31 - 1, 9])), err("'cu_seqlens_k'", "non-decreasing")),
    ("head_dim 300", changed(q=lambda a: randn(7, 2, 300, dtype=a["q"].dtype), k=lambda a: randn(9, 1, 300, dtype=a["q"].dtype),
                             v=lambda a: randn(9, 1, 300, dtype=a["q"].dtype)), err("head_dim", "300")),
    ("softmax_scale inf", changed(softmax_scale=float("inf")), err("'softmax_scale'", "finite")),
    ("softmax_scale nan", changed(softmax_scale=float("nan")), err("'softmax_scale'", "finite")),
    # the CPU kernels compute any finite scale; the CUDA kernels refuse scales <= 0
    ("softmax_scale 0", changed(softmax_scale=0.0), Either(err("'softmax_scale'", "> 0"))),
    ("softmax_scale < 0", changed(softmax_scale=-0.3), Either(err("'softmax_scale'", "> 0"))),
]


# bfloat16: the emulated CUDA kernels take bf16 and fp16 only (the CPU kernels fp32 too).
ATTENTION = Spec(
    "varlen_attention", _attention_args,
    python=_attention_python, native=_attention_native,
    reference=_attention_reference, dtype=torch.bfloat16,
    expanded={"cu_seqlens_q": _no_queries, "cu_seqlens_k": _no_keys},
    shape_outcomes=ATTENTION_SHAPES, empty=ATTENTION_EMPTY, out_of_range=ATTENTION_RANGE,
)

ATTENTION_MASKED = Spec(
    "varlen_attention(frame_ids, tile_mask)", _masked_attention_args,
    python=_attention_python,
    native=_attention_native, reference=_attention_reference, dtype=torch.bfloat16,
    vary=("frame_ids_q", "frame_ids_k", "tile_mask"),
    expanded={"cu_seqlens_q": _no_queries, "cu_seqlens_k": _no_keys},
    shape_outcomes={**ATTENTION_SHAPES,
                    ("frame_ids_q", "rank"): err("'frame_ids_q'", "1-D|shape"),
                    ("frame_ids_k", "rank"): err("'frame_ids_k'", "1-D|shape"),
                    ("tile_mask", "rank"): err("'(tile_)?mask'", "3-D|shape")},
    empty=[c for c in ATTENTION_EMPTY if c[0] in ("0 queries", "0 keys")],
    out_of_range=[
        ("frame ids negative and huge", changed(frame_ids_q=lambda a: a["frame_ids_q"] - 2**31 + 5,
                                                frame_ids_k=lambda a: a["frame_ids_k"] + 2**31 - 5), OK)],
)


def _flash_python(a):
    out, lse, _ = lavin_fast.flash_attn_varlen_func(a["q"], a["k"], a["v"], a["cu_seqlens_q"], a["cu_seqlens_k"],
                                                    a["max_seqlen_q"], a["max_seqlen_k"],
                                                    softmax_scale=a["softmax_scale"], return_attn_probs=True)
    return out, lse


FLASH = Spec(
    "flash_attn_varlen_func", _attention_args,
    python=_flash_python, reference=_attention_reference,
    dtype=torch.bfloat16, classes=("dtype", "device", "shape", "empty", "out_of_range"), backends=("cpu",),
    expanded={"cu_seqlens_q": _no_queries, "cu_seqlens_k": _no_keys},
    shape_outcomes=ATTENTION_SHAPES, empty=ATTENTION_EMPTY[:3],
    out_of_range=ATTENTION_RANGE[:3] + [
        ("numpy max_seqlen", changed(max_seqlen_q=lambda a: numpy.int64(a["max_seqlen_q"])), OK)],
)


# ---- causal 3-D convolution ----

def _conv_args(dt):
    return dict(x=randn(1, 2, 3, 4, 4, dtype=dt), weight=randn(3, 2, 2, 3, 3, dtype=dt, scale=0.3),
                bias=randn(3, dtype=dt), cache=randn(1, 2, 1, 4, 4, dtype=dt), stride=1, spatial_padding=1)


def _conv_python(a):
    return lavin_fast.causal_conv3d(a["x"], a["weight"], a["bias"], a["stride"], a["spatial_padding"], "replicate",
                                    a["cache"], return_cache=True)


def _triple(v):
    return [v] * 3 if isinstance(v, int) else list(v)


def _pair(v):
    return [v] * 2 if isinstance(v, int) else list(v)


CONV_SHAPES = {("x", "rank"): err("'x'", "5-D"), ("x", "size"): err("'cache'", r"\(N, C, k_t - 1, H, W\)"),
               ("weight", "rank"): err("'weight'", "5-D"), ("weight", "size"): OK,  # k_w 3 -> 2
               ("cache", "rank"): err("'cache'", "shape"), ("cache", "size"): err("'cache'", "shape"),
               ("bias", "rank"): err("'bias'", r"\(O,\)"), ("bias", "size"): err("'bias'", r"\(O,\)")}

CONV_EMPTY = [
    ("N = 0", changed(x=lambda a: a["x"][:0], cache=lambda a: a["cache"][:0]), OK),
    ("T = 0", changed(x=lambda a: a["x"][:, :, :0]), err("'x'", "at least one frame")),
    ("C = 0", changed(x=lambda a: a["x"][:, :0], weight=lambda a: a["weight"][:, :0], cache=lambda a: a["cache"][:, :0]),
     err("channels must be >= 1")),
    ("O = 0", changed(weight=lambda a: a["weight"][:0], bias=lambda a: a["bias"][:0]), err("channels must be >= 1")),
    ("H = 0 with padding", changed(x=lambda a: a["x"][..., :0, :], cache=lambda a: a["cache"][..., :0, :],
                                   weight=lambda a: a["weight"][:, :, :, :1]),
     OK),
    ("k_t = 1, empty cache", changed(weight=lambda a: a["weight"][:, :, :1], cache=lambda a: a["cache"][:, :, :0]), OK),
]

CONV_RANGE = [
    ("stride 0", changed(stride=(0, 1, 1)), err("'stride'", ">= 1")),
    ("stride < 0", changed(stride=-1), err("'stride'", ">= 1")),
    ("stride 2", changed(stride=(2, 2, 2)), OK),
    ("padding < 0", changed(spatial_padding=-1), err("'spatial_padding'", ">= 0")),
    ("kernel 0", changed(weight=lambda a: a["weight"][:, :, :0], cache=lambda a: a["cache"][:, :, :0]),
     err("kernel sizes", r"\[1, 7\]")),
    ("kernel 8", changed(weight=lambda a: randn(3, 2, 8, 3, 3, dtype=a["x"].dtype)), err("kernel sizes", r"\[1, 7\]")),
    ("frame smaller than kernel", changed(spatial_padding=0, x=lambda a: a["x"][..., :2, :],
                                          cache=lambda a: a["cache"][..., :2, :]), err("smaller than the kernel")),
    ("stride 2^40", changed(stride=2**40), OK),
]


def _conv_spec(dt):
    return Spec(
        f"causal_conv3d({str(dt).removeprefix('torch.')})", _conv_args, python=_conv_python,
        # the ATen path of fp32 (oneDNN) and the simt kernel of fp16 differ
        native=lambda a: ops.causal_conv3d(a["x"], a["weight"], a["bias"], _triple(a["stride"]),
                                           _pair(a["spatial_padding"]), "replicate", a["cache"], True),
        reference=lambda a: ref.causal_conv3d(a["x"], a["weight"], a["bias"], a["stride"], a["spatial_padding"],
                                              "replicate", a["cache"], return_cache=True),
        dtype=dt, accepts=frozenset([("*", "float64")]), shape_outcomes=CONV_SHAPES, nonfinite_index={"weight": 4},
        backends=("cpu", "simt") if dt != torch.float32 else ("cpu",),
        out_of_range=[(c, f, o[dt] if isinstance(o, dict) else o) for c, f, o in CONV_RANGE],
        empty=CONV_EMPTY)


# ---- linear ----

def _linear_args(dt):
    return dict(x=randn(2, 3, 8, dtype=dt), weight=randn(5, 8, dtype=dt, scale=0.3), bias=randn(5, dtype=dt))


LINEAR = Spec(
    "linear", _linear_args,
    python=lambda a: lavin_fast.linear(a["x"], a["weight"], a["bias"]),
    native=lambda a: ops.linear(a["x"], a["weight"], a["bias"]),
    reference=lambda a: ref.linear(a["x"], a["weight"], a["bias"]), quoted=False, backends=("cpu",),
    accepts=frozenset([("*", "float64")]),
    shape_outcomes={("x", "rank"): OK, ("x", "size"): err("weight", "in_features"),
                    ("weight", "size"): err("weight", "in_features"), ("weight", "rank"): err("'weight'", "2-D"),
                    ("bias", "rank"): err("'bias'", r"\(out_features,\)"), ("bias", "size"): err("'bias'", "shape")},
    empty=[("0 rows", changed(x=lambda a: a["x"][:0]), OK),
           ("out_features = 0", changed(weight=lambda a: a["weight"][:0], bias=lambda a: a["bias"][:0]), OK),
           ("in_features = 0", changed(x=lambda a: a["x"][..., :0], weight=lambda a: a["weight"][:, :0]), OK),
           ("x 0-D", changed(x=torch.tensor(1.0)), err("x", "at least 1 dimension"))],
)


# ---- modules: the parameters are arguments too (set as given, views included) ----

def _param(t):
    return None if t is None else nn.Parameter(t, requires_grad=False)


def _rms_norm_module(a):
    m = lavin_fast.RMSNorm(D, eps=a["eps"])
    m.weight = _param(a["weight"])
    return m(a["x"])


def _qk_module(a):
    m = lavin_fast.QKNormRoPE(HEADS * HEAD_DIM, a["num_heads"], eps=a["eps"], sections=a["sections"], base=a["bases"])
    m.weight = _param(a["weight"])
    return m(a["x"], a["positions"])


def _rotary_args(dt):
    return dict(q=randn(5, 2, HEAD_DIM, dtype=dt), k=randn(5, 1, HEAD_DIM, dtype=dt),
                positions=torch.randint(0, 9, (5, 3), dtype=torch.int32))


def _conv_module(a):
    m = lavin_fast.CausalConv3d(2, 3, (2, 3, 3))
    m.conv.weight, m.conv.bias = _param(a["weight"]), _param(a["bias"])
    return m(a["x"], a["cache"])


def _linear_module(a):
    m = lavin_fast.Linear(8, 5)
    m.weight, m.bias = _param(a["weight"]), _param(a["bias"])
    return m(a["x"])


def _modulation_args(dt):
    return dict(c=randn(2, D, dtype=dt), weight=randn(4 * D, D, dtype=dt, scale=0.3), bias=randn(4 * D, dtype=dt))


def _modulation_module(a):
    m = lavin_fast.JDiTModulation(D)
    m[1].weight, m[1].bias = _param(a["weight"]), _param(a["bias"])
    return m(a["c"])


MODULES = [
    Spec("RMSNorm", _rms_norm_args, python=_rms_norm_module, reference=RMS_NORM.reference, accepts=RMS_NORM.accepts,
         shape_outcomes={("x", "rank"): OK, ("x", "size"): err("normalized_shape"),
                         ("weight", "rank"): err("'weight'", "shape"), ("weight", "size"): err("'weight'", "shape")},
         empty=RMS_NORM.empty[:2]),
    Spec("AdaRMSNorm", _modulate_args, python=lambda a: lavin_fast.AdaRMSNorm(a["eps"])(
        a["x"], a["scale"], a["shift"], cu_seqlens=a["cu_seqlens"]), reference=MODULATE.reference,
         accepts=MODULATE.accepts, expanded=MODULATE.expanded, shape_outcomes=MODULATE.shape_outcomes,
         empty=MODULATE.empty[:3]),
    Spec("GatedRMSResidual", _gated_args, python=lambda a: lavin_fast.GatedRMSResidual(a["eps"])(
        a["residual"], a["y"], a["gate"], cu_seqlens=a["cu_seqlens"]), reference=GATED.reference,
         accepts=GATED.accepts, expanded=GATED.expanded, shape_outcomes=GATED.shape_outcomes, empty=GATED.empty[:2]),
    Spec("JDiTModulation", _modulation_args, python=_modulation_module, accepts=frozenset([("*", "float64")]),
         reference=lambda a: ref.linear(torch.nn.functional.silu(a["c"]), a["weight"], a["bias"]).chunk(4, -1),
         shape_outcomes={("c", "rank"): OK, ("c", "size"): err("'c'", "hidden_size"),
                         ("weight", "rank"): err("'weight'", "shape"), ("weight", "size"): err("'weight'", "shape"),
                         ("bias", "rank"): err("'bias'", "shape"), ("bias", "size"): err("'bias'", "shape")},
         empty=[("0 samples", changed(c=lambda a: a["c"][:0]), OK)]),
    Spec("QKNormRoPE", _rope_args, python=_qk_module, reference=QK_NORM_ROPE.reference, accepts=QK_NORM_ROPE.accepts,
         shape_outcomes={("x", "rank"): err("'positions'", "shape"), ("x", "size"): err("'num_heads'", "divide"),
                         ("positions", "rank"): err("'positions'", "shape"),
                         ("weight", "rank"): err("'weight'", "shape"), ("weight", "size"): err("'weight'", "shape")},
         empty=QK_NORM_ROPE.empty[:2]),
    Spec("RotaryEmbedding3D", _rotary_args,
         python=lambda a: lavin_fast.RotaryEmbedding3D(sections=SECTIONS)(a["q"], a["k"], a["positions"]),
         reference=lambda a: (ref.apply_rope_3d(a["q"], a["positions"], SECTIONS),
                              ref.apply_rope_3d(a["k"], a["positions"], SECTIONS)),
         accepts=frozenset([("positions", "int64")] + [(t, h) for t in "qk" for h in HALF]),
         # q and k each go through apply_rope_3d, whose messages call them 'x'
         aliases={"q": "'(q|x)'", "k": "'(k|x)'"},
         # (1, L, H, D) with positions (L, 3): a padded batch, positions shared by every sample
         shape_outcomes={("q", "rank"): OK, ("q", "size"): err("head_dim|sections"),
                         ("k", "rank"): OK, ("k", "size"): err("head_dim|sections"),
                         ("positions", "rank"): err("positions", "shape")},
         empty=[("0 tokens", changed(q=lambda a: a["q"][:0], k=lambda a: a["k"][:0],
                                     positions=lambda a: a["positions"][:0]), OK)]),
    Spec("CausalConv3d", _conv_args, python=_conv_module,
         reference=lambda a: ref.causal_conv3d(a["x"], a["weight"], a["bias"], 1, (1, 1), "replicate", a["cache"],
                                               return_cache=True),
         # The module casts its parameters to the input's dtype (mixed use without autocast).
         # A weight of another dtype (int32 too) is cast, with the bias, to x's; a bias alone is not.
         accepts=frozenset([("weight", d) for d in HALF + ("float64", "int32")]
                           + [("*", "float64")]),
         nonfinite_index={"weight": 4},
         shape_outcomes={**CONV_SHAPES, ("weight", "size"): OK, ("weight", "rank"): err("'weight'", "5-D|shape")},
         empty=CONV_EMPTY[:1]),
    Spec("Linear", _linear_args, python=_linear_module, reference=LINEAR.reference,
         quoted=False, accepts=LINEAR.accepts, shape_outcomes=LINEAR.shape_outcomes, empty=LINEAR.empty[:2]),
]

for _module in MODULES:
    _module.backends = ("cpu",)

OPS = [RMS_NORM, MODULATE, MODULATE_PADDED, GATED, QK_NORM_ROPE, ATTENTION, ATTENTION_MASKED, FLASH,
       _conv_spec(torch.float32), _conv_spec(torch.float16), LINEAR]
SPECS = OPS + MODULES
