"""The toy env follows the env protocol and scores like the piano metric (oracles by hand)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_piano.toy_env import ToyConfig, ToyPianoEnv, make_goal_bank

CONFIG = ToyConfig()


@pytest.fixture(scope="module")
def env() -> ToyPianoEnv:
    return ToyPianoEnv(CONFIG)


def _play(env: ToyPianoEnv, pieces: list[int], policy) -> tuple:
    """Plays one episode (+1 step) of each piece with `policy(goal, goal_sustain) -> action`."""
    piece_ids = jnp.asarray(pieces, jnp.int32)

    def run(rng):
        state = jax.vmap(env.reset)(jax.random.split(rng, len(pieces)), piece_ids)

        def step(state, _):
            goal = env.goal_keys[state.piece, state.t]
            goal_sustain = env.goal_sustain[state.piece, state.t]
            state = jax.vmap(env.step)(state, policy(goal, goal_sustain))
            return state, (state.done, state.truncated)

        return jax.lax.scan(step, state, None, length=CONFIG.episode_length)

    return jax.jit(run)(jax.random.PRNGKey(0))


def test_protocol_attributes(env):
    assert env.action_size == CONFIG.num_keys + 1
    assert env.action_low.shape == env.action_high.shape == (env.action_size,)
    assert env.action_low.dtype == np.float32
    state = env.reset(jax.random.PRNGKey(0), jnp.int32(3))
    assert state.obs.shape == (env.observation_size,) and state.obs.dtype == jnp.float32
    assert state.reward.shape == () and state.done.dtype == jnp.bool_
    assert env.num_pieces == CONFIG.catalogue_size == len(env.piece_names)


def test_perfect_player_scores_one_and_env_auto_resets(env):
    def perfect(goal, goal_sustain):
        return jnp.concatenate([goal, goal_sustain[:, None]], -1).astype(jnp.float32)

    state, (done, truncated) = _play(env, [0, 5], perfect)
    # Only the last step of the episode is `done` (and `truncated`: a time limit).
    assert not done[:-1].any() and done[-1].all()
    np.testing.assert_array_equal(done, truncated)
    episode = state.last_episode
    for name in ("f1", "precision", "recall", "sustain_f1"):
        np.testing.assert_allclose(getattr(episode, name), 1.0, err_msg=name)
    np.testing.assert_array_equal(episode.length, CONFIG.episode_length)
    # Already reset: back at the first step of the same piece.
    np.testing.assert_array_equal(state.t, 0)
    np.testing.assert_array_equal(state.piece, [0, 5])
    fresh = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(1), 2), jnp.array([0, 5]))
    np.testing.assert_allclose(state.obs, fresh.obs)


def test_idle_player_matches_hand_computed_scores(env):
    def idle(goal, goal_sustain):
        return jnp.zeros(goal.shape[:-1] + (env.action_size,), jnp.float32)

    state, _ = _play(env, [2], idle)
    keys, sustain = make_goal_bank(CONFIG)
    goal = keys[2, : CONFIG.episode_length]
    # Nothing pressed: precision is 1 (zero division), recall and F1 are 1 exactly on the
    # steps whose goal is empty, else 0.
    empty = ~goal.any(-1)
    np.testing.assert_allclose(state.last_episode.precision, [1.0])
    np.testing.assert_allclose(state.last_episode.recall, [empty.mean()], rtol=1e-6)
    np.testing.assert_allclose(state.last_episode.f1, [empty.mean()], rtol=1e-6)
    np.testing.assert_allclose(state.last_episode.sustain_f1,
                               [(~sustain[2, : CONFIG.episode_length]).mean()], rtol=1e-6)
