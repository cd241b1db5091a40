"""What every learner reports about episodes: rollout statistics and the deterministic
evaluation (`play_pieces`), shared by PPO (`train.ppo`) and SAC (`train.sac`)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from mjx_piano.rollout import expand, play
from train.envs import Env


@struct.dataclass
class RolloutStats:
    """What the rollout saw (scalars per agent).

    Attributes:
        episodes: float32 [], episodes finished during the rollout.
        last_episode: mean of `last_episode` over those episodes (the env's metrics type);
            NaN when none ended.
        reward: float32 [], mean step reward.
        reward_terms: mean of each reward term over all steps (the env's terms type).
    """

    episodes: jax.Array
    last_episode: Any
    reward: jax.Array
    reward_terms: Any


@struct.dataclass
class EvalMetrics:
    """Deterministic evaluation of one agent on its pieces.

    Attributes:
        last_episode: mean over the eval envs of their first finished episode's metrics.
        completed: float32 [], fraction of eval envs that finished an episode.
    """

    last_episode: Any
    completed: jax.Array


def rollout_stats(rollout: Any, last_episode: Any, reward_terms: Any) -> RolloutStats:
    """Means of the finished episodes' metrics and of the step rewards over a rollout [T, E].

    Args:
        rollout: has `done` bool [T, E] and `reward` float32 [T, E].
        last_episode: the env's episode metrics after each step, leaves [T, E].
        reward_terms: the env's reward terms of each step, leaves [T, E].
    """
    weight = rollout.done.astype(jnp.float32)
    episodes = jnp.sum(weight)

    def done_mean(x: jax.Array) -> jax.Array:
        x = x.astype(jnp.float32)
        mean = jnp.sum(x * expand(weight, x)) / jnp.maximum(episodes, 1.0)
        # NaN, not 0, when no episode ended: "unknown", so logs and plots skip it.
        return jnp.where(episodes > 0, mean, jnp.nan)

    return RolloutStats(
        episodes=episodes, last_episode=jax.tree_util.tree_map(done_mean, last_episode),
        reward=jnp.mean(rollout.reward),
        reward_terms=jax.tree_util.tree_map(lambda x: jnp.mean(x.astype(jnp.float32)),
                                            reward_terms))


def play_pieces(env: Env, act: Callable[[jax.Array], jax.Array], key: jax.Array,
                pieces: jax.Array, steps: int) -> EvalMetrics:
    """Plays each piece once with a deterministic policy and keeps each env's first episode
    (`mjx_piano.rollout.play`).

    Args:
        env: the env.
        act: observations float32 [V, O] -> physical actions float32 [V, A].
        key: PRNG key of the eval envs.
        pieces: int32 [V], one eval env per entry.
        steps: control steps to run (>= the longest episode).
    """
    env_state = jax.vmap(env.reset)(jax.random.split(key, pieces.shape[0]), pieces)
    def policy(carry: None, state: Any, _: None) -> tuple[jax.Array, None, None]:
        return act(state.obs), None, carry

    played = play(jax.vmap(env.step), policy, env_state, steps)
    mean = jax.tree_util.tree_map(lambda x: jnp.mean(x.astype(jnp.float32), axis=0),
                                  played.first_episode)
    return EvalMetrics(last_episode=mean,
                       completed=jnp.mean(played.finished.astype(jnp.float32)))

