"""Figures the repository keeps, written as 256-colour palette PNGs.

Every call to the device carries the whole working tree within 64 MiB, beside the staged wheels
(`bench/device_stage.py`), so the figures under `bench/` must stay small. A matplotlib plot has
few distinct colours: quantised to a 256-colour palette it looks the same and takes about a
third of the bytes of matplotlib's RGBA PNG.

    python3 -m bench.figure_file bench/figures/*.png   # rewrites RGBA figures as palette PNGs
"""

from __future__ import annotations

import io
import os
import sys

from PIL import Image

COLOURS = 256


def palette_png(png: bytes) -> bytes:
    """Quantises one PNG (any mode) to a palette PNG of at most `COLOURS` colours; transparent
    areas become white (a figure's page)."""
    rgba = Image.open(io.BytesIO(png)).convert("RGBA")
    image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT).save(out, "PNG",
                                                                         optimize=True)
    return out.getvalue()


def _write_atomically(path: str, data: bytes) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "wb") as f:
        f.write(data)
    os.replace(temporary, path)


def save_figure(fig, path: str, dpi: int = 100) -> None:
    """Writes a matplotlib figure to `path` as a palette PNG; a reader never sees half a file.

    Args:
        fig: a `matplotlib.figure.Figure`.
        path: the PNG to write (replaced whole).
        dpi: matplotlib's resolution.
    """
    rendered = io.BytesIO()
    fig.savefig(rendered, format="png", dpi=dpi)
    _write_atomically(path, palette_png(rendered.getvalue()))


def compact(path: str) -> tuple[int, int]:
    """Rewrites one PNG file as a palette PNG unless it is one already.

    Returns:
        (bytes before, bytes after).
    """
    with open(path, "rb") as f:
        before = f.read()
    if Image.open(io.BytesIO(before)).mode == "P":
        return len(before), len(before)
    after = palette_png(before)
    _write_atomically(path, after)
    return len(before), len(after)


def main(paths: list[str]) -> int:
    """Compacts each PNG named; exit code 2, nothing rewritten, if one is missing or no PNG."""
    for path in paths:
        try:
            Image.open(path).verify()
        except (OSError, SyntaxError) as error:
            print(f"{path}: not a readable image ({error})", file=sys.stderr)
            return 2
    total_before = total_after = 0
    for path in paths:
        before, after = compact(path)
        total_before, total_after = total_before + before, total_after + after
        print(f"{path}: {before:,} -> {after:,} bytes")
    print(f"all: {total_before:,} -> {total_after:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
