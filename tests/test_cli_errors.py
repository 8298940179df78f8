"""What `lavin-fast generate` cannot do gives one line on stderr naming the argument, exit status 2, no
traceback (unless --debug) and no file written; `--dtype bf16` runs in bf16 end to end."""

import os
import re
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from lavin_fast.cli import main
from lavin_fast.cli.args import CliError
from lavin_fast.images import read_image, write_image
from tests.jdit_cases import GOLDEN
from tests.stvae_helpers import GOLDEN as STVAE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--steps", "2", "--size", "32", "--quiet"]


def _files(tmp_path):
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))


def _images(tmp_path, size=(20, 24)):
    for name in ("a", "b", "q"):
        write_image(tmp_path / f"{name}.png", torch.randint(0, 256, (3, *size), dtype=torch.uint8))
    return [str(tmp_path / n) for n in ("a.png", "b.png", "q.png")]


def _pair_args(tmp_path):
    a, b, q = _images(tmp_path)
    return ["--pair", a, b, "--query", q]


def _expect_error(capsys, tmp_path, argv, pattern):
    """main(argv) exits 2 with one line naming the argument, and writes nothing under tmp_path."""
    before = _files(tmp_path)
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in err
    assert _files(tmp_path) == before, "a file was written"


# (what, extra argv after "generate --example --out DIR", pattern on the one line)
NUMBER_CASES = [
    ("cfg nan", ["--cfg", "nan"], r"--cfg.*finite"),
    ("cfg inf", ["--cfg", "inf"], r"--cfg.*finite"),
    ("cfg -inf", ["--cfg=-inf"], r"--cfg.*finite"),
    ("cfg word", ["--cfg", "big"], r"--cfg.*finite.*'big'"),
    ("size 0", ["--size", "0"], r"--size.*positive multiple of 16.*got 0"),
    ("size negative", ["--size", "-32"], r"--size.*positive multiple of 16"),
    ("size not a multiple", ["--size", "40"], r"--size.*multiple of 16.*got 40"),
    ("height not a multiple", ["--height", "24"], r"--height.*multiple of 16.*got 24"),
    ("height word", ["--height", "tall"], r"--height.*multiple of 16.*got tall"),
    ("width 0", ["--width", "0"], r"--width.*positive multiple of 16.*got 0"),
    ("width fraction", ["--width", "32.0"], r"--width.*got 32.0"),
    ("steps 0", ["--steps", "0"], r"--steps.*integer >= 2.*got '0'"),
    ("steps 1", ["--steps", "1"], r"--steps.*integer >= 2.*got '1'"),
    ("steps negative", ["--steps", "-3"], r"--steps.*got '-3'"),
    ("steps nan", ["--steps", "nan"], r"--steps.*got 'nan'"),
    ("steps inf", ["--steps", "inf"], r"--steps.*got 'inf'"),
    ("steps fraction", ["--timesteps", "2.5"], r"--steps.*got '2.5'"),
    ("dtype", ["--dtype", "fp8"], r"--dtype.*fp8"),
    ("seed too big", ["--seed", str(2**70)], r"--seed.*\[-2\^63, 2\^64\)"),
    ("seed word", ["--seed", "x"], r"--seed"),
    ("device unknown", ["--device", "tpu"], r"--device.*cpu, cuda or cuda:N.*'tpu'"),
    ("device other backend", ["--device", "meta"], r"--device.*'meta'"),
    ("device bad index", ["--device", "cuda:x"], r"--device.*'cuda:x'"),
    ("num-prompt 0", ["--num-prompt", "0"], r"--num-prompt.*integer >= 1.*got '0'"),
    ("num-prompt word", ["--num_prompt", "many"], r"--num-prompt.*'many'"),
    ("unknown option", ["--colour", "red"], r"unrecognized arguments: --colour"),
]


@pytest.mark.parametrize("what,argv,pattern", NUMBER_CASES, ids=[c[0] for c in NUMBER_CASES])
def test_bad_numbers(capsys, tmp_path, what, argv, pattern):
    _expect_error(capsys, tmp_path, ["generate", "--example", "--out", str(tmp_path / "ex"), *argv, "--quiet"],
                  pattern)


