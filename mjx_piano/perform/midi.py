"""Played notes: key-press rows -> note events -> a MIDI file (with the sustain pedal as CC64).

A note starts at the first control step its key is down and ends when the key comes up (or at
the end of the performance). Times are in seconds at the control rate; step t covers
[t / hz, (t + 1) / hz).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pretty_midi

from mjx_piano.music.roll import LOWEST_MIDI

SUSTAIN_CC = 64
PIANO_PROGRAM = 0  # General MIDI acoustic grand piano
VELOCITY = 80


@dataclasses.dataclass(frozen=True)
class Note:
    """One played note.

    Attributes:
        pitch: MIDI note number (21 = A0).
        start, end: seconds.
    """

    pitch: int
    start: float
    end: float


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) step ranges where a bool [T] row is True."""
    padded = np.concatenate([[False], active.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def notes_from_keys(pressed: np.ndarray, control_hz: float) -> list[Note]:
    """The notes of a key-press roll, sorted by start time then pitch.

    Args:
        pressed: bool [steps, 88], keys down per control step.
        control_hz: control steps per second.

    Returns:
        One `Note` per run of consecutive pressed steps of a key.
    """
    notes = [Note(LOWEST_MIDI + key, a / control_hz, b / control_hz)
             for key in range(pressed.shape[1]) for a, b in _runs(pressed[:, key])]
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def pedal_spans(sustain: np.ndarray, control_hz: float) -> list[tuple[float, float]]:
    """(down, up) times in seconds of each pedal press of a bool [steps] row."""
    return [(a / control_hz, b / control_hz) for a, b in _runs(sustain)]


def to_pretty_midi(pressed: np.ndarray, sustain: np.ndarray, control_hz: float,
                   program: int = PIANO_PROGRAM) -> pretty_midi.PrettyMIDI:
    """A one-instrument piano MIDI of the played keys and pedal.

    Args:
        pressed: bool [steps, 88].
        sustain: bool [steps].
        control_hz: control steps per second.
        program: General MIDI program.

    Returns:
        The `PrettyMIDI` object (write it with `.write(path)`).
    """
    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=program, name="piano")
    for note in notes_from_keys(pressed, control_hz):
        piano.notes.append(pretty_midi.Note(VELOCITY, note.pitch, note.start, note.end))
    for down, up in pedal_spans(sustain, control_hz):
        piano.control_changes.append(pretty_midi.ControlChange(SUSTAIN_CC, 127, down))
        piano.control_changes.append(pretty_midi.ControlChange(SUSTAIN_CC, 0, up))
    midi.instruments.append(piano)
    return midi


def write_midi(path: str, pressed: np.ndarray, sustain: np.ndarray, control_hz: float) -> None:
    """Writes the played keys and pedal as a MIDI file at `path` (see `to_pretty_midi`)."""
    to_pretty_midi(pressed, sustain, control_hz).write(path)


def read_notes(path: str) -> tuple[list[Note], list[tuple[float, float]]]:
    """Reads a MIDI file back: (notes sorted like `notes_from_keys`, pedal (down, up) spans).

    Times come back rounded to the file's tick resolution (about 1 ms at the default).
    """
    midi = pretty_midi.PrettyMIDI(path)
    notes: list[Note] = []
    spans: list[tuple[float, float]] = []
    for instrument in midi.instruments:
        notes += [Note(n.pitch, float(n.start), float(n.end)) for n in instrument.notes]
        down = None
        for change in sorted(instrument.control_changes, key=lambda c: c.time):
            if change.number != SUSTAIN_CC:
                continue
            if change.value >= 64 and down is None:
                down = float(change.time)
            elif change.value < 64 and down is not None:
                spans.append((down, float(change.time)))
                down = None
    return sorted(notes, key=lambda n: (n.start, n.pitch)), spans
