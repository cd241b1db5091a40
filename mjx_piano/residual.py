"""Residual RL on the IK pianist: the policy's action is a bounded correction to the IK action.

    physical action = clip(ik_action + scale * half_range * policy_action, low, high)

with `policy_action` in [-1, 1] per dimension and `half_range` half of each dimension's
control range: `scale` 0 plays the IK pianist, 1 lets the policy reach anywhere. Every learner
gets it through the training env config (`env.residual_scale` in `train.config.EnvConfig`).
"""

from __future__ import annotations

import copy
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mjx_piano.env import EnvState, PianoEnv
from mjx_piano.ik_pianist import IKPianist


class ResidualIKEnv:
    """`PianoEnv` with the residual action space; every other attribute is the env's.

    Args:
        env: the piano env (both hands).
        scale: the correction's reach, a fraction of each control range (> 0).
    """

    def __init__(self, env: PianoEnv, scale: float):
        if not scale > 0:
            raise ValueError(f"the residual scale must be > 0, got {scale}")
        self.env = env
        self.base: ResidualIKEnv = self  # the unbound env every bound view shares
        self.scale = float(scale)
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
        return jnp.clip(self.pianist.action(state) + correction, self.env.action_low,
                        self.env.action_high)

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
        return self if inner is self.env else ResidualIKEnv(inner, self.scale)

    def reset(self, rng: jax.Array, piece: jax.Array | int) -> EnvState:
        """As `PianoEnv.reset`."""
        return self.env.reset(rng, piece)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        """As `PianoEnv.step`, with `action` [action_size] a correction in [-1, 1]."""
        return self.env.step(state, self.physical_action(state, action))
