"""The piece bank: every env's goal, padded into one device-resident array.

Envs play different pieces by holding an index into the bank; the bank is built on the host once
from `PianoRoll`s and restricted to the keys the scene has.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mjx_piano.music.roll import PianoRoll


@struct.dataclass
class PieceBank:
    """Goals of all pieces, padded with silence past each piece's end.

    Attributes:
        goal_keys: bool [P, T_max + lookahead + 1, K]: keys to press per control step.
        goal_sustain: bool [P, T_max + lookahead + 1]: sustain pedal per control step.
        length: int32 [P]: control steps of each piece (its episode length).
        names: the pieces' names (static).
    """

    goal_keys: jax.Array
    goal_sustain: jax.Array
    length: jax.Array
    names: tuple[str, ...] = struct.field(pytree_node=False)

    @property
    def num_pieces(self) -> int:
        """Number of pieces P."""
        return len(self.names)

    def index(self, name: str) -> int:
        """The bank index of piece `name`; a clear error if it is not in the bank."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"piece {name!r} is not in the bank; it holds {list(self.names)}") from None


def make_piece_bank(rolls: Sequence[PianoRoll], keys: Sequence[int], lookahead: int) -> PieceBank:
    """Pads and stacks piano rolls into a `PieceBank` over the scene's keys.

    Args:
        rolls: the pieces (at least one), each with keys [T_i, 88] and sustain [T_i].
        keys: the scene's key indices (0 = A0) [K]; goals on other keys are an error.
        lookahead: goal steps the observation shows beyond the current one.

    Returns:
        The bank, as jax arrays.

    Raises:
        ValueError: no piece, an empty piece, or a piece needing a key the scene lacks.
    """
    if not rolls:
        raise ValueError("the piece bank needs at least one piece")
    keys = np.asarray(keys)
    missing = np.setdiff1d(np.arange(rolls[0].keys.shape[1]), keys)
    width = max(roll.num_steps for roll in rolls) + lookahead + 1
    goal_keys = np.zeros((len(rolls), width, len(keys)), dtype=bool)
    goal_sustain = np.zeros((len(rolls), width), dtype=bool)
    for i, roll in enumerate(rolls):
        if roll.num_steps == 0:
            raise ValueError(f"piece {roll.name!r} has no control steps")
        if roll.keys[:, missing].any():
            needed = sorted(set(np.nonzero(roll.keys[:, missing])[1].tolist()))
            raise ValueError(
                f"piece {roll.name!r} presses keys {missing[needed].tolist()} that this scene "
                f"does not have (it has keys {keys.tolist()})"
            )
        goal_keys[i, : roll.num_steps] = roll.keys[:, keys]
        goal_sustain[i, : roll.num_steps] = roll.sustain
    return PieceBank(
        goal_keys=jnp.asarray(goal_keys),
        goal_sustain=jnp.asarray(goal_sustain),
        length=jnp.asarray([roll.num_steps for roll in rolls], dtype=jnp.int32),
        names=tuple(roll.name for roll in rolls),
    )
