"""`lavin-fast generate`: the released inference script (inference.py of LaVin-DiT) as a command.

The release's options work under its own names too (--task_dir, --num_prompt, --timesteps, --cfg_scale,
--vae_path, --dit_path, --output, --height, --width), so its infer.sh lines run unchanged after
`lavin-fast generate`. Differences from the release, on purpose: the latent of each image is the VAE
posterior's mean (the release draws a sample), the pairs drawn from --task-dir follow --seed, and
without --weights a seeded small model and a toy VAE stand in, so the command runs anywhere."""

import glob
import os
import random

import torch

from lavin_fast.cli import args as cli_args
from lavin_fast.cli.args import CliError, one_line

# A seeded small J-DiT with the released head layout (head_dim 72) for runs without weights.
SMALL_CONFIG = dict(hidden_size=144, depth=2, num_heads=2, kv_group=2)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")


def synthetic_example(directory, size=64, pairs=2, seed=0):
    """Writes a built-in task (colour inversion of random shapes) in the release's task layout
    (NAME_input.png / NAME_target.png) plus query.png; returns (pairs, query)."""
    from lavin_fast.images import write_image
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
        pa, pb = os.path.join(directory, f"pair{i}_input.png"), os.path.join(directory, f"pair{i}_target.png")
        write_image(pa, a)
        write_image(pb, 255 - a)
        paths.append((pa, pb))
    q = os.path.join(directory, "query.png")
    write_image(q, image())
    return paths, q


def task_pairs(task_dir):
    """The release's task layout: NAME_input.<ext> with NAME_target.<ext>, sorted by NAME."""
    if not os.path.isdir(task_dir):
        raise CliError(f"argument --task-dir: {task_dir} is not a directory")
    found = {}
    for path in glob.glob(os.path.join(glob.escape(task_dir), "*_*")):
        stem, ext = os.path.splitext(os.path.basename(path))
        name, _, role = stem.rpartition("_")
        if ext.lower() in IMAGE_EXTENSIONS and role in ("input", "target") and name:
            if role in found.setdefault(name, {}):
                raise CliError(f"argument --task-dir: two {role} images for {name!r} in {task_dir}: "
                               f"{os.path.basename(found[name][role])} and {os.path.basename(path)}")
            found[name][role] = path
    if not found:
        raise CliError(f"argument --task-dir: no NAME_input.png / NAME_target.png pairs in {task_dir}")
    for name, roles in sorted(found.items()):
        missing = {"input", "target"} - roles.keys()
        if missing:
            have = os.path.basename(next(iter(roles.values())))
            raise CliError(f"argument --task-dir: {have} has no {name}_{missing.pop()} image in {task_dir}")
    return [(found[n]["input"], found[n]["target"]) for n in sorted(found)]


def _randomized_small_model(seed):
    from lavin_fast.models.jdit import LaVinDiT
    torch.manual_seed(seed)
    model = LaVinDiT(**SMALL_CONFIG)
    with torch.no_grad():  # the released init zeroes modulation and output: make it a non-trivial map
        for name, p in model.named_parameters():
            if "modulation" in name or "final_layer" in name:
                p.normal_(0, 0.05)
    return model


# What a bad or missing file raises from the loaders (open, safetensors, the strict state-dict load).
def _load_errors():
    from safetensors import SafetensorError
    return (OSError, ValueError, KeyError, RuntimeError, SafetensorError)


def _load(flag, what, path, loader):
    try:
        return loader(path)
    except _load_errors() as e:
        raise CliError(f"argument {flag}: cannot load {what} from {path}: {one_line(e)}") from e


def _check_inputs(args):
    """Exactly one source of pairs (--example, --pair, --task-dir), a --query with the last two, and no
    option that would be silently ignored."""
    sources = [flag for flag, given in (("--example", args.example), ("--pair", args.pair),
                                        ("--task-dir", args.task_dir)) if given]
    if len(sources) > 1:
        raise CliError(f"argument {sources[1]}: not allowed with {sources[0]} (give one source of pairs)")
    if not sources:
        raise CliError("give --example, or --pair INPUT OUTPUT (one or more) or --task-dir DIR, and --query IMAGE")
    if args.example:
        if args.query:
            raise CliError("argument --query: --example makes its own query (give --pair or --task-dir with --query)")
    else:
        if not args.query:
            raise CliError(f"argument {sources[0]}: {sources[0]} needs --query (the image whose output is predicted)")
        if args.out:
            raise CliError("argument --out: --out is only used with --example (the result goes to --output)")
    if args.num_prompt is not None and not args.task_dir:
        raise CliError("argument --num-prompt: --num-prompt is only used with --task-dir")
    if args.size is not None and (args.height is not None or args.width is not None):
        raise CliError("argument --size: give --size, or --height and --width, not both")


