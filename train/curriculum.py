"""The curriculum over clip length, a training lever of the piano envs.

Training episodes start at a piece's first control step (or at a random one with
`env.random_start`) and end after a limit that grows with the agent's training: at first
`env.curriculum_first_steps` control steps, then linearly more, to whole pieces once the agent
has taken `env.curriculum_env_steps` env steps (all its envs together; in the learning ladder
one clip per agent, so env steps per clip). An agent first learns a piece's opening, then ever
more of it.

The learner applies it where it binds the agent's bank to collect: `training_bank` gives each
piece the length `min(its length, limit)`, so the env ends the episode there, truncated (a time
limit, as at a piece's end), and `random_start` draws starts below it. Evaluations bind the bank
as it is and play every piece whole.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def curriculum_of(env: Any) -> tuple[int, int]:
    """The env's curriculum, (first steps, env steps to whole pieces); (0, 0) if it has none
    (the toy env, or the lever off)."""
    config = getattr(env, "config", None)
    return (int(getattr(config, "curriculum_first_steps", 0)),
            int(getattr(config, "curriculum_env_steps", 0)))


def episode_limit(first_steps: int, env_steps_to_whole: int, longest: jax.Array,
                  env_steps: jax.Array) -> jax.Array:
    """Training episodes' length limit after `env_steps` env steps of the agent.

    Args:
        first_steps: the limit at the start (control steps, >= 1).
        env_steps_to_whole: env steps after which the limit is `longest` (>= 1).
        longest: int32 [], the longest piece's control steps.
        env_steps: int [], env steps the agent has taken.

    Returns:
        int32 []: `first_steps` at 0 env steps, rising linearly (rounded up) to `longest` at
        `env_steps_to_whole` and staying there.
    """
    done = jnp.minimum(env_steps.astype(jnp.float32) / env_steps_to_whole, 1.0)
    grown = first_steps + (longest.astype(jnp.float32) - first_steps) * done
    return jnp.maximum(jnp.ceil(grown), first_steps).astype(jnp.int32)


def training_bank(env: Any, bank: Any, env_steps: jax.Array) -> Any:
    """`bank` as the agent's training episodes play it after `env_steps` env steps: every
    piece's `length` [P] cut to the curriculum's limit; `bank` itself without the lever.

    Args:
        env: the training env (its config says the curriculum, `curriculum_of`).
        bank: the agent's `PieceBank` (leaves [P, ...]).
        env_steps: int [], env steps the agent has taken before this collection.
    """
    first_steps, env_steps_to_whole = curriculum_of(env)
    if not first_steps:
        return bank
    limit = episode_limit(first_steps, env_steps_to_whole, jnp.max(bank.length), env_steps)
    return bank.replace(length=jnp.minimum(bank.length, limit))
