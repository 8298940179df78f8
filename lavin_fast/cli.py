"""`lavin-fast`: in-context generation and the end-to-end J-DiT benchmark.

  lavin-fast generate --example                      # built-in synthetic task, seeded small model
  lavin-fast generate --pair a.png a_out.png --query q.png --weights jdit.safetensors --vae vae.safetensors
  lavin-fast bench                                   # step latency table (see docs/jdit.md)
"""

import argparse
import math
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


class CliError(Exception):
    """What the CLI cannot do: main() prints the message (one line) and returns 2."""


def _one_line(e, limit=300):
    """An exception as one line (multi-line messages, e.g. a state-dict mismatch, joined), at most ~limit."""
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
    text = text if len(text) <= limit else text[:limit] + " ..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


# What a bad or missing file raises from the loaders (open, safetensors, the strict state-dict load).
def _load_errors():
    from safetensors import SafetensorError
    return (OSError, ValueError, KeyError, RuntimeError, SafetensorError)


def _load(flag, what, path, loader):
    try:
        return loader(path)
    except _load_errors() as e:
        raise CliError(f"argument {flag}: cannot load {what} from {path}: {_one_line(e)}") from None


def _load_vae(path, dtype):
    if path is None:
        from lavin_fast.sampling.toy_vae import ToyVAE
        return ToyVAE()
    from lavin_fast.checkpoint import load_stvae
    return _load("--vae", "ST-VAE weights", path, lambda p: load_stvae(p, dtype=dtype).eval())


def _read_image(flag, path, size, dtype):
    from lavin_fast.png import read_png
    try:
        u8 = read_png(path)
    except (OSError, ValueError, EOFError) as e:
        raise CliError(f"argument {flag}: cannot read image {path}: {_one_line(e)}") from None
    return _to_model_image(u8, size).to(dtype)


def _check_mode(args):
    """--example, or --pair ... and --query: nothing else, so that no input is silently ignored."""
    if args.example and (args.pair or args.query):
        raise CliError("argument --example: --example takes no --pair or --query (it makes its own images)")
    if not args.example:
        if args.pair and not args.query:
            raise CliError("argument --pair: --pair needs --query (the image whose output is predicted)")
        if args.query and not args.pair:
            raise CliError("argument --query: --query needs at least one --pair INPUT OUTPUT")
        if not args.query:
            raise CliError("give --example, or --pair INPUT OUTPUT (one or more) and --query IMAGE")
        if args.out:
            raise CliError("argument --out: --out is only used with --example")


def cmd_generate(args):
    from lavin_fast.checkpoint import load_jdit
    from lavin_fast.png import write_png
    from lavin_fast import sampling

    _check_mode(args)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    if args.weights:
        model, cfg = _load("--weights", "J-DiT weights", args.weights, load_jdit)
    else:
        model, cfg = _randomized_small_model(args.seed), SMALL_CONFIG
    vae = _load_vae(args.vae, dtype)
    size = args.size or (512 if args.weights else 64)
    if args.example:
        out_dir = args.out or "lavin_fast_example"
        try:
            pairs, query = synthetic_example(out_dir, size=size, seed=args.seed)
        except OSError as e:
            raise CliError(f"argument --out: cannot write the example to {out_dir}: {_one_line(e)}") from None
    else:
        pairs, query = [tuple(p) for p in args.pair], args.query
    model = model.to(dtype).eval()
    req = sampling.InContextRequest([(_read_image("--pair", a, size, dtype), _read_image("--pair", b, size, dtype))
                                     for a, b in pairs], _read_image("--query", query, size, dtype))
    out = sampling.sample(model, [req], grid=args.steps, cfg_scale=args.cfg, vae=vae,
                          generator=torch.Generator().manual_seed(args.seed), progress=not args.quiet)[0]
    stem, _ = os.path.splitext(query)
    path = stem + "_lavin.png"
    try:
        write_png(path, _to_u8(out.float()))
    except OSError as e:
        raise CliError(f"cannot write {path}: {_one_line(e)}") from None
    source = f"weights {args.weights}" if args.weights else "seeded small model, no weights"
    print(f"wrote {path} (J-DiT {cfg}, {source}, {len(pairs)} pairs, {size}x{size}, grid {args.steps}, "
          f"cfg {args.cfg}, {args.dtype})")
    return 0


# ---- argument types: a bad value is argparse's one-line error ----

# Images go through the 8x VAE, then 2x2 patches: sides must be multiples of 16.
SIZE_MULTIPLE = 16


def _finite_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return v


def _image_size(text):
    try:
        v = int(text)
    except ValueError:
        v = None
    if v is None or v <= 0 or v % SIZE_MULTIPLE:
        raise argparse.ArgumentTypeError(f"must be a positive multiple of {SIZE_MULTIPLE} (the VAE's 8x times the "
                                         f"2x2 patch), got {text}")
    return v


def _steps(text):
    if text == "released":
        return text
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be 'released' or an integer >= 1, got {text!r}")
    return v


def _seed(text):
    try:
        v = int(text)
    except ValueError:
        v = None
    if v is None or not -2**63 <= v < 2**64:  # torch.Generator.manual_seed's range
        raise argparse.ArgumentTypeError(f"must be an integer in [-2^63, 2^64), got {text}")
    return v


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block) that main() prints with exit status 2."""

    def error(self, message):
        raise CliError(f"{self.prog}: error: {message}")


def build_parser():
    p = _Parser(prog="lavin-fast", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="in-context inference; writes <query>_lavin.png next to the query")
    g.add_argument("--pair", nargs=2, action="append", metavar=("INPUT", "OUTPUT"), help="an in-context pair (PNG)")
    g.add_argument("--query", help="query image (PNG)")
    g.add_argument("--example", action="store_true", help="use the built-in synthetic example")
    g.add_argument("--out", help="directory for the example's images (default ./lavin_fast_example)")
    g.add_argument("--weights", help="released J-DiT weights (safetensors); default: seeded small model")
    g.add_argument("--vae", help="ST-VAE weights (safetensors); default: a toy 8x VAE stand-in")
    g.add_argument("--size", type=_image_size, help="image side, a multiple of 16 (default 512 with weights, 64 "
                   "without)")
    g.add_argument("--steps", type=_steps, default="released",
                   help='"released" (20-point grid) or a number of uniform steps')
    g.add_argument("--cfg", type=_finite_float, default=1.5, help="classifier-free guidance scale")
    g.add_argument("--seed", type=_seed, default=0)
    g.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g.set_defaults(fn=cmd_generate)
    from lavin_fast.e2e_bench import add_bench_parser
    add_bench_parser(sub)
    from lavin_fast.doctor import add_doctor_parser
    add_doctor_parser(sub)
    return p


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
    except CliError as e:  # already "prog: error: ..."
        print(e, file=sys.stderr)
        return 2
    try:
        return args.fn(args)
    except CliError as e:
        print(f"lavin-fast {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
