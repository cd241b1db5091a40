"""The piano-roll type every other module consumes.

A piano roll is the goal of one clip at the control rate (20 Hz): which of the 88 keys must be
down and whether the sustain pedal must be on, per control step. Key index 0 is A0 (MIDI 21),
index 87 is C8 (MIDI 108).
"""

from __future__ import annotations

import dataclasses

import numpy as np

NUM_KEYS = 88
LOWEST_MIDI = 21
CONTROL_HZ = 20.0


@dataclasses.dataclass(frozen=True)
class PianoRoll:
    """One clip's goal, on the host.

    Attributes:
        name: unique name of the clip (repertoire key).
        keys: bool array [steps, 88]; True where the key must be pressed.
        sustain: bool array [steps]; True where the sustain pedal must be on.
        title, composer, source: human-readable provenance.
    """

    name: str
    keys: np.ndarray
    sustain: np.ndarray
    title: str = ""
    composer: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        keys = np.asarray(self.keys, dtype=bool)
        sustain = np.asarray(self.sustain, dtype=bool)
        if keys.ndim != 2 or keys.shape[1] != NUM_KEYS:
            raise ValueError(f"piano roll {self.name!r}: keys must be [steps, 88], got {keys.shape}")
        if sustain.shape != (keys.shape[0],):
            raise ValueError(
                f"piano roll {self.name!r}: sustain must be [{keys.shape[0]}], got {sustain.shape}"
            )
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "sustain", sustain)

    @property
    def num_steps(self) -> int:
        """Number of control steps of the clip."""
        return int(self.keys.shape[0])

    @property
    def duration_s(self) -> float:
        """Duration of the clip in seconds at the control rate."""
        return self.num_steps / CONTROL_HZ
