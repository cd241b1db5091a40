"""The observation vector's layout (RP1M order), shared by the env, policies and datasets.

For the full task (K = 88 keys, F = 10 fingertips, H = 46 hand joints, lookahead L = 10):

| slice       | size            | content                                                    |
|-------------|-----------------|------------------------------------------------------------|
| goal        | (L+1) * (K+1)   | rows t..t+L, each K goal keys (0/1) then goal sustain       |
| key_state   | K               | key angle / key travel, clipped to [0, 1]                   |
| sustain     | 1               | sustain pedal state (0/1) after the last action             |
| fingertips  | 3 F             | fingertip site positions (m, world), right th..lf, left     |
| hand_state  | H               | hand joint positions, right (forearm slides last) then left |
| fingering   | 4 F (optional)  | per fingertip: vector to its OT-assigned key target (m), then |
|             |                 | F flags 0/1 (has a key); for the goal of the next step        |

Total 11 * 89 + 88 + 1 + 30 + 46 = 1144 (1184 with the fingering block).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class ObservationLayout:
    """Sizes of each observation block; `slices()` gives where each block lies.

    Attributes:
        num_keys: K. num_fingertips: F. num_hand_joints: H. lookahead: L.
        fingering_targets: whether the optional fingering block is present.
    """

    num_keys: int
    num_fingertips: int
    num_hand_joints: int
    lookahead: int
    fingering_targets: bool = False

    def sizes(self) -> dict[str, int]:
        """Block name -> size, in observation order."""
        return {
            "goal": (self.lookahead + 1) * (self.num_keys + 1),
            "key_state": self.num_keys,
            "sustain": 1,
            "fingertips": 3 * self.num_fingertips,
            "hand_state": self.num_hand_joints,
            "fingering": 4 * self.num_fingertips if self.fingering_targets else 0,
        }

    def slices(self) -> dict[str, slice]:
        """Block name -> slice of the observation vector."""
        out, start = {}, 0
        for name, size in self.sizes().items():
            out[name] = slice(start, start + size)
            start += size
        return out

    @property
    def size(self) -> int:
        """Total observation size."""
        return sum(self.sizes().values())

    def assemble(self, blocks: dict[str, jax.Array]) -> jax.Array:
        """The observation, float32 [size]: `blocks` (name -> array, each flattened) in this
        layout's order; 'fingering' only when the layout has it (a scene without hands gives
        empty 'fingertips' and 'hand_state' blocks).

        Raises:
            ValueError: a block missing, unknown, or of another size than the layout's (at
                trace time).
        """
        sizes = {name: size for name, size in self.sizes().items()
                 if name != "fingering" or self.fingering_targets}
        if set(blocks) != set(sizes):
            raise ValueError(f"observation blocks {sorted(blocks)}; the layout has "
                             f"{list(sizes)}")
        parts = [jnp.ravel(blocks[name]).astype(jnp.float32) for name in sizes]
        wrong = {name: p.size for name, p in zip(sizes, parts) if p.size != sizes[name]}
        if wrong:
            raise ValueError(f"observation block sizes {wrong}; the layout has "
                             f"{ {name: sizes[name] for name in wrong} }")
        return jnp.concatenate(parts)


def goal_block(goal_keys: jax.Array, goal_sustain: jax.Array, piece: jax.Array, t: jax.Array,
               rows: int) -> jax.Array:
    """The observation's goal block: rows t .. t + rows - 1 of one piece, each K goal keys then
    the goal sustain.

    Args:
        goal_keys: bool [P, T_max + rows, K], the bank's padded goals.
        goal_sustain: bool [P, T_max + rows].
        piece: int32 [], the bank index.
        t: int32 [], the first row.
        rows: lookahead + 1 (static).

    Returns:
        float32 [rows * (K + 1)]. Off-policy learners store the rest of an observation and
        rebuild this from (piece, t) when they sample (`train.replay`).
    """
    keys = jax.lax.dynamic_slice_in_dim(goal_keys[piece], t, rows, axis=0)
    sustain = jax.lax.dynamic_slice_in_dim(goal_sustain[piece], t, rows)
    return jnp.concatenate([keys, sustain[:, None]], axis=-1).reshape(-1).astype(jnp.float32)


def fingering_targets(finger_of_key: jax.Array, key_points: jax.Array,
                      fingertips: jax.Array) -> jax.Array:
    """The observation's fingering block: per fingertip, the vector to the target of the goal
    key the OT assigned it, then whether it has one.

    Args:
        finger_of_key: int [K], the fingertip assigned to each key (-1 or >= F: none).
        key_points: float32 [K, 3], the keys' target points.
        fingertips: float32 [F, 3].

    Returns:
        float32 [4 F]: the F vectors (zero where unassigned), then F flags 0/1.
    """
    one_hot = finger_of_key[:, None] == jnp.arange(fingertips.shape[0])  # [K, F]
    has_key = jnp.any(one_hot, axis=0)
    target = one_hot.astype(jnp.float32).T @ key_points  # [F, 3]
    vector = jnp.where(has_key[:, None], target - fingertips, 0.0)
    return jnp.concatenate([vector.reshape(-1), has_key.astype(jnp.float32)])