def test_inputs_that_do_not_go_together(capsys, tmp_path):
    a, b, q = _images(tmp_path)
    task = tmp_path / "task"
    task.mkdir()
    cases = [
        (["--pair", a, b], r"--pair: --pair needs --query"),
        (["--task-dir", str(task)], r"--task-dir: --task-dir needs --query"),
        (["--query", q], r"give --example, or --pair .* or --task-dir DIR, and --query"),
        ([], r"give --example, or --pair"),
        (["--example", "--query", q], r"--query: --example makes its own query"),
        (["--example", "--pair", a, b], r"--pair: not allowed with --example"),
        (["--pair", a, b, "--task-dir", str(task), "--query", q], r"--task-dir: not allowed with --pair"),
        (["--pair", a, b, "--query", q, "--num-prompt", "3"], r"--num-prompt: .*only used with --task-dir"),
        (["--pair", a, b, "--query", q, "--out", str(tmp_path / "o")], r"--out: --out is only used with --example"),
        (["--example", "--size", "32", "--height", "32"], r"--size: give --size, or --height and --width"),
    ]
    for argv, pattern in cases:
        _expect_error(capsys, tmp_path, ["generate", *argv, "--steps", "2", "--quiet"], pattern)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without a GPU")
def test_cuda_without_a_gpu(capsys, tmp_path):
    _expect_error(capsys, tmp_path, ["generate", "--example", "--out", str(tmp_path / "x"), "--device", "cuda", *FAST],
                  r"--device: cuda requested but torch sees no CUDA device")


