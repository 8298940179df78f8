"""What `lavin-fast generate` cannot do gives one line on stderr naming the argument, exit status 2, no
traceback and no file written; `--dtype bf16` runs in bf16 end to end."""

import os
import struct
import subprocess
import sys
import zlib

import pytest
import torch

from lavin_fast.cli import main
from lavin_fast.png import read_png, write_png
from tests.jdit_cases import GOLDEN
from tests.stvae_helpers import GOLDEN as STVAE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--steps", "1", "--size", "32", "--quiet"]


def _files(tmp_path):
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))


def _images(tmp_path, size=(20, 24)):
    for name in ("a", "b", "q"):
        write_png(tmp_path / f"{name}.png", torch.randint(0, 256, (3, *size), dtype=torch.uint8))
    return [str(tmp_path / n) for n in ("a.png", "b.png", "q.png")]


def _pair_args(tmp_path):
    a, b, q = _images(tmp_path)
    return ["--pair", a, b, "--query", q]


def _expect_error(capsys, tmp_path, argv, pattern):
    """main(argv) exits 2 with one line naming the argument, and writes nothing under tmp_path."""
    import re
    before = _files(tmp_path)
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in err
    assert _files(tmp_path) == before, "a file was written"


def _png_bytes(filter_byte=0, w=4, h=3):
    raw = b"".join(bytes([filter_byte]) + bytes(range(3 * w)) for _ in range(h))

    def chunk(k, d):
        return struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# (what, extra argv after "generate", pattern on the one line)
NUMBER_CASES = [
    ("cfg nan", ["--cfg", "nan"], r"--cfg.*finite"),
    ("cfg inf", ["--cfg", "inf"], r"--cfg.*finite"),
    ("cfg -inf", ["--cfg=-inf"], r"--cfg.*finite"),
    ("cfg word", ["--cfg", "big"], r"--cfg"),
    ("size 0", ["--size", "0"], r"--size.*positive multiple of 16.*got 0"),
    ("size negative", ["--size", "-32"], r"--size.*positive multiple of 16"),
    ("size not a multiple", ["--size", "40"], r"--size.*multiple of 16.*got 40"),
    ("steps 0", ["--steps", "0"], r"--steps.*'released' or an integer >= 1.*got '0'"),
    ("steps negative", ["--steps", "-3"], r"--steps.*got '-3'"),
    ("steps nan", ["--steps", "nan"], r"--steps.*got 'nan'"),
    ("steps inf", ["--steps", "inf"], r"--steps.*got 'inf'"),
    ("steps fraction", ["--steps", "2.5"], r"--steps.*got '2.5'"),
    ("dtype", ["--dtype", "fp8"], r"--dtype"),
    ("seed", ["--seed", str(2**70)], r"--seed"),
]


@pytest.mark.parametrize("what,argv,pattern", NUMBER_CASES, ids=[c[0] for c in NUMBER_CASES])
def test_bad_numbers(capsys, tmp_path, what, argv, pattern):
    _expect_error(capsys, tmp_path, ["generate", "--example", "--out", str(tmp_path / "ex"), *argv, "--quiet"],
                  pattern)


def test_pair_without_query_and_query_without_pair(capsys, tmp_path):
    a, b, q = _images(tmp_path)
    _expect_error(capsys, tmp_path, ["generate", "--pair", a, b, *FAST], r"--pair needs --query")
    _expect_error(capsys, tmp_path, ["generate", "--query", q, *FAST], r"--query needs at least one --pair")
    _expect_error(capsys, tmp_path, ["generate", "--example", "--query", q, *FAST],
                  r"--example takes no --pair or --query")
    _expect_error(capsys, tmp_path, ["generate", *FAST], r"give --example, or --pair .* and --query")


