"""Shared, compiled-once fixtures for the simulator tests (MJX compiles slowly on CPU)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_piano.env import EnvConfig, PianoEnv
from mjx_piano.music.roll import PianoRoll
from mjx_piano.scripted import play_episode

NUM_ENVS = 5
EPISODE_STEPS = 14  # longer than the two shortest pieces, so those auto-reset once


def make_roll(name: str, steps: int, notes: dict[int, list[int]], sustain: tuple[int, ...] = ()) -> PianoRoll:
    """A piano roll with `notes[step] = [keys]` and the pedal down at the given steps."""
    keys = np.zeros((steps, 88), dtype=bool)
    for step, pressed in notes.items():
        keys[step, pressed] = True
    pedal = np.zeros(steps, dtype=bool)
    pedal[list(sustain)] = True
    return PianoRoll(name, keys, pedal)


PIECES = (
    make_roll("chords", 12, {2: [39], 3: [39], 4: [39, 43], 5: [43], 6: [40, 43], 7: [40], 9: [39, 44]},
              sustain=(3, 4, 5)),
    make_roll("scale", 10, {i: [39 + 2 * (i // 2)] for i in range(8)}),
    make_roll("black-keys", 8, {1: [40], 2: [42], 4: [45, 47], 5: [45, 47]}),
    make_roll("low-and-high", 9, {0: [0], 2: [87], 4: [0, 87], 6: [44]}, sustain=(2,)),
)


@pytest.fixture(scope="session")
def env() -> PianoEnv:
    """The full two-hand, 88-key task over four small pieces."""
    return PianoEnv(EnvConfig(), PIECES)


@pytest.fixture(scope="session")
def batched_step(env):
    """jit(vmap(env.step)), compiled once for the session."""
    return jax.jit(jax.vmap(env.step))


@pytest.fixture(scope="session")
def batched_reset(env):
    """jit(vmap(env.reset))."""
    return jax.jit(jax.vmap(env.reset))


@pytest.fixture(scope="session")
def scripted_batch(env):
    """Five envs, four different pieces, played by the scripted player for EPISODE_STEPS.

    Envs 0-3 play pieces 0-3; env 4 plays piece 0 again with one wrong key held at every step.
    Returns (final states, pressed [envs, steps, 88], wrong key).
    """
    return play_scripted_batch(env)


def play_scripted_batch(env: PianoEnv):
    """The `scripted_batch` run on any env over `PIECES`."""
    wrong_key = 60
    extra = jnp.zeros((NUM_ENVS, 88), bool).at[4, wrong_key].set(True)
    pieces = jnp.array([0, 1, 2, 3, 0], jnp.int32)
    rngs = jax.random.split(jax.random.PRNGKey(0), NUM_ENVS)
    play = jax.jit(jax.vmap(lambda r, p, e: play_episode(env, r, p, EPISODE_STEPS, e)))
    states, pressed = play(rngs, pieces, extra)
    return states, np.asarray(pressed), wrong_key
