"""Residual RL on the IK pianist: the policy's action is a bounded correction to the IK action.

    physical action = clip(ik_action + scale * half_range * policy_action, low, high)

with `policy_action` in [-1, 1] per dimension and `half_range` half of each dimension's
control range: `scale` 0 plays the IK pianist, 1 lets the policy reach anywhere. Where the
bank holds a learned table per piece (`PieceBank.with_ik_tables`, an ILC run's), `ik_action`
is the IK pianist's with that table's row for the step: the policy corrects the learned play.
Every learner gets it through the training env config (`env.residual_scale`, and
`env.residual_tables` for the tables, in `train.config.EnvSpec`).
"""

from __future__ import annotations

import copy
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mjx_piano.env import EnvState, PianoEnv
from mjx_piano.ik_pianist import IKPianist


def table_action(pianist: IKPianist, state: EnvState, table: jax.Array,
                 thumb_black_cost: jax.Array | float) -> jax.Array:
    """The IK pianist's action with a learned table's row for the state's step (an ILC run's
    play), float32 [action_size] in physical units.

    Args:
        pianist: the IK pianist of the env `state` belongs to.
        state: one env's `EnvState`.
        table: float32 [T, F, 3] (m), the fingertips' target offsets per step; past its end
            its last row holds.
        thumb_black_cost: float32 [] (m), the fingering variant's thumb cost.
    """
    row = table[jnp.minimum(state.t, table.shape[0] - 1)]
    return pianist.plan(state, row, jnp.asarray(thumb_black_cost, jnp.float32))[0]


class ResidualIKEnv:
    """`PianoEnv` with the residual action space; every other attribute is the env's.

    Args:
        env: the piano env (both hands).
        scale: the correction's reach, a fraction of each control range (> 0).
        table_steps: T > 0: the banks this env binds carry a table of T steps per piece
            (`PieceBank.with_ik_tables`; `bank_shape` includes it); 0: they carry none.
    """

    def __init__(self, env: PianoEnv, scale: float, table_steps: int = 0):
        if not scale > 0:
            raise ValueError(f"the residual scale must be > 0, got {scale}")
        self.env = env
        self.base: ResidualIKEnv = self  # the unbound env every bound view shares
        self.scale = float(scale)
        self.table_steps = int(table_steps)
        self.pianist = IKPianist(env)
        self.action_low = -np.ones(env.action_size, np.float32)
        self.action_high = np.ones(env.action_size, np.float32)
        self._half_range = ((env.action_high - env.action_low) / 2).astype(np.float32)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "env":  # copy.copy probes a bare instance
            raise AttributeError(name)
        return getattr(self.env, name)

    def physical_action(self, state: EnvState, action: jax.Array) -> jax.Array:
        """The env's action for a policy action in [-1, 1], float32 [action_size]."""
        correction = self.scale * jnp.asarray(self._half_range) * jnp.clip(action, -1.0, 1.0)
        return jnp.clip(self.base_action(state) + correction, self.env.action_low,
                        self.env.action_high)

    def base_action(self, state: EnvState) -> jax.Array:
        """The action the correction is added to, float32 [action_size]: the IK pianist's,
        with the step's row of the piece's table when the bank holds tables."""
        bank = self.env.bank
        if bank.target_offset is None:
            return self.pianist.action(state)
        return table_action(self.pianist, state, bank.target_offset[state.piece],
                            bank.thumb_black_cost[state.piece])

    def bank_shape(self, num_pieces: int, max_steps: int) -> Any:
        """The env's abstract bank (`PianoEnv.bank_shape`), with the tables' leaves
        (float32 [num_pieces, table_steps, F, 3] and [num_pieces]) when `table_steps` > 0."""
        shape = self.env.bank_shape(num_pieces, max_steps)
        if not self.table_steps:
            return shape
        tips = len(self.pianist.tip_site)
        return shape.replace(
            target_offset=jax.ShapeDtypeStruct((num_pieces, self.table_steps, tips, 3),
                                               jnp.float32),
            thumb_black_cost=jax.ShapeDtypeStruct((num_pieces,), jnp.float32))

    def bind(self, bank: Any) -> "ResidualIKEnv":
        """The same residual action space over `env.bind(bank)` (a shallow view)."""
        twin = copy.copy(self)
        twin.env = self.env.bind(bank)
        twin.pianist = copy.copy(self.pianist)
        twin.pianist.env = twin.env
        twin.base = self.base
        return twin

    def evaluation_env(self) -> "ResidualIKEnv":
        """The same residual action space over the env without its training levers."""
        inner = self.env.evaluation_env()
        return (self if inner is self.env
                else ResidualIKEnv(inner, self.scale, self.table_steps))

    def reset(self, rng: jax.Array, piece: jax.Array | int) -> EnvState:
        """As `PianoEnv.reset`."""
        return self.env.reset(rng, piece)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        """As `PianoEnv.step`, with `action` [action_size] a correction in [-1, 1]."""
        return self.env.step(state, self.physical_action(state, action))
