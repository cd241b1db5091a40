"""The bundled default piece: a short two-hand C-major etude generated in code (no files).

Right hand: C4 D4 E4 F4 G4 F4 E4 D4 C4 up and down, each note 0.3 s; left hand: the C3-E3-G3
triad held under the first half and G2-B2-D3 under the second; pedal down with the chords.
Every repeated note is released one control step before it sounds again (RoboPianist).
"""

from __future__ import annotations

import numpy as np

from mjx_piano.music.roll import LOWEST_MIDI, NUM_KEYS, PianoRoll

DEFAULT_PIECE_NAME = "etude/c-major-two-hands"
_STEPS_PER_NOTE = 6  # 0.3 s at 20 Hz
_RIGHT_HAND = (60, 62, 64, 65, 67, 65, 64, 62, 60)
_LEFT_HAND = ((48, 52, 55), (43, 47, 50))


def default_piece() -> PianoRoll:
    """Builds the default etude: keys [63, 88], sustain [63] (3.15 s at 20 Hz)."""
    steps = _STEPS_PER_NOTE * len(_RIGHT_HAND) + 9  # a short silence at the end
    keys = np.zeros((steps, NUM_KEYS), dtype=bool)
    sustain = np.zeros(steps, dtype=bool)
    for i, pitch in enumerate(_RIGHT_HAND):
        start = i * _STEPS_PER_NOTE
        keys[start : start + _STEPS_PER_NOTE - 1, pitch - LOWEST_MIDI] = True
    half = _STEPS_PER_NOTE * len(_RIGHT_HAND) // 2
    for chord, (start, stop) in zip(_LEFT_HAND, ((0, half - 1), (half, 2 * half - 1))):
        keys[start:stop, np.array(chord) - LOWEST_MIDI] = True
        sustain[start:stop] = True
    return PianoRoll(DEFAULT_PIECE_NAME, keys, sustain, title="C-major etude",
                     composer="mjx_piano", source="generated")


def load_piece(name: str | None) -> PianoRoll:
    """The named piece: the default etude, or any clip the music library knows.

    Args:
        name: piece name; None means the default etude.

    Raises:
        KeyError: the name is unknown (the message lists where it was looked for).
    """
    if name is None or name == DEFAULT_PIECE_NAME:
        return default_piece()
    try:
        from mjx_piano.music import load_clip  # the repertoire, when it is installed
    except ImportError:
        raise KeyError(f"unknown piece {name!r}; available: {DEFAULT_PIECE_NAME!r}") from None
    return load_clip(name)
