"""The named reward terms of the piano task (RoboPianist / RP1M semantics).

Every term is a pure function of arrays of one env and of the task's `RewardConfig` (weights
and tolerance bounds; part of a training run's identity, section `reward`). `RewardTerms`
holds one step's terms so that each can be logged as `reward/<name>`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from kernels.tolerance import tolerance


@dataclasses.dataclass(frozen=True)
class RewardConfig:
    """Weights and tolerance bounds of the reward terms (hashable; static under `jit`).

    The defaults are RoboPianist's task (key press, sustain, energy, forearm) with the OT
    fingering term of RP1M. A weight of 1.0 leaves a term exactly as computed.

    Attributes:
        key_press_weight: multiplies the key-press term (at most 1: 0.5 for the goal keys'
            closeness + 0.5 when no wrong key is down).
        key_press_bounds: tolerance bounds on (goal - normalised key position).
        key_press_margin: tolerance margin of the key-press closeness (0.1 at bound + margin).
        no_wrong_key_share: share of the key-press term paid when no wrong key is down (the
            rest pays the goal keys' closeness); RoboPianist's 0.5 weighs one wrong key as
            much as every goal key missed.
        sustain_weight: multiplies the sustain term (at most 1).
        sustain_bounds: tolerance bounds on (goal - sustain state).
        sustain_margin: tolerance margin of the sustain term.
        energy_coef: the energy term is -energy_coef * sum |force| |velocity| over the hand
            actuators.
        forearm_reward: paid when the two forearms do not touch.
        fingering_weight: multiplies the OT fingering term (at most 1).
        fingering_bounds: tolerance bounds on a fingertip's distance to its assigned key (m).
        fingering_margin: tolerance margin of the fingering term (m).
    """

    key_press_weight: float = 1.0
    key_press_bounds: tuple[float, float] = (0.0, 0.05)
    key_press_margin: float = 0.5
    no_wrong_key_share: float = 0.5
    sustain_weight: float = 1.0
    sustain_bounds: tuple[float, float] = (0.0, 0.05)
    sustain_margin: float = 0.5
    energy_coef: float = 5e-3
    forearm_reward: float = 0.5
    fingering_weight: float = 1.0
    fingering_bounds: tuple[float, float] = (0.0, 0.01)
    fingering_margin: float = 0.1

    def __post_init__(self) -> None:
        for name in ("key_press", "sustain", "fingering"):
            low, high = getattr(self, f"{name}_bounds")
            if not (0.0 <= low <= high) or not getattr(self, f"{name}_margin") > 0:
                raise ValueError(f"reward.{name}_bounds must be 0 <= low <= high and "
                                 f"reward.{name}_margin > 0, got ({low}, {high}) and "
                                 f"{getattr(self, f'{name}_margin')}")
        if not 0.0 <= self.no_wrong_key_share <= 1.0:
            raise ValueError(f"reward.no_wrong_key_share must lie in [0, 1], got "
                             f"{self.no_wrong_key_share}")
        weights = (self.key_press_weight, self.sustain_weight, self.fingering_weight,
                   self.energy_coef, self.forearm_reward)
        if not all(w >= 0 for w in weights):
            raise ValueError(f"reward weights (key_press_weight, sustain_weight, "
                             f"fingering_weight, energy_coef, forearm_reward) must be >= 0, "
                             f"got {weights}")


DEFAULT_REWARD = RewardConfig()


@struct.dataclass
class RewardTerms:
    """One control step's reward terms (scalars); their sum is the reward.

    Attributes:
        key_press: 0.5 * mean tolerance over the goal keys + 0.5 if no wrong key is down
            (times `RewardConfig.key_press_weight`).
        sustain: tolerance of the sustain state against the goal (times its weight).
        energy: -energy_coef (5e-3) * sum over hand actuators of |force| * |velocity|.
        forearm: `forearm_reward` (0.5) unless the two forearms collide.
        fingering: OT fingering term (its weight when no key is active); 0 when disabled.
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


def key_press_reward(key_position: jax.Array, goal: jax.Array, pressed: jax.Array,
                     config: RewardConfig = DEFAULT_REWARD) -> jax.Array:
    """Key-press term.

    Args:
        key_position: key angles normalised by their travel, float [K] in [0, 1].
        goal: bool [K], keys that should be down.
        pressed: bool [K], keys that count as pressed.
        config: the reward's weights and bounds.

    Returns:
        float32 []: key_press_weight * ((1 - s) * mean over goal keys of tolerance(1 -
        position) (0 when no goal key) + s * (1 - any key pressed that should not be)), with
        s = `no_wrong_key_share` (0.5).
    """
    goal = goal.astype(bool)
    closeness = tolerance(
        goal.astype(jnp.float32) - key_position, config.key_press_bounds,
        config.key_press_margin)
    num_on = jnp.sum(goal)
    on_mean = jnp.sum(jnp.where(goal, closeness, 0.0)) / jnp.maximum(num_on, 1)
    on_term = jnp.where(num_on > 0, on_mean, 0.0)
    false_positive = jnp.any(pressed & ~goal)
    share = config.no_wrong_key_share
    term = ((1.0 - share) * on_term + share * (1.0 - false_positive)).astype(jnp.float32)
    return term * jnp.float32(config.key_press_weight)


def sustain_reward(sustain: jax.Array, goal_sustain: jax.Array,
                   config: RewardConfig = DEFAULT_REWARD) -> jax.Array:
    """Sustain term: sustain_weight * tolerance(goal - state, sustain_bounds (0, 0.05),
    sustain_margin 0.5); inputs bool [] -> float32 []."""
    error = goal_sustain.astype(jnp.float32) - sustain.astype(jnp.float32)
    term = tolerance(error, config.sustain_bounds, config.sustain_margin).astype(jnp.float32)
    return term * jnp.float32(config.sustain_weight)


def energy_reward(actuator_force: jax.Array, actuator_velocity: jax.Array,
                  config: RewardConfig = DEFAULT_REWARD) -> jax.Array:
    """Energy penalty: -energy_coef (5e-3) * sum |force| |velocity| over the hand actuators
    [U] -> float32 []."""
    work = jnp.sum(jnp.abs(actuator_force) * jnp.abs(actuator_velocity))
    return (-config.energy_coef * work).astype(jnp.float32)


def forearm_reward(collided: jax.Array, config: RewardConfig = DEFAULT_REWARD) -> jax.Array:
    """`forearm_reward` (0.5) when the forearms do not touch, else 0; bool [] -> float32 []."""
    return jnp.where(collided, 0.0, config.forearm_reward).astype(jnp.float32)


def fingering_solver(solver: str, config: RewardConfig = DEFAULT_REWARD):
    """The fingering term's OT solver: `(fingertips [F, 3], key_points [K, 3], active [K]) ->
    (reward float32 [] times fingering_weight, finger of each key int [K])` for `solver`
    ('exact' or 'sinkhorn'), or None for 'none'."""
    if solver == "none":
        return None
    from kernels import fingering  # the OT kernel; imported only when used

    ot_config = fingering.FingeringConfig(solver=solver, bounds=config.fingering_bounds,
                                          margin=config.fingering_margin)
    weight = jnp.float32(config.fingering_weight)

    def reward(fingertips: jax.Array, key_points: jax.Array,
               active: jax.Array) -> tuple[jax.Array, jax.Array]:
        value, assignment = fingering.fingering_reward(fingertips, key_points, active, ot_config)
        return value.astype(jnp.float32) * weight, assignment

    return reward
