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
        right_hand: optional bool array [steps, 88]; True where a pressed key belongs to the right
            hand (pressed keys outside it belong to the left hand); None when no split is known.
    """

    name: str
    keys: np.ndarray
    sustain: np.ndarray
    title: str = ""
    composer: str = ""
    source: str = ""
    right_hand: np.ndarray | None = None

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
        if self.right_hand is not None:
            right = np.asarray(self.right_hand, dtype=bool)
            if right.shape != keys.shape:
                raise ValueError(
                    f"piano roll {self.name!r}: right_hand must be {keys.shape}, got {right.shape}"
                )
            object.__setattr__(self, "right_hand", right & keys)

    @property
    def num_steps(self) -> int:
        """Number of control steps of the clip."""
        return int(self.keys.shape[0])

    def hand_keys(self, hand: str) -> np.ndarray:
        """Keys of one hand, bool [steps, 88]; 'left' or 'right' (needs `right_hand`)."""
        if self.right_hand is None:
            raise ValueError(f"piano roll {self.name!r} has no hand split")
        if hand not in ("left", "right"):
            raise ValueError(f"hand must be 'left' or 'right', got {hand!r}")
        return self.right_hand if hand == "right" else self.keys & ~self.right_hand

    @property
    def num_notes(self) -> int:
        """Number of key onsets (a repeated note is released first, so each counts once)."""
        previous = np.zeros_like(self.keys)
        previous[1:] = self.keys[:-1]
        return int((self.keys & ~previous).sum())

    @property
    def duration_s(self) -> float:
        """Duration of the clip in seconds at the control rate."""
        return self.num_steps / CONTROL_HZ
