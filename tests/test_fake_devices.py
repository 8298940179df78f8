"""A meta tensor among CPU ones sends the dispatcher to an op's fake (shape-only) kernel, which returned
an uninitialised CPU tensor. Every op's fake kernel (lavin_fast._fake.register_fake) now raises,
naming the argument and the expected device; calls with all tensors on meta still give shapes."""

import pytest
import torch

import lavin_fast  # noqa: F401  (registers the ops)
from tests.helpers import cu_seqlens, randn

ops = torch.ops.lavin_fast


def _calls():
    cu = cu_seqlens([3, 3])
    pos = torch.zeros(6, 3, dtype=torch.int32)
    return {
        "rms_norm": (ops.rms_norm, [randn(4, 8), randn(8), 1e-6]),
        "rms_norm_backward": (ops.rms_norm_backward, [randn(4, 8), randn(4, 8), randn(8), randn(4), True]),
        "rms_norm_modulate": (ops.rms_norm_modulate, [randn(6, 8), randn(2, 8), randn(2, 8), cu, 1e-6]),
        "gated_rms_residual": (ops.gated_rms_residual, [randn(6, 8), randn(6, 8), randn(2, 8), cu, 1e-6, "tanh"]),
        "varlen_attention": (ops.varlen_attention, [randn(6, 2, 8), randn(6, 2, 8), randn(6, 2, 8), cu, cu, 3, 3, 0.35,
                                                    False, None, None, None, 64, 64]),
        "qk_norm_rope": (ops.qk_norm_rope, [randn(6, 16), randn(16), pos, 2, 1e-6, [2, 3, 3], [1e4], False, True]),
        "linear": (ops.linear, [randn(3, 8), randn(4, 8), randn(4)]),
        "linear_backward": (ops.linear_backward, [randn(3, 4), randn(3, 8), randn(4, 8), [True, True, True]]),
        "causal_conv3d": (ops.causal_conv3d, [randn(1, 2, 3, 4, 4), randn(3, 2, 3, 3, 3), randn(3), [1, 1, 1], [1, 1],
                                              "replicate", randn(1, 2, 2, 4, 4), True]),
    }


def _tensor_args(op, args):
    names = [a.name for a in op.default._schema.arguments]
    return [(i, names[i]) for i, v in enumerate(args) if isinstance(v, torch.Tensor)]


@pytest.mark.parametrize("name", list(_calls()))
def test_one_meta_argument_is_an_error(name):
    op, args = _calls()[name]
    tensors = _tensor_args(op, args)
    first = tensors[0][1]
    for i, arg in tensors[1:]:
        mixed = list(args)
        mixed[i] = mixed[i].to("meta")
        with pytest.raises(ValueError, match=rf"lavin_fast.{name}: argument '{arg}' must be on cpu "
                                             rf"\(the device of '{first}'\), got meta"):
            op(*mixed)
    mixed = [v.to("meta") if j == tensors[0][0] else v for j, v in enumerate(args)]
    with pytest.raises(ValueError, match=rf"argument '{tensors[1][1]}' must be on meta \(the device of '{first}'\)"):
        op(*mixed)


@pytest.mark.parametrize("name", list(_calls()))
def test_all_meta_gives_shapes(name):
    op, args = _calls()[name]
    meta = [v.to("meta") if isinstance(v, torch.Tensor) else v for v in args]
    out = op(*meta)
    for t in out if isinstance(out, tuple) else (out,):
        assert t.device.type == "meta"
