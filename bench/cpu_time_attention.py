"""Single-thread attention rates by process CPU time, a measure that survives a shared machine
(preemption does not count; wall-clock medians varied up to 2x between runs while the CPU time of
the same call did not): lavin_fast vs SDPA looping over segments, forward and forward+backward,
against the fastest fp32 matmul timed the same way (oneDNN's, via lavin_fast.linear; MKL's torch.mm
takes its AVX2 path on AMD processors and is printed for reference).

    python -m bench.cpu_time_attention
"""

import itertools
import time

import torch
import torch.nn.functional as F

from lavin_fast.attention import varlen_attention
from lavin_fast.linear import linear
from bench.timing import round_seconds

CASES = [((256, 512, 192, 64), 8, 2, 64), ((2560,), 8, 2, 72)]


def cpu_ms(fn, rounds=3):
    return sorted(round_seconds(fn, rounds, clock=time.process_time))[rounds // 2] * 1e3


def main():
    torch.set_num_threads(1)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    mkl = 2 * 2048 ** 3 / cpu_ms(lambda: a @ b) / 1e6
    mm = max(mkl, 2 * 2048 ** 3 / cpu_ms(lambda: linear(a, b)) / 1e6)
    print(f"fp32 matmul 2048^3, 1 thread: {mm:.1f} GFLOP/s (oneDNN), torch.mm (MKL) {mkl:.1f} (CPU time)")
    for lens, H, Hk, D in CASES:
        T = sum(lens)
        cu = torch.tensor([0, *itertools.accumulate(lens)], dtype=torch.int32)
        q, k, v = (torch.randn(T, h, D, requires_grad=True) for h in (H, Hk, Hk))
        g = torch.randn(T, H, D)
        flops = sum(4 * n * n * H * D for n in lens)
        qb, kb, vb, gb = (t.transpose(0, 1).unsqueeze(0) for t in (q, k, v, g))
        bounds = cu.tolist()

        def sdpa():
            return torch.cat([F.scaled_dot_product_attention(qb[:, :, x:y], kb[:, :, x:y], vb[:, :, x:y],
                                                             enable_gqa=True)
                              for x, y in zip(bounds, bounds[1:])], 2)

        def lavin():
            return varlen_attention(q, k, v, cu, cu, max(lens), max(lens))[0]

        with torch.no_grad():
            fl, fs = cpu_ms(lavin), cpu_ms(sdpa)
        bl = cpu_ms(lambda: torch.autograd.grad(lavin(), (q, k, v), g))
        bs = cpu_ms(lambda: torch.autograd.grad(sdpa(), (q, k, v), gb))
        print(f"{'+'.join(map(str, lens))} H {H}/{Hk} D {D}: fwd lavin {fl:.1f} ms "
              f"({flops / fl / 1e6:.1f} GFLOP/s, {100 * flops / fl / 1e6 / mm:.0f}% of matmul), sdpa_loop "
              f"{fs:.1f} ms (lavin {fs / fl:.2f}x) | fwd+bwd lavin {bl:.1f} ms "
              f"({3.5 * flops / bl / 1e6:.1f} GFLOP/s), sdpa_loop {bs:.1f} ms (lavin {bs / bl:.2f}x)")


if __name__ == "__main__":
    main()
