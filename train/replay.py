"""The off-policy learner's replay buffer: a ring of compact transitions on the device.

Most of a piano observation is its goal block (11 look-ahead rows x 89 = 979 of 1144 floats),
and that block is a function of (piece, control step) and the env's piece bank. The buffer
stores the rest of the observation (165 floats on the full task) with the piece and step, and
rebuilds the goal block when it samples (`env.goal_observation`). One transition holds the
compact observation and next observation, the action, the reward and two flags:

    bytes per transition = 4 * (2 * (O - G) + A + 1) + 4 + 4 + 2

which is 1,490 bytes on the full task (O = 1144, G = 979, A = 39) instead of the 9,312 of two
full float32 observations: a 1M-transition buffer takes 1.49 GB per agent, so about 90 agents'
buffers fit in a 140 GB device beside their envs and networks. Envs without a goal block
(`goal_size` 0) store whole observations. Every function is pure and unbatched in agents.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Replay:
    """One agent's ring buffer, leaves [capacity, ...].

    Attributes:
        obs: float32 [C, O - G], observation without its goal block.
        next_obs: float32 [C, O - G], the same after the step.
        piece: int32 [C], bank index of the env's piece.
        t: int32 [C], control step of `obs` (the next observation's is t + 1).
        action: float32 [C, A], the action in the policy's space [-1, 1].
        reward: float32 [C].
        terminal: bool [C], the episode ended in a terminal state (no bootstrap).
        valid: bool [C], the next observation belongs to the same episode (False where the
            episode ended by its time limit or a divergence: the env had already reset, so the
            transition is left out of the critic's loss).
        position: int32 [], the next slot to write.
        size: int32 [], slots filled.
    """

    obs: jax.Array
    next_obs: jax.Array
    piece: jax.Array
    t: jax.Array
    action: jax.Array
    reward: jax.Array
    terminal: jax.Array
    valid: jax.Array
    position: jax.Array
    size: jax.Array

    @property
    def capacity(self) -> int:
        """Slots C."""
        return self.reward.shape[0]


@struct.dataclass
class Sample:
    """A sampled batch with whole observations, leaves [B, ...] (see `Replay`)."""

    obs: jax.Array
    next_obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminal: jax.Array
    valid: jax.Array


def bytes_per_transition(observation_size: int, goal_size: int, action_size: int) -> int:
    """Bytes one stored transition takes."""
    return 4 * (2 * (observation_size - goal_size) + action_size + 1) + 4 + 4 + 2


def empty(capacity: int, observation_size: int, goal_size: int, action_size: int) -> Replay:
    """An empty buffer of `capacity` transitions."""
    rest = observation_size - goal_size
    return Replay(
        obs=jnp.zeros((capacity, rest), jnp.float32),
        next_obs=jnp.zeros((capacity, rest), jnp.float32),
        piece=jnp.zeros((capacity,), jnp.int32), t=jnp.zeros((capacity,), jnp.int32),
        action=jnp.zeros((capacity, action_size), jnp.float32),
        reward=jnp.zeros((capacity,), jnp.float32),
        terminal=jnp.zeros((capacity,), bool), valid=jnp.zeros((capacity,), bool),
        position=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def insert(replay: Replay, goal_size: int, obs: jax.Array, next_obs: jax.Array,
           piece: jax.Array, t: jax.Array, action: jax.Array, reward: jax.Array,
           terminal: jax.Array, valid: jax.Array) -> Replay:
    """Writes N transitions (any leading shape, flattened) after the newest, overwriting the
    oldest once full.

    Args:
        replay: the buffer.
        goal_size: G, the goal block dropped from the front of each observation.
        obs, next_obs: float32 [..., O], whole observations.
        piece, t: int32 [...]. action: float32 [..., A]. reward: float32 [...].
        terminal, valid: bool [...].
    """
    flat = lambda x: x.reshape((-1,) + x.shape[obs.ndim - 1:])  # noqa: E731
    rows = dict(obs=flat(obs)[:, goal_size:], next_obs=flat(next_obs)[:, goal_size:],
                piece=flat(piece), t=flat(t), action=flat(action), reward=flat(reward),
                terminal=flat(terminal), valid=flat(valid))
    count = rows["reward"].shape[0]
    slots = (replay.position + jnp.arange(count)) % replay.capacity
    written = {name: getattr(replay, name).at[slots].set(value.astype(getattr(replay, name).dtype))
               for name, value in rows.items()}
    return replay.replace(**written, position=(replay.position + count) % replay.capacity,
                          size=jnp.minimum(replay.size + count, replay.capacity))


def sample(replay: Replay, env: Any, goal_size: int, key: jax.Array, batch_size: int) -> Sample:
    """`batch_size` transitions drawn uniformly from the filled slots, goal blocks rebuilt.

    Args:
        replay: the buffer (at least one transition).
        env: the env (its `goal_observation(piece, t)` when goal_size > 0).
        goal_size: G.
        key: PRNG key.
        batch_size: B (static).
    """
    index = jax.random.randint(key, (batch_size,), 0, jnp.maximum(replay.size, 1))
    piece, t = replay.piece[index], replay.t[index]

    def whole(rest: jax.Array, step: jax.Array) -> jax.Array:
        if not goal_size:
            return rest
        goals = jax.vmap(env.goal_observation)(piece, step)
        return jnp.concatenate([goals, rest], axis=-1)

    return Sample(obs=whole(replay.obs[index], t), next_obs=whole(replay.next_obs[index], t + 1),
                  action=replay.action[index], reward=replay.reward[index],
                  terminal=replay.terminal[index], valid=replay.valid[index])
