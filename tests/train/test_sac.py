"""The off-policy learner (SAC with DroQ critics): it learns the reduced piano scene (with a
negative control), resumes exactly, keeps agents independent, and its replay buffer stores
compact transitions that rebuild the exact observations."""

from __future__ import annotations

import csv

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_piano.cli import main
from mjx_piano.observation import ObservationLayout
from train import replay
from train.config import EnvSpec, SpecialistConfig, apply_overrides
from train.envs import make_env
from train.loop import build_trainer, train_specialists
from train.plan import plan_run
from train.sac_networks import sample_action

PIECE = "etude/c-major-scale-rh"
# Learning budget on the reduced scene (self-playing keys of the etude): 240 iterations x 32
# envs x 4 steps = 30,720 env steps with 8 gradient steps of 256 per iteration (UTD 1/16).
# Measured: eval F1 0.00, 0.00, 0.08, 0.35, 0.75, 0.85, 1.00 every 5,120 env steps (about two
# minutes on 2 CPU cores); PPO's learning test takes 384k env steps to pass 0.5.
SAC_LEARN = {"sac.num_envs": 32, "sac.unroll_length": 4, "sac.batch_size": 256,
             "sac.updates_per_iteration": 8, "sac.warmup_steps": 1_000,
             "sac.buffer_size": 50_000, "run.iterations": 240, "run.eval_every": 80,
             "run.checkpoint_every": 0}
# The toy runs: small and quick to compile.
SAC_TOY = {"sac.num_envs": 8, "sac.unroll_length": 4, "sac.batch_size": 32,
           "sac.updates_per_iteration": 2, "sac.warmup_steps": 64, "sac.buffer_size": 256,
           "sac.policy_hidden": (32, 32), "sac.critic_hidden": (32, 32)}


def _config(out: str, env: str, pieces: str, fields: dict, **extra) -> SpecialistConfig:
    base = {"env.name": env, "env.pieces": pieces, "run.algo": "sac", "run.out": out,
            "run.progress": False}
    extra = {k.replace("__", "."): v for k, v in extra.items()}
    return apply_overrides(SpecialistConfig(), {**base, **fields, **extra})


def _eval_f1(folder) -> list[float]:
    with open(folder / "eval.csv", newline="") as f:
        return [float(row["eval/f1"]) for row in csv.DictReader(f)]


@pytest.mark.slow
def test_sac_learns_the_etude_on_the_reduced_scene_and_not_without_learning(tmp_path):
    config = _config(str(tmp_path / "on"), "piano-keys", PIECE, SAC_LEARN)
    learned = train_specialists(config)
    f1 = _eval_f1(tmp_path / "on")
    assert f1[0] < 0.1, f1
    assert learned.final_eval["eval/f1"][0] >= 0.5, f1
    # Negative control, on the same compiled trainer and budget: every iteration collects,
    # stores and normalises as before, but the networks are put back to their initial values,
    # as if the gradient steps did nothing. The threshold above must catch that.
    plan = plan_run(apply_overrides(config, {"run.out": str(tmp_path / "off")}))
    trainer = build_trainer(plan)
    start = trainer.init(plan.seeds, plan.piece_table, plan.agent_bank)
    params, opt_state = jax.device_get((start.params, start.opt_state))
    sharding, state = trainer.state_sharding, start
    for _ in range(SAC_LEARN["run.iterations"]):
        state, _ = trainer.iteration(state)
        state = state.replace(params=jax.device_put(params, sharding.params),
                              opt_state=jax.device_put(opt_state, sharding.opt_state))
    frozen = float(np.asarray(trainer.evaluate(state).last_episode.f1)[0])
    assert frozen < 0.5, frozen


def test_resume_gives_the_parameters_of_an_uninterrupted_run(tmp_path):
    def config(out, iterations):
        return _config(str(tmp_path / out), "toy", "toy-00", SAC_TOY, run__iterations=iterations,
                       run__eval_every=0, run__checkpoint_every=3)

    straight = train_specialists(config("straight", 6)).state
    train_specialists(config("halves", 3))
    resumed = train_specialists(config("halves", 6), resume=True).state
    assert int(np.asarray(resumed.replay.size)[0]) == 6 * 8 * 4  # 192 of 256 slots
    jax.tree_util.tree_map(np.testing.assert_array_equal,
                           jax.device_get((straight.params, straight.opt_state,
                                           straight.normalizer, straight.replay, straight.rng)),
                           jax.device_get((resumed.params, resumed.opt_state,
                                           resumed.normalizer, resumed.replay, resumed.rng)))


