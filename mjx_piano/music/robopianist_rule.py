"""RoboPianist's rule for turning note events into control steps (the default roll rule).

As RoboPianist's `NoteTrajectory` (robopianist 1.0.10, `robopianist/music/midi_file.py`, on top of
note_seq's `sequence_to_pianoroll` with `onset_window=0`) does it at 20 Hz, read from its source:
  - the roll has int(hz * T + 1) steps, T the end of the last note (after the trim);
  - a note holds its key over steps [floor(hz * onset), ceil(hz * offset)), at least one step;
    notes of one key are merged (a key is down while any of its notes holds it);
  - a key held at step t-1 and struck again at step t is up at step t (the strike step itself),
    so the strike shows as a rising edge at t+1; a one-step restrike of a held key vanishes;
  - the sustain pedal changes at step floor(hz * t) of each pedal event, the last event in a
    step winning, and keeps its state between events; events at or past the roll's end are
    ignored (a pedal pressed after the last note does not show; one never lifted stays down).
Trimming (`pianoroll.trim_leading_silence`) shifts time so the first note starts at 0, as
RoboPianist's `MidiFile.trim_silence` does. Two differences remain, both for files of several
tracks only: RoboPianist's trim cuts notes at the end of the *last-listed* note and its pedal
rule takes the last-listed event of a step, where this rule takes the latest end and the latest
event.
"""

from __future__ import annotations

import math

import numpy as np

from mjx_piano.music.events import Performance
from mjx_piano.music.hands import Segment
from mjx_piano.music.roll import LOWEST_MIDI, NUM_KEYS


def _note_steps(onset_s: float, offset_s: float, hz: float) -> tuple[int, int]:
    start = int(onset_s * hz)
    return start, max(start + 1, int(math.ceil(offset_s * hz)))


def keys_and_sustain(performance: Performance, hz: float) -> tuple[np.ndarray, np.ndarray]:
    """The roll under RoboPianist's rule: keys bool [steps, 88], sustain bool [steps].

    Args:
        performance: events in seconds (already trimmed / stretched), pitches on the keyboard.
        hz: control rate.
    """
    end = max((n.offset_s for n in performance.notes), default=0.0)
    steps = int(end * hz + 1)
    held = np.zeros((steps, NUM_KEYS), dtype=bool)
    struck = np.zeros((steps, NUM_KEYS), dtype=bool)
    for note in performance.notes:
        start, stop = _note_steps(note.onset_s, note.offset_s, hz)
        held[start:stop, note.pitch - LOWEST_MIDI] = True
        struck[start, note.pitch - LOWEST_MIDI] = True
    keys = held.copy()
    keys[1:] &= ~(struck[1:] & held[:-1])
    events = sorted([(s.onset_s, True) for s in performance.sustain]
                    + [(s.offset_s, False) for s in performance.sustain if s.released],
                    key=lambda e: e[0])
    changes: dict[int, bool] = {}
    for time_s, down in events:
        if int(time_s * hz) < steps:
            changes[int(time_s * hz)] = down  # the last event of a step wins
    sustain = np.zeros(steps, dtype=bool)
    state = False
    for step in range(steps):
        state = changes.get(step, state)
        sustain[step] = state
    return keys, sustain


def segments(performance: Performance, keys: np.ndarray, hz: float) -> list[Segment]:
    """The runs of `keys` [steps, 88] as segments, each with the hand of the latest note of its
    key that starts at or before the run (hand None when the source names none)."""
    notes_by_key: dict[int, list[tuple[int, str | None]]] = {}
    for note in performance.notes:
        start, _ = _note_steps(note.onset_s, note.offset_s, hz)
        notes_by_key.setdefault(note.pitch - LOWEST_MIDI, []).append((start, note.hand))
    result = []
    for key, notes in notes_by_key.items():
        notes.sort(key=lambda n: n[0])
        column = np.concatenate([[False], keys[:, key], [False]])
        edges = np.flatnonzero(column[1:] != column[:-1])
        for start, stop in zip(edges[::2], edges[1::2]):
            hand = [h for s, h in notes if s <= start][-1]
            result.append(Segment(int(start), int(stop), key, hand))
    return sorted(result)
