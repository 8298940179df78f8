"""`lavin-fast`: in-context generation and the end-to-end J-DiT benchmark.

  lavin-fast generate --example                      # built-in synthetic task, seeded small model
  lavin-fast generate --task-dir template/depth_estimation --query q.png --output out.png \\
      --weights jdit.safetensors --vae vae.safetensors  # the released inference.py, same options
  lavin-fast bench                                   # step latency table (see docs/jdit.md)
  lavin-fast doctor                                  # what the build supports on this machine

A user error (a missing file, bad weights, a bad number) is one line on stderr and exit status 2;
--debug shows the traceback instead.
"""

import sys

from lavin_fast.cli.args import CliError, Parser


def build_parser():
    from lavin_fast.cli.generate import add_generate_parser
    from lavin_fast.doctor import add_doctor_parser
    from lavin_fast.e2e_bench import add_bench_parser
    p = Parser(prog="lavin-fast", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    add_generate_parser(sub)
    add_bench_parser(sub)
    add_doctor_parser(sub)
    return p


def _user_error(e, args):
    """The one line for what the user can fix; None for a bug (which keeps its traceback)."""
    import torch
    if isinstance(e, CliError):
        return str(e)
    if isinstance(e, torch.OutOfMemoryError):
        return (f"out of memory on {getattr(args, 'device', None) or 'the device'}: use smaller images "
                f"(--height/--width), fewer pairs or --dtype bf16")
    return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except CliError as e:  # already "prog: error: ..."
        print(e, file=sys.stderr)
        return 2
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print(f"lavin-fast {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        line = _user_error(e, args)
        if line is None or getattr(args, "debug", False):
            raise
        print(f"lavin-fast {args.command}: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