def test_missing_and_corrupt_images(capsys, tmp_path):
    a, b, q = _images(tmp_path)
    missing = str(tmp_path / "nope.png")
    _expect_error(capsys, tmp_path, ["generate", "--pair", a, missing, "--query", q, *FAST],
                  r"--pair: cannot read image .*nope.png: No such file")
    _expect_error(capsys, tmp_path, ["generate", "--pair", a, b, "--query", missing, *FAST],
                  r"--query: cannot read image .*nope.png")
    png = (tmp_path / "a.png").read_bytes()
    bad = {"truncated": png[: len(png) // 2], "not an image": b"GIF89a....", "empty": b"",
           "header only": png[:40], "jpeg header": b"\xff\xd8\xff\xe0\x00\x10JFIF"}
    for name, data in bad.items():
        path = tmp_path / f"bad_{name.replace(' ', '_')}.png"
        path.write_bytes(data)
        _expect_error(capsys, tmp_path, ["generate", "--pair", a, b, "--query", str(path), *FAST],
                      r"--query: cannot read image .*bad_")
    _expect_error(capsys, tmp_path, ["generate", "--pair", a, b, "--query", str(tmp_path), *FAST],
                  r"--query: cannot read image")


def test_missing_corrupt_and_wrong_weights(capsys, tmp_path):
    args = _pair_args(tmp_path)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    for flag in ("--weights", "--vae"):
        _expect_error(capsys, tmp_path, ["generate", *args, flag, str(tmp_path / "none.safetensors"), *FAST],
                      flag + r": cannot load .*none.safetensors")
        _expect_error(capsys, tmp_path, ["generate", *args, flag, str(junk), *FAST], flag + r": cannot load")
    # Valid safetensors files of the wrong model, and a J-DiT with a tensor missing (a key mismatch).
    _expect_error(capsys, tmp_path, ["generate", *args, "--weights", STVAE, *FAST],
                  r"--weights: cannot load J-DiT weights .*KeyError")
    _expect_error(capsys, tmp_path, ["generate", *args, "--vae", GOLDEN, *FAST], r"--vae: cannot load ST-VAE")
    sd = load_file(GOLDEN)
    del sd["model.blocks.1.x_mlp.up_proj.weight"]
    save_file(sd, str(tmp_path / "partial.safetensors"))
    _expect_error(capsys, tmp_path, ["generate", *args, "--dit_path", str(tmp_path / "partial.safetensors"), *FAST],
                  r"--weights: cannot load .*Missing key.*blocks\.1\.x_mlp\.up_proj\.weight")


def test_task_dir_errors(capsys, tmp_path):
    q = _images(tmp_path)[2]
    task = tmp_path / "task"
    run = ["generate", "--query", q, *FAST, "--task-dir"]
    _expect_error(capsys, tmp_path, [*run, str(tmp_path / "none")], r"--task-dir: .*none is not a directory")
    task.mkdir()
    _expect_error(capsys, tmp_path, [*run, str(task)], r"--task-dir: no NAME_input.png / NAME_target.png pairs")
    write_image(task / "cat_input.png", read_image(q))
    _expect_error(capsys, tmp_path, [*run, str(task)], r"--task-dir: cat_input.png has no cat_target image")
    write_image(task / "cat_target.png", read_image(q))
    write_image(task / "cat_target.jpg", read_image(q))
    _expect_error(capsys, tmp_path, [*run, str(task)], r"--task-dir: two target images for 'cat'")
    os.remove(task / "cat_target.jpg")
    (task / "dog_input.png").write_bytes(b"broken")
    write_image(task / "dog_target.png", read_image(q))
    _expect_error(capsys, tmp_path, [*run, str(task), "--num-prompt", "12"], r"--task-dir: cannot read image .*dog_input")


def test_output_errors(capsys, tmp_path):
    args = _pair_args(tmp_path)
    _expect_error(capsys, tmp_path, ["generate", *args, "--output", str(tmp_path / "r.xyz"), *FAST],
                  r"--output: .*unknown image extension '\.xyz'")
    _expect_error(capsys, tmp_path, ["generate", *args, "--output", str(tmp_path / "no" / "r.png"), *FAST],
                  r"--output: folder .*no does not exist")
    (tmp_path / "d.png").mkdir()
    _expect_error(capsys, tmp_path, ["generate", *args, "--output", str(tmp_path / "d.png"), *FAST],
                  r"--output: .*d.png is a directory")
    (tmp_path / "f").write_text("x")
    _expect_error(capsys, tmp_path, ["generate", "--example", "--out", str(tmp_path / "f"), *FAST], r"--out")
    _expect_error(capsys, tmp_path, ["generate", "--example", "--out", str(tmp_path / "ex"), "--output",
                                     str(tmp_path / "r.bad"), *FAST], r"--output: .*'\.bad'")


def test_debug_shows_the_traceback(capsys, tmp_path):
    a, b, q = _images(tmp_path)
    with pytest.raises(CliError, match="--query: cannot read image"):
        main(["generate", "--pair", a, b, "--query", str(tmp_path / "none.png"), "--debug", *FAST])


def test_out_of_memory_and_interrupt_are_one_line(capsys, tmp_path, monkeypatch):
    import lavin_fast.sampling as sampling
    args = _pair_args(tmp_path)

    def oom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    monkeypatch.setattr(sampling, "sample", oom)
    _expect_error(capsys, tmp_path, ["generate", *args, *FAST], r"out of memory on .*--height/--width")

    def interrupt(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(sampling, "sample", interrupt)
    assert main(["generate", *args, *FAST]) == 130
    assert capsys.readouterr().err.strip() == "lavin-fast generate: interrupted"


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
    assert main(["generate", *args, "--dtype", "bf16", "--result-only", *FAST]) == 0
    assert read_image(tmp_path / "q_lavin.png").shape == (3, 32, 32)
    assert seen == [{torch.bfloat16}]
    os.remove(tmp_path / "q_lavin.png")
    seen.clear()
    assert main(["generate", *args, "--dtype", "bf16", "--vae", STVAE, "--result-only", *FAST]) == 0
    assert read_image(tmp_path / "q_lavin.png").shape == (3, 32, 32)
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
    r = subprocess.run([sys.executable, "-m", "lavin_fast", "generate", "--query", "none.png", "--pair", "a.png",
                        "b.png"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot read image a.png" in r.stderr, r.stderr
