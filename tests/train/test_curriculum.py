"""The curriculum over clip length (`train.curriculum`): the limit's schedule, the bank the
learners collect with, and episodes that end at the limit in PPO's rollout (reduced piano scene,
self-playing keys) while evaluations play whole pieces."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from train import sac as sac_module
from train.config import EnvSpec, PPOConfig, SACConfig
from train.curriculum import episode_limit, training_bank
from train.envs import make_env
from train.ppo import PPO
from train.sac import SAC

PIECE = "etude/c-major-scale-rh"  # 40 control steps
FIRST = 3  # env.curriculum_first_steps
RAMP = 1_000  # env.curriculum_env_steps
ENVS, UNROLL = 4, 8


def test_the_limit_rises_linearly_from_the_first_steps_to_the_longest_piece():
    limit = jax.jit(lambda steps: episode_limit(FIRST, RAMP, jnp.int32(40), steps))
    at = {steps: int(limit(jnp.int32(steps))) for steps in (0, 1, 250, 500, 999, 1000, 10**9)}
    assert at == {0: 3, 1: 4, 250: 13, 500: 22, 999: 40, 1000: 40, 10**9: 40}  # ceil(3 + 37 f)
    steps = np.arange(0, 2 * RAMP, 7)
    limits = np.asarray(jax.vmap(limit)(jnp.asarray(steps, jnp.int32)))
    assert np.all(np.diff(limits) >= 0) and limits.min() == FIRST and limits.max() == 40


@pytest.fixture(scope="module")
def curriculum_env():
    spec = EnvSpec(name="piano-keys", pieces=(PIECE,), curriculum_first_steps=FIRST,
                   curriculum_env_steps=RAMP)
    return make_env(spec).env


def test_the_training_bank_cuts_each_piece_at_the_limit(curriculum_env):
    bank = curriculum_env.bank
    two = bank.replace(length=jnp.asarray([40, 2], jnp.int32))  # a piece shorter than the limit
    assert np.asarray(training_bank(curriculum_env, two, jnp.int32(0)).length).tolist() == [3, 2]
    assert np.asarray(training_bank(curriculum_env, two, jnp.int32(500)).length).tolist() == [22, 2]
    plain = make_env(EnvSpec(name="piano-keys", pieces=(PIECE,))).env
    assert training_bank(plain, bank, jnp.int32(0)) is bank  # the lever off: the bank itself
    assert training_bank(curriculum_env.evaluation_env(), bank, jnp.int32(0)) is bank


def test_ppo_episodes_end_at_the_limit_and_grow_with_training(curriculum_env):
    ppo = PPO(curriculum_env, PPOConfig(num_envs=ENVS, unroll_length=UNROLL, num_minibatches=1))
    state = ppo.init(jax.random.PRNGKey(0), jnp.zeros(ENVS, jnp.int32), curriculum_env.bank)
    collect = jax.jit(ppo.collect)
    _, rollout, _ = collect(state, jax.random.PRNGKey(1))
    done = np.asarray(rollout.done)  # [T, E]
    # Limit 3 at the start: every env's episodes end, truncated, after steps 3 and 6.
    assert np.all(done[[2, 5]]) and not np.any(np.delete(done, [2, 5], axis=0))
    assert np.array_equal(np.asarray(rollout.truncated), done)
    # After the ramp, whole pieces (40 steps): no episode ends within the rollout.
    trained = state.replace(iteration=jnp.int32(RAMP // (ENVS * UNROLL) + 1))
    _, rollout, _ = collect(trained, jax.random.PRNGKey(1))
    assert not np.any(np.asarray(rollout.done))
    # Evaluations play the piece whole from its first step, whatever the training's limit.
    metrics = jax.jit(ppo.evaluate, static_argnums=2)(state, jnp.zeros(1, jnp.int32), 40)
    assert ppo.eval_env.config.curriculum_first_steps == 0
    assert float(metrics.completed) == 1.0 and float(metrics.last_episode.length) == 40


def test_sac_collects_with_the_training_bank(curriculum_env, monkeypatch):
    seen = []

    def spy(env, bank, env_steps):
        seen.append(env_steps)
        return training_bank(env, bank, env_steps)

    monkeypatch.setattr(sac_module, "training_bank", spy)
    config = SACConfig(num_envs=ENVS, unroll_length=2, buffer_size=64, batch_size=8,
                       warmup_steps=0, policy_hidden=(8,), critic_hidden=(8,))
    sac = SAC(curriculum_env, config)
    state = jax.eval_shape(sac.init, jax.random.PRNGKey(0), jnp.zeros(ENVS, jnp.int32),
                           curriculum_env.bank)
    jax.eval_shape(sac.collect, state, jax.random.PRNGKey(1))  # traced, not compiled
    assert len(seen) == 1


@pytest.mark.parametrize("fields, message", [
    ({"curriculum_first_steps": 3}, "both > 0"),
    ({"curriculum_env_steps": 100}, "both > 0"),
    ({"curriculum_first_steps": -1, "curriculum_env_steps": 100}, "both > 0"),
])
def test_a_half_set_or_negative_curriculum_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        make_env(EnvSpec(name="piano-keys", pieces=(PIECE,), **fields))


def test_the_curriculum_is_refused_on_the_toy_env():
    with pytest.raises(ValueError, match="levers of the piano envs"):
        make_env(EnvSpec(name="toy", pieces=("toy-00",), curriculum_first_steps=3,
                         curriculum_env_steps=100))
