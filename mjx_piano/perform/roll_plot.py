"""Piano-roll picture of a performance: goal against played notes, errors marked, F1 in the title.

Cells (one per control step and key): green = wanted and played, red = played but not wanted
(wrong), orange = wanted but not played (missed); a strip below shows the sustain pedal the same
way. Only the key range the performance touches is drawn (with a margin).
"""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")  # headless; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from mjx_piano.music.roll import LOWEST_MIDI  # noqa: E402

# Cell classes, in colour-map order.
EMPTY, CORRECT, WRONG, MISSED = 0, 1, 2, 3
COLOURS = ("white", "#2ca02c", "#d62728", "#ff9f1c")
LABELS = ("", "played as wanted", "wrong (played, not wanted)", "missed (wanted, not played)")
_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclasses.dataclass(frozen=True)
class RollCounts:
    """Cell counts of a comparison (key-steps).

    Attributes:
        correct, wrong, missed: cells of each class.
    """

    correct: int
    wrong: int
    missed: int


def classify(pressed: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Per cell class (EMPTY/CORRECT/WRONG/MISSED) of bool [...] played vs wanted: int8 [...]."""
    cells = np.zeros(pressed.shape, np.int8)
    cells[pressed & goal] = CORRECT
    cells[pressed & ~goal] = WRONG
    cells[~pressed & goal] = MISSED
    return cells


def count(pressed: np.ndarray, goal: np.ndarray) -> RollCounts:
    """Cell counts of bool [...] played vs wanted."""
    cells = classify(pressed, goal)
    return RollCounts(correct=int((cells == CORRECT).sum()), wrong=int((cells == WRONG).sum()),
                      missed=int((cells == MISSED).sum()))


def title(name: str, f1: float, counts: RollCounts) -> str:
    """The figure title: piece, F1 (3 decimals) and error counts."""
    return (f"{name}: F1 = {f1:.3f}  ({counts.correct} correct, {counts.wrong} wrong, "
            f"{counts.missed} missed key-steps)")


def _note_name(key: int) -> str:
    midi = LOWEST_MIDI + key
    return f"{_NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def plot_roll(path: str, name: str, pressed: np.ndarray, goal: np.ndarray, sustain: np.ndarray,
              goal_sustain: np.ndarray, f1: float, control_hz: float, margin: int = 3) -> str:
    """Draws the goal-vs-played piano roll and saves it as a PNG.

    Args:
        path: the .png to write.
        name: the piece's name.
        pressed, goal: bool [steps, 88].
        sustain, goal_sustain: bool [steps].
        f1: the performance's F1 (shown in the title).
        control_hz: control steps per second (x axis in seconds).
        margin: keys shown beyond the lowest and highest used key.

    Returns:
        The title written on the figure.
    """
    used = np.flatnonzero((pressed | goal).any(axis=0))
    low, high = ((max(int(used[0]) - margin, 0), min(int(used[-1]) + margin, 87))
                 if used.size else (39 - margin, 39 + margin))
    cells = classify(pressed[:, low:high + 1], goal[:, low:high + 1]).T  # [keys, steps]
    pedal = classify(sustain, goal_sustain)[None]
    counts = count(pressed, goal)
    text = title(name, f1, counts)
    steps = pressed.shape[0]
    extent_x = (0.0, steps / control_hz)
    cmap = ListedColormap(COLOURS)
    height = min(2.0 + 0.12 * (high - low + 1), 14.0)
    figure, (keys_ax, pedal_ax) = plt.subplots(
        2, 1, figsize=(max(6.0, min(0.08 * steps + 3, 24.0)), height), sharex=True,
        gridspec_kw=dict(height_ratios=(high - low + 1, 2.5)))
    keys_ax.imshow(cells, cmap=cmap, vmin=0, vmax=3, aspect="auto", interpolation="nearest",
                   origin="lower", extent=(*extent_x, low - 0.5, high + 0.5))
    ticks = [k for k in range(low, high + 1) if (LOWEST_MIDI + k) % 12 == 0] or [low]
    keys_ax.set_yticks(ticks, [_note_name(k) for k in ticks])
    keys_ax.set_ylabel("key")
    keys_ax.set_title(text)
    keys_ax.grid(axis="y", alpha=0.2)
    pedal_ax.imshow(pedal, cmap=cmap, vmin=0, vmax=3, aspect="auto", interpolation="nearest",
                    extent=(*extent_x, 0, 1))
    pedal_ax.set_yticks([0.5], ["pedal"])
    pedal_ax.set_xlabel("time (s)")
    keys_ax.legend(handles=[Patch(color=COLOURS[i], label=LABELS[i]) for i in (1, 2, 3)],
                   loc="upper right", fontsize="small", framealpha=0.8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return text
