"""The piece bank: the goals of a set of pieces, padded into arrays: data, not part of the env.

Envs play different pieces by holding an index into a bank. The bank is built on the host once
from `PianoRoll`s, restricted to the keys the scene has, and reaches the traced step as an
argument (`PianoEnv.bind` inside the jitted function): a run over other pieces of the same
shapes reuses the compiled code, and no executable holds the goals as constants. A training run
gives each agent its own bank (its k pieces), split over the devices with the agents.
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
        target_offset: float32 [P, T, F, 3] (m) or None: a learned table per piece that moves
            the IK pianist's fingertip targets at each control step (an ILC run's, see
            `with_ik_tables`); the residual action space corrects the IK action it gives.
        thumb_black_cost: float32 [P] (m) or None: the fingering variant each table was
            learned in (`IKPianist.plan`'s `thumb_black_cost`).

    Every leaf is an array (no names, no static fields), so banks of equal shapes trace alike.
    """

    goal_keys: jax.Array
    goal_sustain: jax.Array
    length: jax.Array
    target_offset: jax.Array | None = None
    thumb_black_cost: jax.Array | None = None

    @property
    def num_pieces(self) -> int:
        """Number of pieces P."""
        return int(self.length.shape[0])

    def take(self, rows: np.ndarray) -> "PieceBank":
        """The bank of pieces `rows` (int [..., k]) on the host: leaves [..., k, ...]."""
        rows = np.asarray(rows)
        return jax.tree.map(lambda x: np.asarray(x)[rows], self)

    def with_ik_tables(self, target_offset: np.ndarray, thumb_black_cost: np.ndarray
                       ) -> "PieceBank":
        """The same pieces with a table of IK target offsets per piece (row i = piece i).

        Args:
            target_offset: float32 [P, T, F, 3] (m); past step T - 1 the last row holds.
            thumb_black_cost: float32 [P] (m), the fingering variant of each table.
        """
        if target_offset.ndim != 4 or target_offset.shape[0] != self.num_pieces:
            raise ValueError(f"a table per piece, float32 [{self.num_pieces}, T, F, 3], "
                             f"got shape {target_offset.shape}")
        if thumb_black_cost.shape != (self.num_pieces,):
            raise ValueError(f"a thumb cost per piece, [{self.num_pieces}], got shape "
                             f"{thumb_black_cost.shape}")
        return self.replace(target_offset=np.asarray(target_offset, np.float32),
                            thumb_black_cost=np.asarray(thumb_black_cost, np.float32))


def bank_shape(num_pieces: int, max_steps: int, lookahead: int, num_keys: int) -> PieceBank:
    """The abstract bank (`jax.ShapeDtypeStruct` leaves) of `num_pieces` pieces of at most
    `max_steps` control steps over `num_keys` keys (what `make_piece_bank` would build)."""
    width = max_steps + lookahead + 1
    return PieceBank(goal_keys=jax.ShapeDtypeStruct((num_pieces, width, num_keys), jnp.bool_),
                     goal_sustain=jax.ShapeDtypeStruct((num_pieces, width), jnp.bool_),
                     length=jax.ShapeDtypeStruct((num_pieces,), jnp.int32))


def make_piece_bank(rolls: Sequence[PianoRoll], keys: Sequence[int], lookahead: int) -> PieceBank:
    """Pads and stacks piano rolls into a `PieceBank` over the scene's keys.

    Args:
        rolls: the pieces (at least one), each with keys [T_i, 88] and sustain [T_i].
        keys: the scene's key indices (0 = A0) [K]; goals on other keys are an error.
        lookahead: goal steps the observation shows beyond the current one.

    Returns:
        The bank, as numpy arrays on the host (width max(T_i) + lookahead + 1).

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
    return PieceBank(goal_keys=goal_keys, goal_sustain=goal_sustain,
                     length=np.asarray([roll.num_steps for roll in rolls], dtype=np.int32))
