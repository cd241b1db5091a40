"""Inference in the batched env: chunked Euler sampling inside one jitted scan; evaluation."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.generalist.conftest import TINY, smoothed
from train.config import EnvSpec
from train.envs import make_env, piece_catalogue, split_pieces
from train.generalist.model import init_params, make_model, token_segments
from train.generalist.rollout import (compiled_rollout, evaluate_pieces, format_table,
                                      plot_scores, rollout)


def evaluate(policy, params, names, key=jax.random.PRNGKey(0), execute=2, envs_per_piece=1):
    env = policy.loaded.env
    ids = [env.piece_names.index(n) for n in names]
    return evaluate_pieces(policy.model, params, env, ids, names, policy.loaded.episode_length,
                           key, execute=execute, envs_per_piece=envs_per_piece)


def test_toy_generalist_learns_to_play(toy_policy, tmp_path):
    losses = smoothed(toy_policy.losses)
    assert losses[-1] < 0.3 * losses[0], losses
    train_names, ood_names = split_pieces("toy", "train"), split_pieces("toy", "test")
    trained = evaluate(toy_policy, toy_policy.state.params, train_names)
    untrained_params = init_params(toy_policy.model, jax.random.PRNGKey(1),
                                   toy_policy.loaded.env.observation_size)
    untrained = evaluate(toy_policy, untrained_params, train_names)
    ood = evaluate(toy_policy, toy_policy.state.params, ood_names)
    assert np.all(trained.completed == 1.0)
    assert trained.means()["eval/f1"] > 0.75, format_table({"train": trained})
    assert trained.means()["eval/f1"] > untrained.means()["eval/f1"] + 0.3
    # The toy task is local (press what the goal shows), so it transfers to unseen pieces.
    assert ood.means()["eval/f1"] > 0.65, format_table({"ood": ood})
    results = {"train": trained, "ood": ood}
    table = format_table(results)
    assert "MEAN" in table and "toy-12" in table
    path = plot_scores(results, str(tmp_path / "eval.png"))
    assert os.path.getsize(path) > 0


def test_rollout_is_deterministic_and_compiled_once(toy_policy):
    names = split_pieces("toy", "train")[:3]
    fn = compiled_rollout(toy_policy.model, toy_policy.loaded.env,
                          toy_policy.loaded.episode_length + 1, 2, 10)
    compiled_before = fn._cache_size()
    a = evaluate(toy_policy, toy_policy.state.params, names, envs_per_piece=2)
    b = evaluate(toy_policy, toy_policy.state.params, names, envs_per_piece=2)
    c = evaluate(toy_policy, toy_policy.state.params, names, jax.random.PRNGKey(9),
                 envs_per_piece=2)
    for metric in a.scores:
        np.testing.assert_array_equal(a.scores[metric], b.scores[metric])
    assert any(not np.array_equal(a.scores[m], c.scores[m]) for m in a.scores)
    # One new program for the new batch size; other keys and repeated calls reuse it.
    assert fn._cache_size() == compiled_before + 1


@pytest.mark.parametrize("execute", [1, 4])
def test_execute_lengths_and_two_episodes(toy_policy, execute):
    # Longer than one episode: envs auto-reset, restart their observation history, and the
    # result keeps each env's first episode.
    env = toy_policy.loaded.env
    result = jax.jit(rollout, static_argnums=(0, 2, 5, 6, 7))(
        toy_policy.model, toy_policy.state.params, env, jnp.array([0, 1], jnp.int32),
        jax.random.PRNGKey(0), 2 * env.episode_length + 3, execute, 4)
    assert bool(result.completed.all())
    assert result.last_episode.f1.shape == (2,)
    assert np.all((0 <= np.asarray(result.last_episode.f1))
                  & (np.asarray(result.last_episode.f1) <= 1))


def test_execute_must_fit_the_horizon(toy_policy):
    with pytest.raises(ValueError, match="execute"):
        rollout(toy_policy.model, toy_policy.state.params, toy_policy.loaded.env,
                jnp.array([0]), jax.random.PRNGKey(0), 8, 5)


def test_tiny_model_plays_the_piano_keys_env():
    # The real env (reduced scene with self-playing keys): tokenised goal rows, a jitted
    # rollout over a whole clip, F1 reported.
    loaded = make_env(EnvSpec(name="piano-keys", pieces=(piece_catalogue("piano-keys")[0],)))
    env = loaded.env
    segments = token_segments(env)
    assert segments[0].count == env.layout.lookahead + 1
    assert segments[0].width == env.layout.num_keys + 1
    model = make_model(TINY, segments, env.action_size, 4, 2)
    params = init_params(model, jax.random.PRNGKey(0), env.observation_size)
    scores = evaluate_pieces(model, params, env, loaded.piece_ids, loaded.piece_names,
                             loaded.episode_length, jax.random.PRNGKey(0), execute=2,
                             flow_steps=2)
    assert scores.completed[0] == 1.0
    assert 0.0 <= scores.scores["f1"][0] <= 1.0
