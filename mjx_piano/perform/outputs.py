"""Everything written for one performance: the piano-roll picture and the output folder.

Piano roll: cells (one per control step and key) green = wanted and played, red = played but
not wanted (wrong), orange = wanted but not played (missed); a strip below shows the sustain
pedal the same way; F1 and the error counts in the title. Only the key range the performance
touches is drawn (with a margin).

`write_outputs` writes `performance.wav`, `performance.mid`, `pianoroll.png` and, when a
headless renderer and ffmpeg are available, `performance.mp4` (with the audio); without them it
says why on stderr and still writes the rest.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import matplotlib

matplotlib.use("Agg")  # headless; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from mjx_piano.music.note_names import key_name  # noqa: E402
from mjx_piano.music.roll import LOWEST_MIDI  # noqa: E402
from mjx_piano.perform import video as video_module  # noqa: E402
from mjx_piano.perform.rollout import Recording  # noqa: E402
from mjx_piano.perform.sound import (SAMPLE_RATE, onset_fingers,  # noqa: E402
                                     performance_audio, write_midi, write_wav)

# Cell classes, in colour-map order.
EMPTY, CORRECT, WRONG, MISSED = 0, 1, 2, 3
COLOURS = ("white", "#2ca02c", "#d62728", "#ff9f1c")
LABELS = ("", "played as wanted", "wrong (played, not wanted)", "missed (wanted, not played)")
TAIL_S = 0.5  # ring-out after the last step, in the audio and (as a held frame) the video


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
    return (f"{name}: F1 = {f1:.3f}\n{counts.correct} correct, {counts.wrong} wrong, "
            f"{counts.missed} missed key-steps")


def plot_roll(path: str, name: str, pressed: np.ndarray, goal: np.ndarray, sustain: np.ndarray,
              goal_sustain: np.ndarray, f1: float, control_hz: float, margin: int = 3,
              fingers: np.ndarray | None = None) -> str:
    """Draws the goal-vs-played piano roll and saves it as a PNG (with each played note's
    finger, 'R1' = right thumb ... 'L5' = left little finger, written at its onset).

    Args:
        path: the .png to write.
        name: the piece's name.
        pressed, goal: bool [steps, 88].
        sustain, goal_sustain: bool [steps].
        f1: the performance's F1 (shown in the title).
        control_hz: control steps per second (x axis in seconds).
        margin: keys shown beyond the lowest and highest used key.
        fingers: int [steps, 88], fingertip per pressed key (-1 none), or None.

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
        2, 1, figsize=(max(9.0, min(0.08 * steps + 5, 26.0)), height), sharex=True,
        gridspec_kw=dict(height_ratios=(high - low + 1, 2.5)))
    keys_ax.imshow(cells, cmap=cmap, vmin=0, vmax=3, aspect="auto", interpolation="nearest",
                   origin="lower", extent=(*extent_x, low - 0.5, high + 0.5))
    ticks = [k for k in range(low, high + 1) if (LOWEST_MIDI + k) % 12 == 0] or [low]
    keys_ax.set_yticks(ticks, [key_name(k) for k in ticks])
    keys_ax.set_ylabel("key")
    keys_ax.set_title(text)
    keys_ax.grid(axis="y", alpha=0.2)
    if fingers is not None:
        for step, key, label in onset_fingers(pressed, fingers):
            if low <= key <= high:
                keys_ax.text((step + 0.5) / control_hz, key, label, fontsize=5, ha="left",
                             va="center", color="black")
    pedal_ax.imshow(pedal, cmap=cmap, vmin=0, vmax=3, aspect="auto", interpolation="nearest",
                    extent=(*extent_x, 0, 1))
    pedal_ax.set_yticks([0.5], ["pedal"])
    pedal_ax.set_xlabel("time (s)")
    keys_ax.legend(handles=[Patch(color=COLOURS[i], label=LABELS[i]) for i in (1, 2, 3)],
                   loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return text


@dataclasses.dataclass(frozen=True)
class Outputs:
    """Paths and facts of one written performance.

    Attributes:
        wav, midi, png: paths written.
        mp4: the video path, or None when no renderer was available.
        title: the piano-roll title (carries the F1).
        synthesizer: 'builtin' or 'fluidsynth:<soundfont>'.
        renderer: the OpenGL backend used, or why there is no video.
        render_fps: frames rendered per second (0 without video).
    """

    wav: str
    midi: str
    png: str
    mp4: str | None
    title: str
    synthesizer: str
    renderer: str
    render_fps: float


def write_outputs(performance: Recording, model, out: str, video: bool = True,
                  use_soundfont: bool = True, width: int | None = None,
                  height: int | None = None) -> Outputs:
    """Writes the WAV, MIDI, PNG and (when possible) MP4 of a performance into `out`.

    Args:
        performance: the host-side performance.
        model: `mujoco.MjModel` to draw it with (`render_scene.render_model(env)`).
        out: output folder (created).
        video: try to render the video.
        use_soundfont: allow fluidsynth (else always the built-in synthesizer).
        width, height: video size (default `video.WIDTH` x `video.HEIGHT`).

    Returns:
        The `Outputs`.
    """
    os.makedirs(out, exist_ok=True)
    p = performance
    paths = {k: os.path.join(out, f) for k, f in (
        ("wav", "performance.wav"), ("midi", "performance.mid"), ("png", "pianoroll.png"),
        ("mp4", "performance.mp4"))}
    samples, synthesizer = performance_audio(p.pressed, p.sustain, p.control_hz, TAIL_S,
                                             use_soundfont)
    write_wav(paths["wav"], samples, SAMPLE_RATE)
    write_midi(paths["midi"], p.pressed, p.sustain, p.control_hz, p.fingers)
    title = plot_roll(paths["png"], p.name, p.pressed, p.goal, p.sustain, p.goal_sustain, p.f1,
                      p.control_hz, fingers=p.fingers)
    mp4, renderer, fps = None, "disabled", 0.0
    if video:
        try:
            result = video_module.render_video(
                model, p.qpos, p.pressed, p.goal, p.control_hz, mp4=paths["mp4"],
                audio=paths["wav"], hold_last=int(round(TAIL_S * p.control_hz)),
                width=width or video_module.WIDTH, height=height or video_module.HEIGHT)
            mp4, renderer, fps = paths["mp4"], result.backend, result.fps
        except video_module.RendererUnavailable as error:
            renderer = f"unavailable: {error}"
            print(f"no video: {error}\nThe audio, MIDI and piano roll are still written.",
                  file=sys.stderr)
    return Outputs(wav=paths["wav"], midi=paths["midi"], png=paths["png"], mp4=mp4, title=title,
                   synthesizer=synthesizer, renderer=renderer, render_fps=fps)
