"""Window sources for training: in-memory trajectories, a scripted expert, a 2-D mixture.

Every source has `observation_size`, `action_size`, `num_pieces` and a pure, jittable
`sample(key, batch_size) -> WindowBatch`; the trainer draws step s's batch with
`fold_in(data_key, s)`, so a resumed run sees exactly the batches the uninterrupted run would.
Windows follow `train.windows`: observations t-1..t (the first repeated at a trajectory's
start), actions t..t+3, masked past the trajectory's end.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np

from train.windows import ACTION_HORIZON, OBS_HISTORY, WindowBatch


class WindowSource(Protocol):
    """What the trainer needs from a dataset."""

    observation_size: int
    action_size: int
    num_pieces: int

    def sample(self, key: jax.Array, batch_size: int) -> WindowBatch: ...


@dataclasses.dataclass(frozen=True, eq=False)
class TrajectoryWindows:
    """Windows cut uniformly from padded trajectories held on the device.

    Attributes:
        observations: float32 [N, L, O], observation before each action.
        actions: float32 [N, L, A], in [-1, 1].
        lengths: int32 [N], valid steps of each trajectory (>= 1).
        piece: int32 [N], piece index of each trajectory.
    """

    observations: jax.Array
    actions: jax.Array
    lengths: jax.Array
    piece: jax.Array

    @property
    def observation_size(self) -> int:
        return int(self.observations.shape[-1])

    @property
    def action_size(self) -> int:
        return int(self.actions.shape[-1])

    @property
    def num_pieces(self) -> int:
        return int(jnp.max(self.piece)) + 1

    def sample(self, key: jax.Array, batch_size: int) -> WindowBatch:
        """`batch_size` windows, each step of each trajectory equally likely."""
        lengths = self.lengths.astype(jnp.float32)
        traj_key, step_key = jax.random.split(key)
        n = jax.random.choice(traj_key, lengths.shape[0], (batch_size,), p=lengths / lengths.sum())
        t = jnp.floor(jax.random.uniform(step_key, (batch_size,)) * lengths[n]).astype(jnp.int32)
        return self.windows(n, t)

    def windows(self, n: jax.Array, t: jax.Array) -> WindowBatch:
        """The windows at trajectories `n` [B] and steps `t` [B] (int32)."""
        last = self.observations.shape[1] - 1
        obs_t = jnp.clip(t[:, None] + jnp.arange(1 - OBS_HISTORY, 1)[None], 0, last)
        act_t = t[:, None] + jnp.arange(ACTION_HORIZON)[None]
        mask = act_t < self.lengths[n][:, None]
        actions = self.actions[n[:, None], jnp.clip(act_t, 0, last)]
        return WindowBatch(observations=self.observations[n[:, None], obs_t],
                           actions=jnp.where(mask[..., None], actions, 0.0),
                           action_mask=mask, piece=self.piece[n])


def scripted_expert_trajectories(env, piece_ids: tuple[int, ...],
                                 steps: int) -> TrajectoryWindows:
    """One episode per piece of a scripted expert, for envs whose actions drive the keys.

    The expert reads the current goal (the first goal row of the observation: K keys then
    sustain) and commands each goal key to its full travel (`action_high`), every other key to
    rest (`action_low`), and the pedal as the goal says. That plays the toy env
    (`mjx_piano.toy_env`) and the self-playing-keys piano env ('piano-keys') with F1 1.

    Args:
        env: a `ToyPianoEnv` or a `PianoEnv` on a scene with actuated keys and no hands.
        piece_ids: bank indices to play.
        steps: control steps per episode.

    Returns:
        The trajectories; actions in [-1, 1] (so exactly -1 or +1).

    Raises:
        ValueError: the env's actions are not one per key plus sustain.
    """
    layout = getattr(env, "layout", None)
    keys = layout.num_keys if layout is not None else env.config.num_keys
    if env.action_size != keys + 1:
        raise ValueError(f"the scripted expert needs one action per key plus sustain "
                         f"({keys + 1}), this env has {env.action_size} actions")
    low, high = jnp.asarray(env.action_low), jnp.asarray(env.action_high)

    @jax.jit
    def play(pieces: jax.Array) -> tuple[jax.Array, jax.Array]:
        rngs = jax.random.split(jax.random.PRNGKey(0), pieces.shape[0])
        state = jax.vmap(env.reset)(rngs, pieces)

        def step(state, _):
            goal = state.obs[..., : keys + 1]  # 0/1: goal keys, then goal sustain, of step t
            next_state = jax.vmap(env.step)(state, low + goal * (high - low))
            return next_state, (state.obs, 2.0 * goal - 1.0)

        _, (obs, actions) = jax.lax.scan(step, state, None, length=steps)
        return obs.swapaxes(0, 1), actions.swapaxes(0, 1)

    pieces = jnp.asarray(piece_ids, jnp.int32)
    obs, actions = play(pieces)
    return TrajectoryWindows(observations=obs, actions=actions,
                             lengths=jnp.full(pieces.shape, steps, jnp.int32),
                             piece=jnp.arange(pieces.shape[0], dtype=jnp.int32))


# Mixture modes: for condition c, the chunk sits at +MIXTURE_CENTRES[c] or -MIXTURE_CENTRES[c].
MIXTURE_CENTRES = np.array([[0.5, 0.5], [0.5, -0.5]], np.float32)
MIXTURE_STD = 0.05


@dataclasses.dataclass(frozen=True)
class MixtureWindows:
    """A known conditional distribution for testing the flow (2-D actions, 2 conditions).

    Observation [c, 1 - c, 0] (both history steps); every step of the chunk is
    sign * MIXTURE_CENTRES[c] + N(0, MIXTURE_STD^2), one random sign per chunk, so the data
    are bimodal (a regression to the mean would sit at 0) and coherent along the chunk.
    Chunks are ragged: 1..4 valid steps, padded steps hold large junk values that a correct
    masked loss ignores.
    """

    observation_size: int = 3
    action_size: int = 2
    num_pieces: int = 2

    def sample(self, key: jax.Array, batch_size: int) -> WindowBatch:
        """`batch_size` windows of the mixture."""
        c_key, s_key, n_key, l_key = jax.random.split(key, 4)
        c = jax.random.bernoulli(c_key, 0.5, (batch_size,)).astype(jnp.int32)
        sign = jnp.where(jax.random.bernoulli(s_key, 0.5, (batch_size,)), 1.0, -1.0)
        centre = sign[:, None] * jnp.asarray(MIXTURE_CENTRES)[c]  # [B, 2]
        noise = MIXTURE_STD * jax.random.normal(n_key, (batch_size, ACTION_HORIZON, 2))
        length = jax.random.randint(l_key, (batch_size,), 1, ACTION_HORIZON + 1)
        mask = jnp.arange(ACTION_HORIZON)[None] < length[:, None]
        actions = jnp.where(mask[..., None], centre[:, None] + noise, 7.0)
        return WindowBatch(observations=mixture_observations(c), actions=actions,
                           action_mask=mask, piece=c)


def mixture_observations(condition: jax.Array) -> jax.Array:
    """float32 [B, 2, 3] observations of `MixtureWindows` for conditions int [B]."""
    c = condition.astype(jnp.float32)
    obs = jnp.stack([c, 1.0 - c, jnp.zeros_like(c)], axis=-1)
    return jnp.broadcast_to(obs[:, None], (c.shape[0], OBS_HISTORY, 3))