def _device_and_dtype(args):
    device = args.device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CliError(f"argument --device: {device} requested but torch sees no CUDA device "
                           f"(torch {torch.__version__}, CUDA {torch.version.cuda})")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise CliError(f"argument --device: {device} does not exist (torch sees "
                           f"{torch.cuda.device_count()} CUDA devices)")
        from lavin_fast import _C
        if not _C.cuda_compiled():
            raise CliError("argument --device: this build of lavin_fast has no CUDA kernels (built without "
                           "nvcc); rebuild with LAVIN_FAST_CUDA=1 or use --device cpu")
    # bf16 on a GPU as released; fp32 on the CPU, where bf16 is slower and less accurate.
    name = args.dtype or ("bf16" if device.type == "cuda" else "fp32")
    return device, name, {"fp32": torch.float32, "bf16": torch.bfloat16}[name]


def _read(flag, path, height, width):
    """An image file -> fp32 (3, height, width) in [-1, 1], as the release prepares it."""
    from lavin_fast.images import ImageFileError, read_image, resize_for_model
    try:
        u8 = read_image(path)
    except ImageFileError as e:
        raise CliError(f"argument {flag}: {e}") from e
    return resize_for_model(u8, height, width)


def _output_path(args, query):
    if args.output:
        return args.output
    if args.example:
        return os.path.join(args.out or "lavin_fast_example", "query_lavin.png")
    return os.path.splitext(query)[0] + "_lavin.png"


def _check_output(path):
    """Before any work: the format is known and the folder exists (nothing is written on error)."""
    from lavin_fast.images import ImageFileError, image_format
    try:
        image_format(path)
    except ImageFileError as e:
        raise CliError(f"argument --output: {e}") from e
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CliError(f"argument --output: folder {folder} does not exist")
    if os.path.isdir(path):
        raise CliError(f"argument --output: {path} is a directory (give a file name such as result.png)")


def _sources(args, height, width):
    """(pairs, query, flag naming where the pairs came from): image paths."""
    if args.example:
        out_dir = args.out or "lavin_fast_example"
        try:
            pairs, query = synthetic_example(out_dir, size=max(height, width), seed=args.seed)
        except OSError as e:
            raise CliError(f"argument --out: cannot write the example to {out_dir}: {one_line(e)}") from e
        return pairs, query, "--example"
    if args.task_dir:
        available = task_pairs(args.task_dir)
        # The release draws --num-prompt pairs with replacement (random.choices); here from --seed.
        k = 4 if args.num_prompt is None else args.num_prompt
        return random.Random(args.seed).choices(available, k=k), args.query, "--task-dir"
    return [tuple(p) for p in args.pair], args.query, "--pair"


