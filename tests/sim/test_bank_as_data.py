"""The piece bank is data: a step compiled once serves any pieces of the same shapes, and no
executable holds the goals (issue 19, item 1). Reduced scene (self-playing keys): cheap."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_piano.env import EnvConfig, PianoEnv
from mjx_piano.scene.builder import SceneConfig
from tests.sim.conftest import make_roll

KEYS = (39, 40, 41, 42, 43)
STEPS = 6


def _rolls(count: int, shift: int) -> list:
    """`count` pieces of STEPS steps, each pressing one of KEYS per step (differs by `shift`)."""
    return [make_roll(f"p{i}", STEPS, {t: [KEYS[(t + i + shift) % len(KEYS)]]
                                       for t in range(STEPS)}) for i in range(count)]


@pytest.fixture(scope="module")
def env() -> PianoEnv:
    return PianoEnv(EnvConfig(scene=SceneConfig(hands="none", actuated_keys=True, keys=KEYS)))


def test_one_compile_plays_other_pieces_of_the_same_shapes(env):
    bank_a, bank_b = env.make_bank(_rolls(2, 0)), env.make_bank(_rolls(2, 1))
    reset = jax.jit(jax.vmap(lambda k, p, b: env.bind(b).reset(k, p), in_axes=(0, 0, None)))
    step = jax.jit(jax.vmap(lambda s, a, b: env.bind(b).step(s, a), in_axes=(0, 0, None)))
    keys, pieces = jax.random.split(jax.random.PRNGKey(0), 2), jnp.array([0, 1])
    action = jnp.zeros((2, env.action_size), jnp.float32)
    observed = []
    for bank in (bank_a, bank_b):
        state = step(reset(keys, pieces, bank), action, bank)
        observed.append(np.asarray(state.obs))
        # The bound env reads the bank it was given: the goal block is that bank's.
        expected = jax.vmap(env.bind(bank).goal_observation)(pieces, state.t)
        np.testing.assert_array_equal(observed[-1][:, :env.goal_size], np.asarray(expected))
    assert not np.array_equal(*observed)
    assert step._cache_size() == 1 and reset._cache_size() == 1


def test_the_goals_are_an_argument_not_a_constant(env):
    """The lowered step grows with the bank when the bank is bound outside jit (the negative
    control: the goals are folded in as a constant), and not when it is an argument."""
    state = jax.vmap(env.bind(env.make_bank(_rolls(1, 0))).reset)(
        jax.random.split(jax.random.PRNGKey(0), 1), jnp.array([0]))
    action = jnp.zeros((1, env.action_size), jnp.float32)

    def text(count: int, as_argument: bool) -> int:
        bank = env.make_bank(_rolls(count, 0))
        if as_argument:
            step = jax.vmap(lambda s, a, b: env.bind(b).step(s, a), in_axes=(0, 0, None))
            return len(jax.jit(step).lower(state, action, bank).as_text())
        return len(jax.jit(jax.vmap(env.bind(bank).step)).lower(state, action).as_text())

    grown = {arg: text(400, arg) - text(1, arg) for arg in (True, False)}
    bank_bytes = 400 * (STEPS + env.config.lookahead + 1) * len(KEYS)
    assert grown[False] > bank_bytes  # every goal is in the program text
    assert grown[True] < 200  # only the argument's shape changed


def test_an_unbound_env_says_how_to_bind(env):
    with pytest.raises(ValueError, match="not bound to a piece bank"):
        env.reset(jax.random.PRNGKey(0), 0)
    assert env.bind(env.make_bank(_rolls(3, 0))).num_pieces == 3