def test_missing_and_corrupt_images(capsys, tmp_path):
    a, b, q = _images(tmp_path)
    missing = str(tmp_path / "nope.png")
    _expect_error(capsys, tmp_path, ["generate", "--pair", a, missing, "--query", q, *FAST],
                  r"--pair: cannot read image .*nope.png")
    _expect_error(capsys, tmp_path, ["generate", "--pair", a, b, "--query", missing, *FAST],
                  r"--query: cannot read image .*nope.png")
    bad = {"filter": _png_bytes(filter_byte=7), "truncated": _png_bytes()[:40], "not a png": b"GIF89a....",
           "empty": b"", "crc": _png_bytes()[:-5] + b"\x00" + _png_bytes()[-4:]}
    for name, data in bad.items():
        path = tmp_path / f"bad_{name.replace(' ', '_')}.png"
        path.write_bytes(data)
        _expect_error(capsys, tmp_path, ["generate", "--pair", a, b, "--query", str(path), *FAST],
                      r"--query: cannot read image .*bad_")
    _expect_error(capsys, tmp_path, ["generate", "--pair", a, b, "--query", str(tmp_path), *FAST],
                  r"--query: cannot read image")


def test_missing_and_corrupt_weights(capsys, tmp_path):
    args = _pair_args(tmp_path)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    for flag in ("--weights", "--vae"):
        _expect_error(capsys, tmp_path, ["generate", *args, flag, str(tmp_path / "none.safetensors"), *FAST],
                      flag + r": cannot load .*none.safetensors")
        _expect_error(capsys, tmp_path, ["generate", *args, flag, str(junk), *FAST], flag + r": cannot load")
    # A valid safetensors file of the wrong model
    _expect_error(capsys, tmp_path, ["generate", *args, "--weights", STVAE, *FAST], r"--weights: cannot load")


def test_example_out_that_is_a_file(capsys, tmp_path):
    (tmp_path / "f").write_text("x")
    _expect_error(capsys, tmp_path, ["generate", "--example", "--out", str(tmp_path / "f"), *FAST], r"--out")


def test_png_rejects_a_corrupt_filter_byte(tmp_path):
    (tmp_path / "f.png").write_bytes(_png_bytes(filter_byte=5))
    with pytest.raises(ValueError, match=r"row 0 has filter type 5 \(valid: 0-4\)"):
        read_png(tmp_path / "f.png")
    (tmp_path / "ok.png").write_bytes(_png_bytes(filter_byte=0))
    assert read_png(tmp_path / "ok.png").shape == (3, 3, 4)


def test_bf16_runs_in_bf16_end_to_end(tmp_path, monkeypatch):
    """--dtype bf16 with the toy VAE and with the real (small) ST-VAE: the model, the VAE and every
    tensor the sampler passes between them are bf16."""
    import lavin_fast.sampling as sampling
    seen = []
    real_sample = sampling.sample

    def spy(model, requests, **kw):
        dtypes = {p.dtype for p in model.parameters()}
        dtypes |= {f.dtype for r in requests for pair in r.pairs for f in pair} | {requests[0].query.dtype}
        if isinstance(kw["vae"], torch.nn.Module):
            dtypes |= {p.dtype for p in kw["vae"].parameters()}
        out = real_sample(model, requests, **kw)
        seen.append(dtypes | {o.dtype for o in out})
        return out

    monkeypatch.setattr(sampling, "sample", spy)
    args = _pair_args(tmp_path)
    assert main(["generate", *args, "--dtype", "bf16", *FAST]) == 0
    assert read_png(tmp_path / "q_lavin.png").shape == (3, 32, 32)
    assert seen == [{torch.bfloat16}]
    os.remove(tmp_path / "q_lavin.png")
    seen.clear()
    assert main(["generate", *args, "--dtype", "bf16", "--vae", STVAE, *FAST]) == 0
    assert read_png(tmp_path / "q_lavin.png").shape == (3, 32, 32)
    assert seen == [{torch.bfloat16}]


def test_toy_vae_keeps_bf16():
    from lavin_fast.sampling.toy_vae import ToyVAE
    vae = ToyVAE()
    x = torch.rand(1, 3, 1, 16, 16, dtype=torch.bfloat16)
    z = vae.encode(x)
    assert z.dtype == torch.bfloat16 and z.shape == (1, 16, 1, 2, 2)
    torch.testing.assert_close(z.float(), vae.encode(x.float()), rtol=2e-2, atol=2e-2)
    assert vae.decode(z).dtype == torch.bfloat16


def test_error_from_a_subprocess_is_one_line():
    r = subprocess.run([sys.executable, "-m", "lavin_fast", "generate", "--cfg", "nan", "--example", "--out",
                        os.devnull + "/x"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--cfg" in r.stderr, r.stderr
