"""The piece the simulator's commands play when none is named: a bundled two-hand etude.

Etudes are generated in code by `mjx_piano.music.etudes` (no files needed); "c-major-chords"
uses both hands, chords of up to four keys and the sustain pedal (80 control steps, 4 s).
"""

from __future__ import annotations

from mjx_piano.music import load_clip
from mjx_piano.music.roll import PianoRoll

DEFAULT_PIECE_NAME = "etude/c-major-chords"


def default_piece() -> PianoRoll:
    """The default etude: keys [80, 88], sustain [80]."""
    return load_clip(DEFAULT_PIECE_NAME)


def load_piece(name: str | None) -> PianoRoll:
    """The named piece (an etude or a repertoire clip), or the default etude for None.

    Raises:
        KeyError: the name is unknown (the message lists close matches).
    """
    return load_clip(DEFAULT_PIECE_NAME if name is None else name)
