"""Note names for people: key index <-> 'C4', 'F#3', 'Bb2' (scientific pitch, C4 = middle C)."""

from __future__ import annotations

import re

from mjx_piano.music.roll import LOWEST_MIDI, NUM_KEYS

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_STEPS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NOTE = re.compile(r"^([A-Ga-g])([#b]?)(-?\d)$")


def key_name(key: int) -> str:
    """The name of key index `key` (0 = A0, 39 = C4, 87 = C8)."""
    midi = LOWEST_MIDI + int(key)
    return f"{PITCH_CLASSES[midi % 12]}{midi // 12 - 1}"


def key_names(keys) -> str:
    """Space-separated names of key indices, e.g. 'C4 E4 G4'."""
    return " ".join(key_name(k) for k in keys)


def parse_key(text: str) -> int:
    """The key index of a note name ('C4' -> 39, 'F#3', 'Bb2'; A0..C8).

    Raises:
        ValueError: not a note name, or a note off the 88 keys.
    """
    match = _NOTE.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a note name (e.g. C4, F#3, Bb2)")
    letter, accidental, octave = match.groups()
    midi = 12 * (int(octave) + 1) + _STEPS[letter.upper()] + {"#": 1, "b": -1, "": 0}[accidental]
    key = midi - LOWEST_MIDI
    if not 0 <= key < NUM_KEYS:
        raise ValueError(f"{text!r} is off the piano's 88 keys (A0..C8)")
    return key
