"""The RMSNorm-family cases at the released LaVin-DiT's shapes, with the bytes each pass must move.

"Bytes that must move" counts what the op's semantics force through memory once: every input read,
every output written, nothing else. Not counted: the fp32 rstd the forward saves for the backward
(T x 4 bytes, 1/2304 of one activation pass; an implementation choice, a recomputing backward
would not store it) and scratch such as per-thread partial sums of a weight gradient. With
N = T * D activation elements of e bytes, per-sample/weight tensors of p bytes, S segments:

  op                  forward                       backward (grads of every input that has one)
  rms_norm            x, y: 2Ne                     grad_y, x, grad_x: 3Ne
  rms_norm + weight   2Ne + Dp (weight)             3Ne + 2Dp (read weight, write grad_weight)
  rms_norm_modulate   2Ne + SDp + 4(S+1)            3Ne + 2SDp (read scale, write grad_scale) + 4(S+1)
  gated_rms_residual  residual, y, out: 3Ne         grad_out, y, grad_y: 3Ne (grad_residual IS
                      + SDp + 4(S+1)                grad_out, no bytes) + 2SDp (gate) + 4(S+1)

fwd+bwd is the sum of the two columns.
"""

from dataclasses import dataclass

import torch

import lavin_fast
from lavin_fast.reference import norms as reference

T = 10240  # tokens per packed batch in the released model
D = 2304  # hidden size: 32 heads x head_dim 72
EPS = 1e-6
# Packed batch of 4 samples of unequal length (condition and target images of different sizes).
SEGMENTS_4 = (4096, 3072, 2048, 1024)
CU_BYTES = 4  # cu_seqlens is int32


@dataclass(frozen=True)
class NormCase:
    name: str
    op: str  # the function name in lavin_fast and lavin_fast.reference
    weight: bool = False  # rms_norm only
    segments: tuple = None  # packed cu_seqlens lengths; per-sample tensors are (S, D)

    @property
    def S(self):
        return len(self.segments) if self.segments else 0

    def functions(self):
        return getattr(lavin_fast, self.op), getattr(reference, self.op)

    def inputs(self, dtype, device, requires_grad):
        """(args, kwargs, tensors to differentiate) of one call; the same call works for
        lavin_fast and the reference (same signatures)."""
        g = torch.Generator(device="cpu").manual_seed(0)

        def randn(*shape, scale=1.0):
            t = (torch.randn(*shape, generator=g) * scale).to(device=device, dtype=dtype)
            return t.requires_grad_(requires_grad)

        kwargs = {}
        if self.segments:
            cu = torch.tensor((0, *self.segments), dtype=torch.int64).cumsum(0)
            assert int(cu[-1]) == T
            kwargs["cu_seqlens"] = cu.to(device=device, dtype=torch.int32)
        if self.op == "rms_norm":
            x = randn(T, D)
            if self.weight:
                w = 1 + randn(D, scale=0.1).detach()
                w.requires_grad_(requires_grad)
                return (x, w, EPS), kwargs, (x, w)
            return (x, None, EPS), kwargs, (x,)
        if self.op == "rms_norm_modulate":
            # scale per sample, no shift (LaVin-DiT's AdaRN pre-norm)
            x, scale = randn(T, D), randn(self.S, D, scale=0.1)
            return (x, scale, None, EPS), kwargs, (x, scale)
        if self.op == "gated_rms_residual":
            residual, y, gate = randn(T, D), randn(T, D), randn(self.S, D, scale=0.1)
            return (residual, y, gate, EPS, "tanh"), kwargs, (residual, y, gate)
        raise ValueError(self.op)

    def bytes_moved(self, dtype, passes):
        """Bytes that must move for ``passes`` ("fwd" or "fwd+bwd"); see the module docstring."""
        e = p = torch.empty((), dtype=dtype).element_size()
        n = T * D
        cu = CU_BYTES * (self.S + 1) if self.segments else 0
        if self.op == "rms_norm":
            w = D * p if self.weight else 0
            fwd, bwd = 2 * n * e + w, 3 * n * e + 2 * w
        elif self.op == "rms_norm_modulate":
            fwd, bwd = 2 * n * e + self.S * D * p + cu, 3 * n * e + 2 * self.S * D * p + cu
        elif self.op == "gated_rms_residual":
            fwd, bwd = 3 * n * e + self.S * D * p + cu, 3 * n * e + 2 * self.S * D * p + cu
        else:
            raise ValueError(self.op)
        return fwd if passes == "fwd" else fwd + bwd


CASES = [
    NormCase("rms_norm", "rms_norm"),  # sandwich norm, no weight
    NormCase("rms_norm_qk", "rms_norm", weight=True),  # QK-norm: weight (2304,) = 32 heads x 72
    NormCase("modulate_1seg", "rms_norm_modulate", segments=(T,)),
    NormCase("modulate_4seg", "rms_norm_modulate", segments=SEGMENTS_4),
    NormCase("gated_residual", "gated_rms_residual", segments=SEGMENTS_4),  # tanh gate
]
# --quick keeps one case per op (the packed 4-segment modulate covers the 1-segment path too).
QUICK_CASES = {"rms_norm", "rms_norm_qk", "modulate_4seg", "gated_residual"}