def test_two_agents_in_one_run_equal_two_separate_runs(tmp_path):
    def run(pieces: str, seed: int, **overrides):
        plan = plan_run(_config(str(tmp_path), "toy", pieces, SAC_TOY, run__seed=seed,
                                **overrides))
        trainer = build_trainer(plan)
        state = trainer.init(plan.seeds, plan.piece_table, plan.agent_bank)
        for _ in range(5):
            state, _ = trainer.iteration(state)
        return jax.device_get((state.params, state.normalizer, state.replay.obs, state.rng))

    def same(paired, alone):
        jax.tree_util.tree_map(
            lambda a, b: np.testing.assert_allclose(a, b[0], rtol=1e-5, atol=1e-5), paired, alone)

    both = run("toy-00,toy-01", seed=0)
    for agent, alone in ((0, run("toy-00", seed=0)), (1, run("toy-01", seed=1))):
        same(jax.tree_util.tree_map(lambda x: x[agent], both), alone)
    nudged = run("toy-00", seed=0, sac__learning_rate=3e-4 * 1.01)  # negative control
    with pytest.raises(AssertionError):
        same(jax.tree_util.tree_map(lambda x: x[0], both), nudged)


def test_replay_rebuilds_the_exact_observations_and_wraps_around():
    env = make_env(EnvSpec(name="toy", pieces=("toy-00", "toy-01"))).env
    states = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 2), jnp.array([0, 1]))
    observations = []
    for i in range(5):  # 5 steps of 2 envs into a buffer of 6: the first 4 are overwritten
        after = jax.vmap(env.step)(states, jnp.full((2, env.action_size), 0.1 * i))
        observations.append((states.obs, after.obs, states.piece, states.t))
        states = after
    buffer = replay.empty(6, env.observation_size, env.goal_size, env.action_size)
    for obs, next_obs, piece, t in observations:
        buffer = replay.insert(buffer, env.goal_size, obs, next_obs, piece, t,
                               jnp.zeros((2, env.action_size)), jnp.ones(2), jnp.zeros(2, bool),
                               jnp.ones(2, bool))
    assert int(buffer.size) == 6 and int(buffer.position) == 4
    assert buffer.obs.shape == (6, env.observation_size - env.goal_size)
    batch = replay.sample(buffer, env, env.goal_size, jax.random.PRNGKey(1), 64)
    kept = np.concatenate([np.asarray(o[0]) for o in observations[2:]])  # the newest 6
    kept_next = np.concatenate([np.asarray(o[1]) for o in observations[2:]])
    for obs, next_obs in zip(np.asarray(batch.obs), np.asarray(batch.next_obs)):
        row = np.nonzero((kept == obs).all(axis=1))[0]
        assert row.size >= 1, "a sampled observation that was never stored (or was overwritten)"
        np.testing.assert_array_equal(next_obs, kept_next[row[0]])
    assert {tuple(o) for o in np.asarray(batch.obs)} == {tuple(o) for o in kept}


def test_bytes_per_transition_of_the_full_task():
    layout = ObservationLayout(num_keys=88, num_fingertips=10, num_hand_joints=46, lookahead=10)
    goal = layout.sizes()["goal"]
    assert (layout.size, goal) == (1144, 979)
    assert replay.bytes_per_transition(layout.size, goal, 39) == 1490
    buffer = jax.eval_shape(lambda: replay.empty(1000, layout.size, goal, 39))
    stored = sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree_util.tree_leaves(buffer))
    assert stored == 1000 * 1490 + 8  # and the two int32 counters
    assert replay.bytes_per_transition(layout.size, 0, 39) > 6 * 1490  # whole observations


def test_tanh_gaussian_log_probability_matches_the_change_of_variables():
    mean = jnp.array([[0.3, -1.0, 2.0]])
    log_std = jnp.array([[-0.5, 0.1, -2.0]])
    action, log_prob = sample_action(mean, log_std, jax.random.PRNGKey(3))
    raw = np.arctanh(np.asarray(action, np.float64))
    std = np.exp(np.asarray(log_std, np.float64))
    gaussian = -0.5 * ((raw - np.asarray(mean)) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    expected = np.sum(gaussian - np.log(1 - np.tanh(raw) ** 2), axis=-1)
    np.testing.assert_allclose(log_prob, expected, rtol=1e-4, atol=1e-4)


def test_cli_maps_learner_flags_to_sac_and_refuses_ppo_only_flags(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "specialists", "--env", "toy", "--algo", "sac", "--minibatches", "4",
                 "--out", out]) == 2
    assert "PPO's" in capsys.readouterr().err
    assert main(["train", "specialists", "--env", "toy", "--algo", "sac", "--set",
                 "sac.buffer_size=8", "--envs", "4", "--unroll", "4", "--out", out]) == 2
    assert "cannot hold one iteration's 16 transitions" in capsys.readouterr().err
