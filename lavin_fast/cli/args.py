"""What every `lavin-fast` command shares: the user-error exception, the one-line parser, and the
argument types whose bad values become argparse's one-line errors."""

import argparse
import math


class CliError(Exception):
    """What the CLI cannot do: main() prints the message (one line) and returns 2."""


def one_line(e, limit=300):
    """An exception as one line (multi-line messages, e.g. a state-dict mismatch, joined), at most ~limit."""
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
    text = text if len(text) <= limit else text[:limit] + " ..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block) that main() prints with exit status 2."""

    def error(self, message):
        raise CliError(f"{self.prog}: error: {message}")


def finite_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return v


def _int(text):
    try:
        return int(text)
    except ValueError:
        return None


def int_at_least(low):
    def parse(text):
        v = _int(text)
        if v is None or v < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
        return v
    return parse


# Images go through the 8x VAE, then 2x2 patches: sides must be multiples of 16.
SIZE_MULTIPLE = 16


def image_side(text):
    v = _int(text)
    if v is None or v <= 0 or v % SIZE_MULTIPLE:
        raise argparse.ArgumentTypeError(f"must be a positive multiple of {SIZE_MULTIPLE} (the VAE's 8x times the "
                                         f"2x2 patch), got {text}")
    return v


def seed(text):
    v = _int(text)
    if v is None or not -2**63 <= v < 2**64:  # torch.Generator.manual_seed's range
        raise argparse.ArgumentTypeError(f"must be an integer in [-2^63, 2^64), got {text}")
    return v


def device(text):
    import torch
    try:
        d = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda or cuda:N, got {text!r}") from None
    if d.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda or cuda:N, got {text!r}")
    return d
