"""The training example the dataset loader yields and the flow-matching transformer consumes.

A window is cut from one stored trajectory at step t: the observations of steps
t - obs_history + 1 .. t (the first one repeated before the trajectory starts) and the expert
actions of steps t .. t + horizon - 1 (masked past the trajectory's end). Actions are in the
policy's normalised space [-1, 1] (PPO's `to_physical` maps them to the env's units).
"""

from __future__ import annotations

import jax
from flax import struct

OBS_HISTORY = 2  # OmniPianist
ACTION_HORIZON = 4


@struct.dataclass
class WindowBatch:
    """A batch of training windows (device arrays).

    Attributes:
        observations: float32 [B, obs_history, obs_dim], raw env observations.
        actions: float32 [B, horizon, action_dim], expert actions in [-1, 1].
        action_mask: bool [B, horizon], False for steps past the trajectory's end.
        piece: int32 [B], the piece's index in the dataset's piece list.
    """

    observations: jax.Array
    actions: jax.Array
    action_mask: jax.Array
    piece: jax.Array
