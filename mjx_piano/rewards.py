"""The named reward terms of the piano task (RoboPianist / RP1M semantics).

Every term is a pure function of arrays of one env; `total_reward` returns `(total, terms)` so
that each term can be logged as `reward/<name>`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from kernels.tolerance import tolerance

ENERGY_COEF = 5e-3
KEY_PRESS_BOUNDS = (0.0, 0.05)
KEY_PRESS_MARGIN = 0.5
SUSTAIN_BOUNDS = (0.0, 0.05)
SUSTAIN_MARGIN = 0.5
FOREARM_REWARD = 0.5


@struct.dataclass
class RewardTerms:
    """One control step's reward terms (scalars); their sum is the reward.

    Attributes:
        key_press: 0.5 * mean tolerance over the goal keys + 0.5 if no wrong key is down.
        sustain: tolerance of the sustain state against the goal.
        energy: -5e-3 * sum over hand actuators of |force| * |velocity|.
        forearm: 0.5 unless the two forearms collide.
        fingering: OT fingering term (1 when no key is active); 0 when disabled.
    """

    key_press: jax.Array
    sustain: jax.Array
    energy: jax.Array
    forearm: jax.Array
    fingering: jax.Array

    @classmethod
    def zeros(cls) -> "RewardTerms":
        """All terms zero (float32 scalars)."""
        zero = jnp.zeros((), jnp.float32)
        return cls(key_press=zero, sustain=zero, energy=zero, forearm=zero, fingering=zero)

    def total(self) -> jax.Array:
        """The reward: the sum of the terms, float32 []."""
        return self.key_press + self.sustain + self.energy + self.forearm + self.fingering


def key_press_reward(key_position: jax.Array, goal: jax.Array, pressed: jax.Array) -> jax.Array:
    """Key-press term.

    Args:
        key_position: key angles normalised by their travel, float [K] in [0, 1].
        goal: bool [K], keys that should be down.
        pressed: bool [K], keys that count as pressed.

    Returns:
        float32 []: 0.5 * mean over goal keys of tolerance(1 - position) (0 when no goal key)
        + 0.5 * (1 - any key pressed that should not be).
    """
    goal = goal.astype(bool)
    closeness = tolerance(
        goal.astype(jnp.float32) - key_position, KEY_PRESS_BOUNDS, KEY_PRESS_MARGIN
    )
    num_on = jnp.sum(goal)
    on_mean = jnp.sum(jnp.where(goal, closeness, 0.0)) / jnp.maximum(num_on, 1)
    on_term = jnp.where(num_on > 0, on_mean, 0.0)
    false_positive = jnp.any(pressed & ~goal)
    return (0.5 * on_term + 0.5 * (1.0 - false_positive)).astype(jnp.float32)


def sustain_reward(sustain: jax.Array, goal_sustain: jax.Array) -> jax.Array:
    """Sustain term: tolerance(goal - state, (0, 0.05), margin 0.5); inputs bool [] -> float32 []."""
    error = goal_sustain.astype(jnp.float32) - sustain.astype(jnp.float32)
    return tolerance(error, SUSTAIN_BOUNDS, SUSTAIN_MARGIN).astype(jnp.float32)


def energy_reward(actuator_force: jax.Array, actuator_velocity: jax.Array) -> jax.Array:
    """Energy penalty: -5e-3 * sum |force| |velocity| over the hand actuators [U] -> float32 []."""
    return (-ENERGY_COEF * jnp.sum(jnp.abs(actuator_force) * jnp.abs(actuator_velocity))).astype(
        jnp.float32
    )


def forearm_reward(collided: jax.Array) -> jax.Array:
    """0.5 when the forearms do not touch, else 0; bool [] -> float32 []."""
    return jnp.where(collided, 0.0, FOREARM_REWARD).astype(jnp.float32)


def fingering_solver(solver: str):
    """The fingering term's OT solver: `(fingertips [F, 3], key_points [K, 3], active [K]) ->
    (reward float32 [], finger of each key int [K])` for `solver` ('exact' or 'sinkhorn'), or
    None for 'none'."""
    if solver == "none":
        return None
    from kernels import fingering  # the OT kernel; imported only when used

    config = fingering.FingeringConfig(solver=solver)

    def reward(fingertips: jax.Array, key_points: jax.Array,
               active: jax.Array) -> tuple[jax.Array, jax.Array]:
        value, assignment = fingering.fingering_reward(fingertips, key_points, active, config)
        return value.astype(jnp.float32), assignment

    return reward
