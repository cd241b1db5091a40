"""The env's training levers (random start, wrong-key termination, episode windows) on the
reduced piano scene, and evaluations that play whole pieces whatever the levers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from train.config import EnvSpec, PPOConfig
from train.envs import make_env
from train.ppo import PPO

PIECE = "etude/c-major-scale-rh"  # 40 steps, one key at a time
ENVS = 8
WINDOW = 5  # env.episode_steps


@pytest.fixture(scope="module")
def lever_env():
    config = EnvSpec(name="piano-keys", pieces=(PIECE,), random_start=True,
                       wrong_key_termination=True, episode_steps=WINDOW)
    return make_env(config).env


def test_windows_start_anywhere_but_reset_starts_at_the_first_step(lever_env):
    env = lever_env
    states = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), ENVS),
                                 jnp.zeros(ENVS, jnp.int32))
    assert np.all(np.asarray(states.t) == 0)
    step = jax.jit(jax.vmap(env.step))
    silent = jnp.zeros((ENVS, env.action_size))  # presses nothing: no wrong key ends them
    for _ in range(WINDOW - 1):
        states = step(states, silent)
        assert not np.any(np.asarray(states.done))
    states = step(states, silent)  # the window's last step: truncated, as a time limit
    assert np.all(np.asarray(states.done)) and np.all(np.asarray(states.truncated))
    assert np.all(np.asarray(states.last_episode.length) == WINDOW)
    starts = np.asarray(states.t)
    assert len(set(starts.tolist())) >= 4 and starts.max() < int(env.bank.length[0])
    # The observation is that of the new start step: its goal block is the goal there.
    goals = jax.vmap(env.goal_observation)(states.piece, states.t)
    np.testing.assert_array_equal(np.asarray(states.obs)[:, :env.goal_size], np.asarray(goals))


def test_a_wrong_key_ends_the_episode_as_terminal(lever_env):
    env = lever_env
    state = env.reset(jax.random.PRNGKey(1), jnp.int32(0))
    step = jax.jit(env.step)
    every_key = jnp.asarray(env.action_high)  # presses every key of the scene at once
    for _ in range(5):
        state = step(state, every_key)
        if bool(state.done):
            break
    assert bool(state.done) and not bool(state.truncated)
    # The episode scored its few steps, with wrong keys among them (precision below 1).
    assert int(state.last_episode.length) <= 5 and float(state.last_episode.precision) < 1.0


def test_evaluation_uses_the_env_without_levers(lever_env):
    twin = lever_env.evaluation_env()
    assert not twin.config.random_start and not twin.config.wrong_key_termination
    assert twin.config.episode_steps == 0
    assert twin.bank is lever_env.bank and twin.model is lever_env.model
    assert lever_env.config.wrong_key_termination  # the training env keeps its levers
    assert PPO(lever_env, PPOConfig(num_envs=4, unroll_length=2, num_minibatches=1)).eval_env \
        .config == twin.config
    plain = make_env(EnvSpec(name="piano-keys", pieces=(PIECE,))).env
    assert plain.evaluation_env() is plain


def test_levers_are_refused_on_the_toy_env():
    with pytest.raises(ValueError, match="levers of the piano envs"):
        make_env(EnvSpec(name="toy", pieces=("toy-00",), random_start=True))
    with pytest.raises(ValueError, match="episode_steps must be >= 0"):
        make_env(EnvSpec(name="piano-keys", pieces=(PIECE,), episode_steps=-1))
