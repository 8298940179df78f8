"""The `lavin-fast` command: generate as the released inference.py (task folders, sizes, grids, output
picture, devices and dtypes, the release's option names), bench on a tiny configuration, entry points."""

import json
import os
import subprocess
import sys

import pytest
import torch
from PIL import Image

import lavin_fast.sampling as sampling
from jdit_cases import GOLDEN
from lavin_fast.checkpoint import jdit_config, load_jdit
from lavin_fast.cli import main
from lavin_fast.images import read_image, write_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--steps", "2", "--size", "32", "--quiet"]


def _image(path, h=20, w=24, seed=0):
    write_image(path, torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)))
    return str(path)


@pytest.fixture
def spy(monkeypatch):
    """Records what generate hands the sampler: grid, dtypes, devices, the pair images."""
    calls = []
    real = sampling.sample

    def record(model, requests, **kw):
        calls.append(dict(grid=kw["grid"], model_dtype=next(model.parameters()).dtype,
                          device=next(model.parameters()).device, pairs=requests[0].pairs,
                          query=requests[0].query))
        return real(model, requests, **kw)
    monkeypatch.setattr(sampling, "sample", record)
    return calls


def test_generate_synthetic_example(tmp_path, capsys):
    out = tmp_path / "ex"
    assert main(["generate", "--example", "--out", str(out), *FAST]) == 0
    # The release's picture: query | result with 4 px of padding (make_grid(nrow=2, padding=4)).
    pic = read_image(out / "query_lavin.png")
    assert pic.shape == (3, 32 + 8, 2 * 32 + 12)
    assert {"pair0_input.png", "pair0_target.png", "query.png"} <= set(os.listdir(out))
    assert "seeded small model" in capsys.readouterr().out


def test_generate_from_files_with_released_layout_weights(tmp_path):
    """The golden file holds a small J-DiT under released key names (prefixed model.)."""
    a, b, q = (_image(tmp_path / f"{n}.png", seed=i) for i, n in enumerate("abq"))
    args = ["generate", "--pair", a, b, "--query", q, "--weights", GOLDEN, "--result-only", *FAST]
    assert main(args) == 0
    assert read_image(tmp_path / "q_lavin.png").shape == (3, 32, 32)


def test_query_panel_is_the_resized_query(tmp_path):
    q = _image(tmp_path / "q.png", 32, 32)
    a, b = _image(tmp_path / "a.png", seed=1), _image(tmp_path / "b.png", seed=2)
    assert main(["generate", "--pair", a, b, "--query", q, "--output", str(tmp_path / "o.png"), *FAST]) == 0
    pic = read_image(tmp_path / "o.png")
    # Same size: the query comes back through (x/255-0.5)*2 and (x+1)*127.5 truncated: off by at most one.
    assert (pic[:, 4:36, 4:36].int() - read_image(q).int()).abs().max() <= 1


def test_task_dir_as_released(tmp_path, spy, capsys):
    """NAME_input / NAME_target pairs (any image type, even a JPEG named .png); --num-prompt pairs drawn
    with replacement from the seed; the same seed draws the same pairs."""
    task = tmp_path / "task"
    task.mkdir()
    for i, name in enumerate(["cat", "dog", "owl"]):
        _image(task / f"{name}_input.png", seed=10 + i)
        _image(task / f"{name}_target.png", seed=20 + i)
    Image.open(task / "owl_input.png").save(task / "owl_input.png", format="JPEG")
    (task / "notes.txt").write_text("not an image")
    q = _image(tmp_path / "q.png")
    argv = ["generate", "--task-dir", str(task), "--num-prompt", "5", "--query", q, *FAST]
    assert main(argv) == 0 and main(argv + ["--seed", "1"]) == 0 and main(argv) == 0
    assert "5 pairs" in capsys.readouterr().out
    drawn = [[tuple(t.sum().item() for t in p) for p in c["pairs"]] for c in spy]
    assert len(drawn[0]) == 5 and drawn[0] == drawn[2] and drawn[0] != drawn[1]
    assert main(["generate", "--task-dir", str(task), "--query", q, *FAST]) == 0
    assert len(spy[-1]["pairs"]) == 4  # the release's default --num_prompt


def test_release_option_names(tmp_path, spy):
    """A line of the release's infer.sh, with its own option names, runs unchanged."""
    task = tmp_path / "template"
    task.mkdir()
    _image(task / "1_input.png")
    _image(task / "1_target.png", seed=1)
    q = _image(tmp_path / "hinton.png", seed=2)
    out = tmp_path / "result_depth_hinton.png"
    assert main(["generate", "--query", q, "--output", str(out), "--task_dir", str(task), "--height", "32",
                 "--width", "48", "--num_prompt", "2", "--timesteps", "30", "--cfg_scale", "1.5",
                 "--dit_path", GOLDEN, "--quiet"]) == 0
    assert read_image(out).shape == (3, 32 + 8, 2 * 48 + 12)  # non-square sizes work
    assert spy[0]["grid"] == sampling.RELEASED_GRIDS[30] and len(spy[0]["pairs"]) == 2


