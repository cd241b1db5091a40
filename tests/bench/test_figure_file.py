"""`bench/figure_file.py`: the repository's figures are palette PNGs, small and still readable.

The working tree travels with every device call within 64 MiB beside the staged wheels; an
RGBA figure is about three times the bytes. CI failed once when one more RGBA figure pushed
call 2 over the limit (`test_device_stage.py`)."""

from __future__ import annotations

import io
import os
import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bench.figure_file import compact, save_figure  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _plot():
    fig, ax = plt.subplots(figsize=(6, 3))
    x = np.linspace(0, 1, 200)
    for k in range(8):
        ax.plot(x, np.sin(6 * x + k) * (1 - x / (k + 2)), label=f"curve {k}")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def test_a_saved_figure_is_a_smaller_palette_png_that_looks_the_same(tmp_path):
    fig = _plot()
    rgba = io.BytesIO()
    fig.savefig(rgba, format="png", dpi=100)
    path = str(tmp_path / "f.png")
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    with open(path, "rb") as f:
        palette = f.read()
    assert Image.open(path).mode == "P"
    assert len(palette) < 0.6 * len(rgba.getvalue())
    difference = np.abs(_pixels(palette) - _pixels(rgba.getvalue()))
    assert difference.shape[:2] == (300, 600)
    assert difference.mean() < 2.0  # of 255: antialiased edges move a little, nothing else
    assert os.listdir(tmp_path) == ["f.png"]  # no temporary left behind


def test_compact_rewrites_an_rgba_file_once(tmp_path):
    fig = _plot()
    path = str(tmp_path / "f.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    before, after = compact(path)
    assert after < before and Image.open(path).mode == "P"
    assert compact(path) == (after, after)  # already a palette PNG: left as it is


def test_every_figure_in_the_repository_is_a_palette_png():
    tracked = subprocess.run(["git", "ls-files", "*.png"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    assert tracked  # the check sees the figures (an empty listing would pass anything)
    modes = {path: Image.open(os.path.join(ROOT, path)).mode for path in tracked}
    assert {p: m for p, m in modes.items() if m != "P"} == {}, (
        "write figures with bench.figure_file.save_figure, or run "
        "`python3 -m bench.figure_file PATHS`")


def test_transparent_areas_become_white(tmp_path):
    path = str(tmp_path / "f.png")
    Image.new("RGBA", (4, 2), (0, 0, 0, 0)).save(path)
    compact(path)
    assert np.all(np.asarray(Image.open(path).convert("RGB")) == 255)


def test_a_missing_or_broken_file_is_refused_before_anything_is_rewritten(tmp_path, capsys):
    from bench.figure_file import main

    good = str(tmp_path / "good.png")
    Image.new("RGBA", (4, 2), (10, 20, 30, 255)).save(good)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    assert main([good, str(broken)]) == 2
    assert main([good, str(tmp_path / "missing.png")]) == 2
    assert "broken.png" in capsys.readouterr().err
    assert Image.open(good).mode == "RGBA"  # untouched
