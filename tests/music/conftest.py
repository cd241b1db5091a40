"""Helpers shared by the music tests: tiny MIDI files written on the spot, expected rolls."""

from __future__ import annotations

import os
from typing import Sequence

import mido
import numpy as np
import pretty_midi
import pytest

TICKS = 480  # ticks per beat


def write_midi(path: str | os.PathLike[str], tracks: dict[str, Sequence[tuple[float, float, int]]],
               pedal: Sequence[tuple[float, float]] = ()) -> str:
    """Writes a type-1 file with pretty_midi at 120 bpm; tracks {name: [(on_s, off_s, pitch)]}."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    for name, notes in tracks.items():
        instrument = pretty_midi.Instrument(program=0, name=name)
        instrument.notes = [pretty_midi.Note(90, pitch, on, off) for on, off, pitch in notes]
        midi.instruments.append(instrument)
    for on, off in pedal:
        midi.instruments[0].control_changes += [pretty_midi.ControlChange(64, 127, on),
                                                 pretty_midi.ControlChange(64, 0, off)]
    midi.write(os.fspath(path))
    return os.fspath(path)


def write_tempo_midi(path: str | os.PathLike[str], midi_type: int,
                     notes: Sequence[tuple[float, float, int]],
                     tempos: Sequence[tuple[float, int]]) -> str:
    """Writes a type-0 or type-1 file with mido; notes and tempo changes [(beat, us_per_beat)]
    are in beats, so the seconds depend on the tempo map."""
    events = [(int(beat * TICKS), 0, mido.MetaMessage("set_tempo", tempo=tempo))
              for beat, tempo in tempos]
    for on, off, pitch in notes:
        events.append((int(on * TICKS), 2, mido.Message("note_on", note=pitch, velocity=90)))
        events.append((int(off * TICKS), 1, mido.Message("note_off", note=pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))

    def track(selected: list) -> mido.MidiTrack:
        result, now = mido.MidiTrack(), 0
        for tick, _, message in selected:
            result.append(message.copy(time=tick - now))
            now = tick
        return result

    file = mido.MidiFile(type=midi_type, ticks_per_beat=TICKS)
    if midi_type == 0:
        file.tracks.append(track(events))
    else:
        file.tracks.append(track([e for e in events if e[2].is_meta]))
        file.tracks.append(track([e for e in events if not e[2].is_meta]))
    file.save(os.fspath(path))
    return os.fspath(path)


def expected_keys(steps: int, runs: dict[int, Sequence[tuple[int, int]]]) -> np.ndarray:
    """bool [steps, 88] with runs {midi pitch: [(start step, stop step)]}."""
    keys = np.zeros((steps, 88), dtype=bool)
    for pitch, spans in runs.items():
        for start, stop in spans:
            keys[start:stop, pitch - 21] = True
    return keys


@pytest.fixture
def cache(tmp_path, monkeypatch) -> str:
    """An empty repertoire cache folder for this test ($MJX_PIANO_CACHE)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("MJX_PIANO_CACHE", str(folder))
    return str(folder)
