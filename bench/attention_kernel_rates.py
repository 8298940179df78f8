"""Single-thread rates of the CPU attention kernels (fp32) against the machine's fp32 GEMM ceiling:
forward and forward+backward of lavin_fast.varlen_attention, best wall-clock time of a few runs, and
oneDNN's fp32 GEMM (the fastest fp32 GEMM on this AMD EPYC: MKL's torch.mm takes its AVX2 path)
timed in the same process. Pin it to a core the rest of the machine leaves alone:

    taskset -c 1 python -m bench.attention_kernel_rates

FLOPs: forward 4 * H * D per visible query-key pair, backward 2.5x that (FlashAttention's
convention), so forward+backward counts 3.5x."""

import itertools

import torch

from lavin_fast.attention import varlen_attention
from lavin_fast.linear import linear
from bench.timing import round_seconds

# (name, segment lengths, H, H_kv, D, frame length for the frame block-causal mask or 0)
CASES = [("lavin 10x256", (2560,), 8, 2, 72, 0),
         ("lavin 10x256 frame-causal", (2560,), 8, 2, 72, 256),
         ("navit 256+512+192+64", (256, 512, 192, 64), 8, 2, 64, 0)]


def best_s(fn, reps):
    return min(round_seconds(fn, reps))


def gemm_gflops():
    a, w = torch.randn(2048, 1024), torch.randn(1024, 1024)
    t = best_s(lambda: linear(a, w), 5)
    return 2 * 2048 * 1024 * 1024 / t / 1e9


def main():
    torch.set_num_threads(1)
    peak = gemm_gflops()
    print(f"oneDNN fp32 GEMM 2048x1024x1024, 1 thread: {peak:.1f} GFLOP/s")
    for name, lens, H, Hk, D, frame in CASES:
        g = torch.Generator().manual_seed(0)
        T = sum(lens)
        q = torch.randn(T, H, D, generator=g).requires_grad_()
        k = torch.randn(T, Hk, D, generator=g).requires_grad_()
        v = torch.randn(T, Hk, D, generator=g).requires_grad_()
        grad = torch.randn(T, H, D, generator=g)
        cu = torch.tensor([0, *itertools.accumulate(lens)], dtype=torch.int32)
        starts = list(itertools.accumulate(lens, initial=0))
        kw, pairs = {}, sum(n * n for n in lens)
        if frame:
            f = torch.cat([torch.arange(n) // frame for n in lens]).int()
            kw = dict(frame_ids_q=f, frame_ids_k=f)
            pairs = sum(int((f[a:a + n][None, :] <= f[a:a + n][:, None]).sum()) for a, n in zip(starts, lens))
        flops = 4 * H * D * pairs

        def fwd():
            with torch.no_grad():
                varlen_attention(q, k, v, cu, cu, max(lens), max(lens), **kw)

        def fwd_bwd():
            out = varlen_attention(q, k, v, cu, cu, max(lens), max(lens), **kw)[0]
            torch.autograd.backward(out, grad)

        tf, tb = best_s(fwd, 5), best_s(fwd_bwd, 3)
        rf, rb = flops / tf / 1e9, 3.5 * flops / tb / 1e9
        print(f"{name:26s} fwd {tf * 1e3:7.2f} ms {rf:6.1f} GFLOP/s ({rf / peak:4.0%})   "
              f"fwd+bwd {tb * 1e3:7.2f} ms {rb:6.1f} GFLOP/s ({rb / peak:4.0%})")


if __name__ == "__main__":
    main()
