"""The reward's weights and bounds are a config (`RewardConfig`, issue 19 item 2): every term
of the env's step reads it, and a bad one is refused. Reduced scene (self-playing keys): cheap."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_piano import rewards
from mjx_piano.env import EnvConfig, PianoEnv
from mjx_piano.rewards import RewardConfig
from mjx_piano.scene.builder import SceneConfig
from tests.sim.conftest import make_roll

SCALED = RewardConfig(key_press_weight=2.0, sustain_weight=0.0, forearm_reward=0.25)


def _terms(reward: RewardConfig) -> rewards.RewardTerms:
    """The reward terms of one step that half-presses the keys (pedal up), under `reward`."""
    scene = SceneConfig(hands="none", actuated_keys=True, keys=(39, 40, 41))
    env = PianoEnv(EnvConfig(scene=scene, reward=reward), [make_roll("p", 4, {0: [40], 1: [40]})])
    action = jnp.asarray(env.action_low + 0.5 * (env.action_high - env.action_low)).at[-1].set(0)
    state = env.reset(jax.random.PRNGKey(0), jnp.int32(0))
    return jax.jit(env.step)(state, action).reward_terms


def test_every_term_of_the_step_reads_the_reward_config():
    default, scaled = _terms(RewardConfig()), _terms(SCALED)
    assert 0.0 < float(default.key_press) <= 1.0
    np.testing.assert_allclose(float(scaled.key_press), 2.0 * float(default.key_press), rtol=1e-6)
    assert float(default.sustain) == 1.0 and float(scaled.sustain) == 0.0
    assert (float(default.forearm), float(scaled.forearm)) == (0.5, 0.25)


def test_the_bounds_and_the_energy_coefficient_reach_their_terms():
    position, goal = jnp.array([0.9, 0.0]), jnp.array([True, False])
    tight = RewardConfig(key_press_bounds=(0.0, 0.05), key_press_margin=0.5)
    loose = RewardConfig(key_press_bounds=(0.0, 0.2))
    assert float(rewards.key_press_reward(position, goal, goal, tight)) < \
        float(rewards.key_press_reward(position, goal, goal, loose)) == 1.0
    force, velocity = jnp.array([2.0, -1.0]), jnp.array([-0.5, 3.0])
    assert float(rewards.energy_reward(force, velocity, RewardConfig(energy_coef=1.0))) == -4.0
    assert float(rewards.energy_reward(force, velocity)) == pytest.approx(-4.0 * 5e-3)


def test_the_no_wrong_key_share_splits_the_key_press_term():
    position = jnp.array([1.0, 0.0, 1.0])  # goal key 0 fully down, key 1 up, key 2 wrong
    goal, pressed = jnp.array([True, True, False]), jnp.array([True, False, True])
    closeness = float(rewards.key_press_reward(position, goal, goal))  # no wrong key
    for share in (0.5, 0.25, 0.0):
        config = RewardConfig(no_wrong_key_share=share)
        wrong = float(rewards.key_press_reward(position, goal, pressed, config))
        right = float(rewards.key_press_reward(position, goal, goal, config))
        half = (closeness - 0.5) / 0.5  # the goal keys' mean closeness under the default
        assert wrong == pytest.approx((1 - share) * half, rel=1e-5)
        assert right == pytest.approx((1 - share) * half + share, rel=1e-5)


@pytest.mark.parametrize("bad", [dict(key_press_bounds=(0.1, 0.0)), dict(sustain_margin=0.0),
                                 dict(energy_coef=-1.0), dict(fingering_bounds=(-0.1, 0.0)),
                                 dict(no_wrong_key_share=1.5)])
def test_a_bad_reward_config_is_refused(bad):
    with pytest.raises(ValueError, match="reward"):
        RewardConfig(**bad)
