"""MJX's Warp backend (impl='warp') on the full two-hand scene, run on CPU by Warp's CPU device.

Warp is MJX's fast path on NVIDIA GPUs; its CPU device runs the same kernels, slowly, so these
tests hold the GPU runbook to the same physics: the hand script must press MuJoCo C's keys, a
batch must auto-reset (MJX-Warp's contact buffers are shared by the batch, so resets merge data
with `Data.where`), and too-small buffers must be reported, not silently stepped through.
"""

from __future__ import annotations

import importlib.util

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from bench import levers
from mjx_piano import warp_buffers
from mjx_piano.env import EnvConfig, PianoEnv
from mjx_piano.music.roll import PianoRoll
from mjx_piano.scene.builder import SceneConfig


def _piece(name: str, steps: int) -> PianoRoll:
    keys = np.zeros((steps, 88), bool)
    keys[1:3, 39] = keys[3:6, [41, 44]] = True
    return PianoRoll(name, keys, np.zeros(steps, bool))


# Piece 0 outlasts the hand script (the parity scripts play it); piece 1 ends after 3 steps.
PIECES = [_piece("long", 30), _piece("short", 3)]


def test_warp_needs_its_contact_slots_sized_for_the_batch():
    with pytest.raises(ValueError, match="naconmax.*for_batch"):
        PianoEnv(EnvConfig(impl="warp"), PIECES)
    assert EnvConfig(impl="warp").for_batch(8).naconmax == 8 * warp_buffers.CONTACTS_PER_ENV["mjx"]
    kernel = EnvConfig(scene=SceneConfig(key_dynamics="kernel"), impl="warp")
    assert kernel.for_batch(8).naconmax == 8 * warp_buffers.CONTACTS_PER_ENV["kernel"]
    assert EnvConfig(impl="warp", naconmax=5).for_batch(8).naconmax == 5
    assert EnvConfig().for_batch(8).naconmax is None


def test_constraint_rows_hold_mujoco_c_peak_under_the_hand_script():
    env = PianoEnv(EnvConfig(), PIECES)
    model, data = env.mj_model, mujoco.MjData(env.mj_model)
    mujoco.mj_forward(model, data)
    peak_rows = peak_contacts = 0
    for action in levers.hand_press_actions(env):
        data.ctrl[:] = action[:-1]
        for _ in range(env.config.substeps):
            mujoco.mj_step(model, data)
            peak_rows, peak_contacts = max(peak_rows, data.nefc), max(peak_contacts, data.ncon)
    assert peak_contacts <= warp_buffers.CONTACTS_PER_ENV["mjx"]
    assert 100 < peak_rows <= warp_buffers.constraint_rows(model, peak_contacts)
    # MJX-Warp's own default (64 rows) would drop some of them.
    assert peak_rows > 64


needs_warp = pytest.mark.skipif(importlib.util.find_spec("warp") is None,
                                reason="MJX's Warp backend needs the warp-lang package")


@pytest.fixture(scope="module")
def warp_env() -> PianoEnv:
    return PianoEnv(EnvConfig(impl="warp").for_batch(2), PIECES)


@needs_warp
@pytest.mark.slow
def test_warp_presses_mujoco_c_keys_and_a_batch_auto_resets(warp_env):
    f1, _, by_hand, overflowed = levers.play_parity_scripts(warp_env)
    expected = levers.play_hand_script_mujoco_c(SceneConfig(), PIECES[0])
    assert expected.sum() > 5 and not overflowed
    np.testing.assert_array_equal(by_hand, expected)
    assert f1 == pytest.approx(1.0)

    env = warp_env
    rest = jnp.asarray(np.clip(0.0, env.action_low, env.action_high))
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), 2),
                                          jnp.ones(2, jnp.int32))

    def three_steps(states):
        step = jax.vmap(env.step, in_axes=(0, None))
        return jax.lax.scan(lambda s, _: (step(s, rest), s.t), states, None, length=3)

    states, times = jax.jit(three_steps)(states)
    np.testing.assert_array_equal(times, [[0, 0], [1, 1], [2, 2]])
    # The short piece ended: both envs start it again from the initial state.
    assert bool(jnp.all(states.done)) and bool(jnp.all(states.t == 0))
    np.testing.assert_allclose(states.data.qpos, np.broadcast_to(env.initial_data.qpos,
                                                                 states.data.qpos.shape))
    assert states.data._impl.contact__dist.shape == (env.config.naconmax,)
    assert not bool(jnp.any(jax.vmap(warp_buffers.overflowed)(states.data)))


@needs_warp
@pytest.mark.slow
def test_too_few_constraint_rows_are_reported():
    env = PianoEnv(EnvConfig(impl="warp", njmax=64).for_batch(1), PIECES)
    *_, overflowed = levers.play_parity_scripts(env)
    assert overflowed
