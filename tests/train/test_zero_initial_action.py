"""`zero_initial_action`: both learners' first policy acts 0 (on the residual action space: the
IK pianist's own action) for any observation, and learning moves it from there."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from train.config import EnvSpec, PPOConfig, SACConfig
from train.envs import make_env
from train.ppo import PPO
from train.sac import SAC

SMALL = {"num_envs": 8, "unroll_length": 4, "policy_hidden": (16, 16)}
LEARNERS = {"ppo": PPO, "sac": SAC}
CONFIGS = {
    "ppo": lambda zero: PPOConfig(**SMALL, num_minibatches=2, value_hidden=(16, 16),
                                  learning_rate=1e-2, zero_initial_action=zero),
    "sac": lambda zero: SACConfig(**SMALL, batch_size=16, updates_per_iteration=4,
                                  warmup_steps=0, buffer_size=64, critic_hidden=(16, 16),
                                  learning_rate=1e-2, zero_initial_action=zero),
}


def _learner_and_state(algo: str, zero: bool):
    loaded = make_env(EnvSpec(name="toy", pieces=("toy-00",)))
    learner = LEARNERS[algo](loaded.base, CONFIGS[algo](zero))
    pieces = jnp.zeros(SMALL["num_envs"], jnp.int32)
    state = learner.init(jax.random.PRNGKey(7), pieces, jax.tree_util.tree_map(
        jnp.asarray, loaded.bank))
    return learner, state


def _mode(learner, state, obs: jax.Array) -> np.ndarray:
    return np.asarray(learner.mode_action(learner.policy_params(state.params),
                                          state.normalizer, obs))


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_the_first_policy_acts_zero_and_learning_moves_it(algo):
    learner, state = _learner_and_state(algo, zero=True)
    obs = 3.0 * jax.random.normal(jax.random.PRNGKey(1), (32, learner.env.observation_size))
    np.testing.assert_array_equal(_mode(learner, state, obs), 0.0)
    iteration = jax.jit(learner.iteration)
    for _ in range(3):
        state, _ = iteration(state)
    assert np.abs(_mode(learner, state, obs)).max() > 1e-4  # the zeroed layer learns

    # Negative control: the default initialisation acts away from 0.
    default, default_state = _learner_and_state(algo, zero=False)
    assert np.abs(_mode(default, default_state, obs)).max() > 1e-2


def test_the_initial_std_is_the_one_asked_for():
    from train.ppo import zero_output_layer

    learner, state = _learner_and_state("ppo", zero=True)
    obs = jax.random.normal(jax.random.PRNGKey(2), (4, learner.env.observation_size))
    for std in (0.0, 0.2):
        policy = zero_output_layer(state.params.policy, std)
        logits = learner.networks.policy_network.apply(state.normalizer, policy, obs)
        scale = learner.distribution.create_dist(logits).scale
        np.testing.assert_allclose(scale, std or np.log(2.0) + 1e-3, rtol=1e-5)
