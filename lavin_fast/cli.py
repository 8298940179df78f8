"""`lavin-fast`: in-context generation and the end-to-end J-DiT benchmark.

  lavin-fast generate --example                      # built-in synthetic task, seeded small model
  lavin-fast generate --pair a.png a_out.png --query q.png --weights jdit.safetensors --vae vae.safetensors
  lavin-fast bench                                   # step latency table (see docs/jdit.md)
"""

import argparse
import os
import sys

import torch
import torch.nn.functional as F

# A seeded small J-DiT with the released head layout (head_dim 72) for runs without weights.
SMALL_CONFIG = dict(hidden_size=144, depth=2, num_heads=2, kv_group=2)


def _to_model_image(u8, size):
    x = u8.float().div(127.5).sub(1)[None]
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x[0]


def _to_u8(x):
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def synthetic_example(directory, size=64, pairs=2, seed=0):
    """Writes a built-in task (colour inversion of random shapes) as PNGs; returns (pairs, query)."""
    from lavin_fast.png import write_png
    g = torch.Generator().manual_seed(seed)
    os.makedirs(directory, exist_ok=True)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")

    def image():
        cx, cy, r = (torch.rand(3, generator=g) * torch.tensor([1.2, 1.2, 0.4]) + torch.tensor([-0.6, -0.6, 0.2]))
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < r ** 2).float()
        colour = torch.rand(3, 1, 1, generator=g) * 255
        return (disc * colour + (1 - disc) * (xx + 1) * 60).to(torch.uint8)

    paths = []
    for i in range(pairs):
        a = image()
        pa, pb = os.path.join(directory, f"pair{i}_in.png"), os.path.join(directory, f"pair{i}_out.png")
        write_png(pa, a)
        write_png(pb, 255 - a)
        paths.append((pa, pb))
    q = os.path.join(directory, "query.png")
    write_png(q, image())
    return paths, q


def _randomized_small_model(seed):
    from lavin_fast.models.jdit import LaVinDiT
    torch.manual_seed(seed)
    model = LaVinDiT(**SMALL_CONFIG)
    with torch.no_grad():  # the released init zeroes modulation and output: make it a non-trivial map
        for name, p in model.named_parameters():
            if "modulation" in name or "final_layer" in name:
                p.normal_(0, 0.05)
    return model


def _load_vae(path):
    if path is None:
        from lavin_fast.sampling.toy_vae import ToyVAE
        return ToyVAE()
    from lavin_fast.checkpoint import load_stvae
    return load_stvae(path)


def cmd_generate(args):
    from lavin_fast.checkpoint import load_jdit
    from lavin_fast.png import read_png, write_png
    from lavin_fast.sampling import InContextRequest, sample

    if args.weights:
        model, cfg = load_jdit(args.weights)
    else:
        model, cfg = _randomized_small_model(args.seed), SMALL_CONFIG
    size = args.size or (512 if args.weights else 64)
    if args.example or not args.query:
        pairs, query = synthetic_example(args.out or "lavin_fast_example", size=size, seed=args.seed)
    else:
        pairs, query = [tuple(p) for p in (args.pair or [])], args.query
    vae = _load_vae(args.vae)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    model = model.to(dtype).eval()
    load = lambda p: _to_model_image(read_png(p), size).to(dtype)  # noqa: E731
    req = InContextRequest([(load(a), load(b)) for a, b in pairs], load(query))
    grid = "released" if args.steps == "released" else int(args.steps)
    out = sample(model, [req], grid=grid, cfg_scale=args.cfg, vae=vae,
                 generator=torch.Generator().manual_seed(args.seed), progress=not args.quiet)[0]
    stem, _ = os.path.splitext(query)
    path = stem + "_lavin.png"
    write_png(path, _to_u8(out.float()))
    print(f"wrote {path} (J-DiT {cfg}, {'weights ' + args.weights if args.weights else 'seeded small model, no weights'}, "
          f"{len(pairs)} pairs, {size}x{size}, grid {args.steps}, cfg {args.cfg})")
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="lavin-fast", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="in-context inference; writes <query>_lavin.png next to the query")
    g.add_argument("--pair", nargs=2, action="append", metavar=("INPUT", "OUTPUT"), help="an in-context pair (PNG)")
    g.add_argument("--query", help="query image (PNG)")
    g.add_argument("--example", action="store_true", help="use the built-in synthetic example")
    g.add_argument("--out", help="directory for the example's images (default ./lavin_fast_example)")
    g.add_argument("--weights", help="released J-DiT weights (safetensors); default: seeded small model")
    g.add_argument("--vae", help="ST-VAE weights (safetensors); default: a toy 8x VAE stand-in")
    g.add_argument("--size", type=int, help="image side (default 512 with weights, 64 without)")
    g.add_argument("--steps", default="released", help='"released" (20-point grid) or a number of uniform steps')
    g.add_argument("--cfg", type=float, default=1.5, help="classifier-free guidance scale")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g.set_defaults(fn=cmd_generate)
    from lavin_fast.e2e_bench import add_bench_parser
    add_bench_parser(sub)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
