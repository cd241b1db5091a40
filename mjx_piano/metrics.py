"""Key-press precision, recall and F1, computed the way RoboPianist does, in JAX.

Per control step, the pressed keys and the goal keys are two binary vectors; precision, recall
and F1 are the binary scores of that step with `zero_division = 1` (a step with nothing to press
and nothing pressed scores 1). The episode score is the mean over its steps. Sustain is scored
the same way on its one-element vector, apart from the keys.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from mjx_piano import rewards


@struct.dataclass
class StepScores:
    """Binary scores of one control step (each a scalar in [0, 1]).

    Attributes:
        precision: fraction of the pressed keys that should be pressed.
        recall: fraction of the goal keys that are pressed.
        f1: harmonic mean, 2 tp / (2 tp + fp + fn).
        sustain_f1: the same F1 for the sustain pedal alone.
    """

    precision: jax.Array
    recall: jax.Array
    f1: jax.Array
    sustain_f1: jax.Array


def binary_scores(pressed: jax.Array, goal: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Precision, recall and F1 of one step, zero_division = 1.

    Args:
        pressed: bool [..., K], the keys that are down.
        goal: bool [..., K], the keys that should be down.

    Returns:
        (precision, recall, f1), each float32 [...].
    """
    pressed = pressed.astype(bool)
    goal = goal.astype(bool)
    tp = jnp.sum(pressed & goal, axis=-1).astype(jnp.float32)
    fp = jnp.sum(pressed & ~goal, axis=-1).astype(jnp.float32)
    fn = jnp.sum(~pressed & goal, axis=-1).astype(jnp.float32)

    def ratio(numerator: jax.Array, denominator: jax.Array) -> jax.Array:
        return jnp.where(denominator > 0, numerator / jnp.maximum(denominator, 1.0), 1.0)

    return ratio(tp, tp + fp), ratio(tp, tp + fn), ratio(2.0 * tp, 2.0 * tp + fp + fn)


def step_scores(
    pressed: jax.Array, goal: jax.Array, sustain: jax.Array, goal_sustain: jax.Array
) -> StepScores:
    """Scores of one control step.

    Args:
        pressed: bool [K]; goal: bool [K]; sustain: bool []; goal_sustain: bool [].

    Returns:
        The step's `StepScores`.
    """
    precision, recall, f1 = binary_scores(pressed, goal)
    _, _, sustain_f1 = binary_scores(sustain[None], goal_sustain[None])
    return StepScores(precision=precision, recall=recall, f1=f1, sustain_f1=sustain_f1)


@struct.dataclass
class EpisodeMetrics:
    """Per-episode metrics: running sums in `EnvState.episode`, means in `last_episode`.

    Attributes:
        f1, precision, recall, sustain_f1: key-press scores (sum or mean over steps).
        reward: total reward (sum or mean over steps).
        reward_terms: each reward term (sum or mean over steps).
        length: control steps of the episode, int32.
        diverged: 1 if the episode ended because the physics diverged, int32.
    """

    f1: jax.Array
    precision: jax.Array
    recall: jax.Array
    sustain_f1: jax.Array
    reward: jax.Array
    reward_terms: rewards.RewardTerms
    length: jax.Array
    diverged: jax.Array

    @classmethod
    def zeros(cls) -> "EpisodeMetrics":
        """An empty episode."""
        zero = jnp.zeros((), jnp.float32)
        izero = jnp.zeros((), jnp.int32)
        return cls(f1=zero, precision=zero, recall=zero, sustain_f1=zero, reward=zero,
                   reward_terms=rewards.RewardTerms.zeros(), length=izero, diverged=izero)

    def add(self, scores: StepScores, terms: rewards.RewardTerms) -> "EpisodeMetrics":
        """Adds one step's scores and reward terms to the running sums."""
        add = jax.tree_util.tree_map(jnp.add, self.reward_terms, terms)
        return self.replace(f1=self.f1 + scores.f1, precision=self.precision + scores.precision,
                            recall=self.recall + scores.recall,
                            sustain_f1=self.sustain_f1 + scores.sustain_f1,
                            reward=self.reward + terms.total(), reward_terms=add,
                            length=self.length + 1)

    def mean(self, diverged: jax.Array) -> "EpisodeMetrics":
        """Sums -> means over the episode's steps; records whether it diverged."""
        steps = jnp.maximum(self.length, 1).astype(jnp.float32)
        means = jax.tree_util.tree_map(
            lambda x: x / steps, (self.f1, self.precision, self.recall, self.sustain_f1,
                                  self.reward, self.reward_terms))
        f1, precision, recall, sustain_f1, reward, terms = means
        return self.replace(f1=f1, precision=precision, recall=recall, sustain_f1=sustain_f1,
                            reward=reward, reward_terms=terms,
                            diverged=diverged.astype(jnp.int32))
