"""The `lavin-fast` command: PNG I/O, generate (synthetic example, files, released-layout weights),
bench on a tiny configuration, the entry points."""

import json
import os
import struct
import subprocess
import sys
import zlib

import pytest
import torch

from jdit_cases import GOLDEN
from lavin_fast.checkpoint import jdit_config, load_jdit
from lavin_fast.cli import main
from lavin_fast.png import read_png, write_png

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_png_roundtrip(tmp_path):
    img = torch.randint(0, 256, (3, 7, 5), dtype=torch.uint8)
    write_png(tmp_path / "a.png", img)
    assert torch.equal(read_png(tmp_path / "a.png"), img)


def _png_with_filters(rgba, filters):
    """Encodes (H, W, 4) uint8 with the given per-row filter types, as other encoders do."""
    h, w, bpp = rgba.shape
    rows, prev = [], [0] * (w * bpp)
    for y in range(h):
        line = rgba[y].reshape(-1).tolist()
        f = filters[y % len(filters)]
        out = []
        for x, v in enumerate(line):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
            p = a + b - c
            paeth = min((abs(p - a), 0, a), (abs(p - b), 1, b), (abs(p - c), 2, c))[2]
            pred = [0, a, b, (a + b) // 2, paeth][f]
            out.append((v - pred) & 255)
        rows.append(bytes([f] + out))
        prev = line

    def chunk(k, d):
        return struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


def test_png_reads_every_filter_type_and_rgba(tmp_path):
    rgba = torch.randint(0, 256, (6, 5, 4), dtype=torch.uint8)
    (tmp_path / "f.png").write_bytes(_png_with_filters(rgba, [0, 1, 2, 3, 4]))
    assert torch.equal(read_png(tmp_path / "f.png"), rgba[..., :3].permute(2, 0, 1))
    (tmp_path / "bad.png").write_bytes(b"GIF89a")
    with pytest.raises(ValueError, match="not a PNG"):
        read_png(tmp_path / "bad.png")


def test_generate_synthetic_example(tmp_path, capsys):
    out = tmp_path / "ex"
    assert main(["generate", "--example", "--out", str(out), "--steps", "2", "--size", "32", "--quiet"]) == 0
    res = read_png(out / "query_lavin.png")
    assert res.shape == (3, 32, 32)
    assert {"pair0_in.png", "pair0_out.png", "query.png"} <= set(os.listdir(out))
    assert "seeded small model" in capsys.readouterr().out


def test_generate_from_files_with_released_layout_weights(tmp_path):
    """The golden file holds a small J-DiT under released key names (prefixed model.)."""
    for name in ("a", "b", "q"):
        write_png(tmp_path / f"{name}.png", torch.randint(0, 256, (3, 20, 24), dtype=torch.uint8))
    args = ["generate", "--pair", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--query",
            str(tmp_path / "q.png"), "--weights", GOLDEN, "--size", "32", "--steps", "2", "--quiet"]
    assert main(args) == 0
    assert read_png(tmp_path / "q_lavin.png").shape == (3, 32, 32)


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
