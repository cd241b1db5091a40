"""Generated etudes: scales, arpeggios, chords and two-hand patterns, needing no files.

Names are `etude/<tonic>-<mode>-<pattern>`, for 12 tonics x {major, minor} x the patterns below,
e.g. `etude/c-major-scale-rh` - the default small piece: C4 to C5 with the right hand, eight
notes of 5 control steps each (40 steps, 2 s). Every etude goes through the same path as a read
file (`Performance` -> `to_piano_roll`), so the hand split is the same; its times lie on the
step grid, and it keeps the 'nearest' step convention (`pianoroll.CONVENTIONS`) under which its
figures were measured (RoboPianist's rule would add one silent step at the end).

Patterns (one beat = 0.25 s = 5 control steps):
  scale-rh / scale-lh   one octave up (the left hand an octave lower), eight beats;
  scale-up-down-rh      up and down one octave, fifteen beats;
  scale-hands           both hands an octave apart, up and down;
  arpeggio-rh / -lh     tonic triad broken over two octaves, up and down;
  chords                block triads I-IV-V-I, right hand in close position over left-hand roots
                        (pedal down with each chord);
  alberti               right-hand scale melody in half notes over a left-hand Alberti bass.
"""

from __future__ import annotations

import functools

from mjx_piano.music.events import MusicError, NoteEvent, SustainEvent, make_performance
from mjx_piano.music.pianoroll import to_piano_roll
from mjx_piano.music.roll import PianoRoll

DEFAULT_ETUDE = "etude/c-major-scale-rh"
BEAT_S = 0.25
_TONICS = ("c", "c#", "d", "eb", "e", "f", "f#", "g", "ab", "a", "bb", "b")
_MODES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}  # natural minor
_PATTERNS = ("scale-rh", "scale-lh", "scale-up-down-rh", "scale-hands", "arpeggio-rh",
             "arpeggio-lh", "chords", "alberti")

Note = tuple[float, float, int, str]  # (beat, beats, midi pitch, hand)


def etude_names() -> list[str]:
    """All etude names, sorted; the default `etude/c-major-scale-rh` among them."""
    return sorted(f"etude/{t}-{m}-{p}" for t in _TONICS for m in _MODES for p in _PATTERNS)


def _degree(tonic: int, mode: str, degree: int) -> int:
    """MIDI pitch of a scale degree (0 = tonic, 7 = tonic an octave up, negative below)."""
    steps = _MODES[mode]
    octave, index = divmod(degree, 7)
    return tonic + 12 * octave + steps[index]


def _scale(tonic: int, mode: str, hand: str, up_down: bool, start: float = 0.0) -> list[Note]:
    degrees = list(range(8)) + (list(range(6, -1, -1)) if up_down else [])
    return [(start + i, 1.0, _degree(tonic, mode, d), hand) for i, d in enumerate(degrees)]


def _arpeggio(tonic: int, mode: str, hand: str) -> list[Note]:
    degrees = [0, 2, 4, 7, 9, 11, 14]
    degrees = degrees + degrees[-2::-1]
    return [(i, 1.0, _degree(tonic, mode, d), hand) for i, d in enumerate(degrees)]


def _chords(tonic: int, mode: str) -> tuple[list[Note], list[tuple[float, float]]]:
    notes: list[Note] = []
    pedal = []
    for bar, root in enumerate((0, 3, 4, 0)):
        beat = 4.0 * bar
        for third in (0, 2, 4):
            notes.append((beat, 4.0, _degree(tonic + 12, mode, root + third), "right"))
        notes.append((beat, 4.0, _degree(tonic - 12, mode, root), "left"))
        pedal.append((beat + 0.2, beat + 3.8))
    return notes, pedal


def _alberti(tonic: int, mode: str) -> list[Note]:
    notes: list[Note] = []
    for bar, root in enumerate((0, 4, 0, 4, 3, 0, 4, 0)):
        low, third, fifth = (_degree(tonic - 12, mode, root + d) for d in (0, 2, 4))
        for i, pitch in enumerate((low, fifth, third, fifth)):
            notes.append((4.0 * bar + i, 1.0, pitch, "left"))
    melody = (2, 1, 0, 1, 2, 2, 2, 1, 1, 1, 2, 4, 4, 2, 1, 0)
    notes.extend((2.0 * i, 2.0, _degree(tonic + 12, mode, d), "right") for i, d in enumerate(melody))
    return notes


def _notes(tonic: int, mode: str, pattern: str) -> tuple[list[Note], list[tuple[float, float]]]:
    if pattern == "scale-rh":
        return _scale(tonic, mode, "right", False), []
    if pattern == "scale-lh":
        return _scale(tonic - 12, mode, "left", False), []
    if pattern == "scale-up-down-rh":
        return _scale(tonic, mode, "right", True), []
    if pattern == "scale-hands":
        return _scale(tonic, mode, "right", True) + _scale(tonic - 12, mode, "left", True), []
    if pattern == "arpeggio-rh":
        return _arpeggio(tonic, mode, "right"), []
    if pattern == "arpeggio-lh":
        return _arpeggio(tonic - 24, mode, "left"), []
    if pattern == "chords":
        return _chords(tonic, mode)
    return _alberti(tonic, mode), []


@functools.lru_cache(maxsize=64)
def get_etude(name: str) -> PianoRoll:
    """The named etude as a piano roll (keys [steps, 88], sustain [steps], hand split).

    Raises:
        KeyError: `name` is not an etude (see `etude_names`).
    """
    parts = name.removeprefix("etude/").split("-", 2)
    if not name.startswith("etude/") or len(parts) != 3 or parts[0] not in _TONICS \
            or parts[1] not in _MODES or parts[2] not in _PATTERNS:
        raise KeyError(f"unknown etude {name!r}; e.g. {DEFAULT_ETUDE!r} (see etude_names())")
    tonic_name, mode, pattern = parts
    tonic = 60 + _TONICS.index(tonic_name)
    if tonic > 65:  # keep the music around middle C
        tonic -= 12
    notes, pedal = _notes(tonic, mode, pattern)
    performance = make_performance(
        [NoteEvent(b * BEAT_S, (b + n) * BEAT_S, p, 80, h) for b, n, p, h in notes],
        [SustainEvent(a * BEAT_S, b * BEAT_S) for a, b in pedal],
        title=f"{tonic_name.upper()} {mode} {pattern.replace('-', ' ')}",
        composer="mjx_piano", source="generated",
    )
    try:
        return to_piano_roll(performance, name, convention="nearest")
    except MusicError as error:  # a bug in the patterns, not user input
        raise AssertionError(f"etude {name} is malformed: {error}") from error