def run(args):
    from lavin_fast import sampling
    from lavin_fast.checkpoint import load_jdit, load_stvae
    from lavin_fast.images import model_input_to_u8, model_output_to_u8, side_by_side, write_image

    # Everything that can be checked cheaply is, before the weights load (3.4B parameters take a while).
    _check_inputs(args)
    device, dtype_name, dtype = _device_and_dtype(args)
    default_side = 512 if args.weights else 64
    height = args.size or args.height or default_side
    width = args.size or args.width or default_side
    grid = sampling.grid_of_points(args.steps)
    if args.output or not args.example:  # the example's default folder does not exist yet
        _check_output(_output_path(args, args.query))
    pairs, query, pair_flag = _sources(args, height, width)
    pair_images = [(_read(pair_flag, a, height, width), _read(pair_flag, b, height, width)) for a, b in pairs]
    query_image = _read("--query", query, height, width)

    if args.weights:
        model, cfg = _load("--weights", "J-DiT weights", args.weights, load_jdit)
    else:
        model, cfg = _randomized_small_model(args.seed), SMALL_CONFIG
    model = model.to(device=device, dtype=dtype).eval()
    if args.vae:
        vae = _load("--vae", "ST-VAE weights", args.vae, lambda p: load_stvae(p, dtype=dtype, device=device).eval())
    else:
        from lavin_fast.sampling.toy_vae import ToyVAE
        vae = ToyVAE()

    def on_device(x):
        return x.to(device=device, dtype=dtype)
    request = sampling.InContextRequest([(on_device(a), on_device(b)) for a, b in pair_images], on_device(query_image))
    out = sampling.sample(model, [request], grid=grid, cfg_scale=args.cfg, vae=vae,
                          generator=torch.Generator().manual_seed(args.seed),
                          progress=False if args.quiet else None)[0]
    result = model_output_to_u8(out.cpu())
    # The release shows the query as the model saw it (resized), cast from its fp32 copy.
    picture = result if args.result_only else side_by_side(model_input_to_u8(query_image), result)
    path = _output_path(args, query)
    try:
        write_image(path, picture)
    except OSError as e:
        raise CliError(f"argument --output: cannot write {path}: {one_line(e)}") from e
    source = f"weights {args.weights}" if args.weights else "seeded small model, no weights"
    grid_name = "released" if args.steps in sampling.RELEASED_GRIDS else "uniform"
    print(f"wrote {path} (J-DiT {cfg}, {source}, {len(pairs)} pair{'s' * (len(pairs) != 1)}, {width}x{height}, {grid_name} "
          f"{args.steps}-point grid ({args.steps - 1} Euler steps), cfg {args.cfg}, {dtype_name} on {device})")
    return 0


def _steps(text):
    if text == "released":
        return 20
    return cli_args.int_at_least(2)(text)


def add_generate_parser(sub):
    g = sub.add_parser("generate", help="in-context inference as the released inference.py (one image)",
                       description=__doc__.splitlines()[0])
    src = g.add_argument_group("pairs and query (one source of pairs)")
    src.add_argument("--pair", nargs=2, action="append", metavar=("INPUT", "OUTPUT"),
                     help="an in-context pair of image files (repeat for more)")
    src.add_argument("--task-dir", "--task_dir", dest="task_dir",
                     help="a folder of NAME_input.png / NAME_target.png pairs (the release's task templates)")
    src.add_argument("--num-prompt", "--num_prompt", dest="num_prompt", type=cli_args.int_at_least(1),
                     help="pairs drawn from --task-dir, with replacement, as released (default 4)")
    src.add_argument("--query", help="the image whose output is predicted")
    src.add_argument("--example", action="store_true", help="a built-in synthetic task (colour inversion)")
    src.add_argument("--out", help="folder for the example's images (default ./lavin_fast_example)")
    g.add_argument("--output", help="result image (.png, .jpg, .webp); default <query>_lavin.png beside the query")
    g.add_argument("--result-only", action="store_true",
                   help="write the result alone, not the release's query|result picture (4 px padding)")
    g.add_argument("--weights", "--dit_path", dest="weights",
                   help="released J-DiT weights (safetensors); default: a seeded small model")
    g.add_argument("--vae", "--vae_path", dest="vae", help="ST-VAE weights (safetensors); default: a toy 8x VAE")
    g.add_argument("--height", type=cli_args.image_side, help="a multiple of 16 (default 512 with weights, else 64)")
    g.add_argument("--width", type=cli_args.image_side, help="a multiple of 16 (default 512 with weights, else 64)")
    g.add_argument("--size", type=cli_args.image_side, help="--height and --width at once")
    g.add_argument("--steps", "--timesteps", dest="steps", type=_steps, default=20,
                   help="time points, as the release's --timesteps: 20, 30 and 40 use its hand-made grids "
                        "(N - 1 Euler steps), any other N >= 2 N evenly spaced points (default 20)")
    g.add_argument("--cfg", "--cfg_scale", "--cfg-scale", dest="cfg", type=cli_args.finite_float,
                   default=1.5, help="classifier-free guidance scale (default 1.5)")
    g.add_argument("--seed", type=cli_args.seed, default=0, help="noise and the pairs drawn from --task-dir")
    g.add_argument("--device", type=cli_args.device, help="cpu or cuda[:N] (default cuda when torch sees one)")
    g.add_argument("--dtype", choices=["fp32", "bf16"], help="default bf16 on a GPU (as released), fp32 on the CPU")
    g.add_argument("--quiet", action="store_true", help="no progress bar (it is shown only on a terminal)")
    g.add_argument("--debug", action="store_true", help="a traceback instead of the one-line error")
    g.set_defaults(fn=run)
