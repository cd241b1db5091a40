"""Reward terms and F1 against numbers worked out by hand (no physics)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from mjx_piano import metrics, rewards


def test_tolerance_is_one_inside_and_point_one_one_margin_outside():
    x = jnp.array([0.0, 0.03, 0.05, 0.55, -0.5, 0.3])
    value = np.asarray(rewards.tolerance(x, (0.0, 0.05), 0.5))
    assert value[:3] == pytest.approx([1.0, 1.0, 1.0])
    assert value[3] == pytest.approx(0.1, rel=1e-5) and value[4] == pytest.approx(0.1, rel=1e-5)
    # Half a margin outside: 0.1 ** (0.5 ** 2).
    assert value[5] == pytest.approx(0.1 ** 0.25, rel=1e-5)


def test_binary_scores_with_zero_division_one():
    pressed = jnp.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]], bool)
    goal = jnp.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]], bool)
    precision, recall, f1 = (np.asarray(v) for v in metrics.binary_scores(pressed, goal))
    np.testing.assert_allclose(precision, [0.5, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(recall, [0.5, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(f1, [0.5, 1.0, 0.0, 0.0])


def test_key_press_reward_by_hand():
    goal = jnp.array([True, True, False, False])
    position = jnp.array([1.0, 0.45, 0.2, 0.0])  # second key is 0.5 short: 0.05 + one margin
    pressed = jnp.array([True, False, False, False])
    value = float(rewards.key_press_reward(position, goal, pressed))
    assert value == pytest.approx(0.5 * (1.0 + 0.1) / 2 + 0.5, rel=1e-5)
    wrong = pressed.at[3].set(True)
    assert float(rewards.key_press_reward(position, goal, wrong)) == pytest.approx(0.5 * 0.55, rel=1e-5)
    nothing = jnp.zeros(4, bool)
    assert float(rewards.key_press_reward(position, nothing, nothing)) == pytest.approx(0.5)


def test_sustain_energy_and_forearm_terms_by_hand():
    assert float(rewards.sustain_reward(jnp.array(True), jnp.array(True))) == pytest.approx(1.0)
    # goal - state = -1: one below the lower bound 0, i.e. two margins: 0.1 ** (2 ** 2).
    assert float(rewards.sustain_reward(jnp.array(True), jnp.array(False))) == pytest.approx(
        1e-4, rel=1e-4)
    energy = rewards.energy_reward(jnp.array([2.0, -1.0]), jnp.array([-0.5, 3.0]))
    assert float(energy) == pytest.approx(-5e-3 * (1.0 + 3.0))
    assert float(rewards.forearm_reward(jnp.array(False))) == 0.5
    assert float(rewards.forearm_reward(jnp.array(True))) == 0.0