@pytest.mark.parametrize("steps,expect", [("20", sampling.RELEASED_GRIDS[20]), ("30", sampling.RELEASED_GRIDS[30]),
                                          ("40", sampling.RELEASED_GRIDS[40]), ("released", sampling.RELEASED_GRID),
                                          ("3", (0.0, 0.5, 1.0)), ("2", (0.0, 1.0))])
def test_steps_choose_the_released_grids_or_uniform_points(tmp_path, spy, monkeypatch, steps, expect):
    monkeypatch.setattr(sampling.incontext, "_PackedCFG", _ZeroVelocity)  # the grid is what is tested here
    assert main(["generate", "--example", "--out", str(tmp_path), "--size", "32", "--quiet", "--steps", steps]) == 0
    assert tuple(spy[0]["grid"]) == tuple(expect)


class _ZeroVelocity:
    def __init__(self, model, prepared):
        pass

    def velocity(self, xs, t, scale):
        return [torch.zeros_like(x) for x in xs]


@pytest.mark.parametrize("ext,fmt", [(".png", "PNG"), (".jpg", "JPEG"), (".webp", "WEBP")])
def test_output_format_follows_the_extension(tmp_path, ext, fmt):
    out = tmp_path / f"result{ext}"
    assert main(["generate", "--example", "--out", str(tmp_path / "ex"), "--output", str(out), *FAST]) == 0
    assert Image.open(out).format == fmt and Image.open(out).size == (32 * 2 + 12, 32 + 8)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_device_and_dtype_defaults_on_a_cpu_machine(tmp_path, spy, capsys):
    if torch.cuda.is_available():
        pytest.skip("checks the defaults without a GPU")
    assert main(["generate", "--example", "--out", str(tmp_path), *FAST]) == 0
    assert spy[0]["device"].type == "cpu" and spy[0]["model_dtype"] == torch.float32
    assert "fp32 on cpu" in capsys.readouterr().out
    assert main(["generate", "--example", "--out", str(tmp_path), "--dtype", "bf16", "--device", "cpu", *FAST]) == 0
    assert spy[1]["model_dtype"] == torch.bfloat16 and spy[1]["query"].dtype == torch.bfloat16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_defaults_to_bf16_on_cuda(tmp_path, spy):
    assert main(["generate", "--example", "--out", str(tmp_path), *FAST]) == 0
    assert spy[0]["device"].type == "cuda" and spy[0]["model_dtype"] == torch.bfloat16


def test_checkpoint_config_inference():
    model, cfg = load_jdit(GOLDEN)
    assert cfg == dict(hidden_size=144, depth=2, num_heads=2, kv_group=2)
    assert jdit_config({k: v for k, v in model.state_dict().items()}) == cfg


def test_bench_tiny(capsys):
    assert main(["bench", "--hidden", "288", "--depth", "1", "--pairs", "1", "--grid", "4",
                 "--mixed-grids", "4,3,2", "--repeats", "1", "--no-compile", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    for row in ("reference eager, two passes", "lavin_fast, packed CFG", "lavin_fast packed ",
                "padded to the largest", "fused_ops="):
        assert row in text, text
    # fused_ops= names the lavin_fast operators the timed model ran (recorded, not a fixed list).
    ran = text.split("fused_ops=")[1].split()[0].split("+")
    assert {"varlen_attention", "qk_norm_rope", "rms_norm_modulate", "gated_rms_residual", "linear"} <= set(ran), text


def test_bench_tiny_bf16(capsys, tmp_path):
    """--dtype bf16 (the CUDA default: its attention kernels take bf16/fp16 only) runs both models in
    bf16 and says so in the header and the JSON."""
    out = tmp_path / "bench.json"
    assert main(["bench", "--hidden", "288", "--depth", "1", "--pairs", "1", "--grid", "4",
                 "--mixed-grids", "4,2", "--repeats", "1", "--no-compile", "--device", "cpu",
                 "--dtype", "bf16", "--json", str(out)]) == 0
    assert "(head_dim 72), bf16, cpu" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["dtype"] == "bf16" and data["cfg_step_seconds"]["lavin_fast, packed CFG"] > 0


def test_module_entry_point_and_script_declared():
    r = subprocess.run([sys.executable, "-m", "lavin_fast", "--help"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 0 and "generate" in r.stdout and "bench" in r.stdout, r.stderr
    assert 'lavin-fast = "lavin_fast.cli:main"' in open(os.path.join(ROOT, "pyproject.toml")).read()
