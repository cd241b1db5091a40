"""key_dynamics='kernel' against the default MJX keys, through the whole env.

(a) The scripted perfect player (`scripted_batch`, four pieces + one with a wrong key held)
presses exactly the same keys at every step in both modes, with the same F1, precision, recall
and sustain F1 (no mismatch allowed: the kernel reproduces the key joints to ~1e-8 rad, far
inside the 8.7 mrad pressed band). (c) A finger driven into a key presses it in kernel mode
too, through the kernel's own contact (so the keys are coupled to the hands both ways).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from mjx_piano.cli import main
from mjx_piano.env import EnvConfig, PianoEnv
from mjx_piano.scene import hands
from mjx_piano.scene.builder import SceneConfig
from tests.sim.conftest import PIECES, make_roll, play_scripted_batch


@pytest.fixture(scope="module")
def kernel_env() -> PianoEnv:
    return PianoEnv(EnvConfig(scene=SceneConfig(key_dynamics="kernel")), PIECES)


@pytest.mark.slow
def test_scripted_player_presses_the_same_keys_with_either_key_dynamics(env, kernel_env,
                                                                        scripted_batch):
    # The solver no longer sees the keys: 88 dofs fewer, no key joint left.
    assert env.model.nv - kernel_env.model.nv == 88
    assert not any(kernel_env.mj_model.joint(j).name.startswith("piano/")
                   for j in range(kernel_env.mj_model.njnt))
    mjx_states, mjx_pressed, _ = scripted_batch
    states, pressed, _ = play_scripted_batch(kernel_env)
    np.testing.assert_array_equal(pressed, mjx_pressed)
    for name in ("f1", "precision", "recall", "sustain_f1", "length"):
        np.testing.assert_allclose(getattr(states.last_episode, name),
                                   getattr(mjx_states.last_episode, name), atol=1e-6)
    # The key-press reward reads key positions: it agrees up to float rounding.
    np.testing.assert_allclose(states.last_episode.reward_terms.key_press,
                               mjx_states.last_episode.reward_terms.key_press, atol=1e-4)
    assert states.last_episode.f1[:4] == pytest.approx(np.ones(4))
    assert not np.any(states.num_diverged)


# One right hand over 20 keys; wrist flexed 0.4 rad and the middle finger's MCP 0.8 rad put the
# middle fingertip on D#5 (key 54) and press it (worked out with both key dynamics).
HAND_KEYS = tuple(range(36, 56))
PRESSED_KEY = 54


def _drive_middle_finger(key_dynamics: str):
    scene = SceneConfig(hands="right", keys=HAND_KEYS, key_dynamics=key_dynamics)
    env = PianoEnv(EnvConfig(scene=scene, fingering="none"), [make_roll("silence", 20, {})])
    action = np.clip(np.zeros(env.action_size), env.action_low, env.action_high)
    action[hands.HAND_ACTUATORS.index("WRJ1")] = 0.4
    action[hands.HAND_ACTUATORS.index("MFJ3")] = 0.8

    def run(state):
        def body(s, _):
            s = env.step(s, jnp.asarray(action, jnp.float32))
            return s, (s.pressed, env.key_angles(s.data, s.keys), s.data.xfrc_applied)
        return jax.lax.scan(body, state, None, length=10)

    return env, jax.jit(run)(env.reset(jax.random.PRNGKey(0), 0))[1]


@pytest.mark.slow
def test_a_finger_pressed_into_a_key_presses_it_in_kernel_mode():
    column = HAND_KEYS.index(PRESSED_KEY)
    env, (pressed, angle, xfrc) = _drive_middle_finger("kernel")
    _, (mjx_pressed, mjx_angle, _) = _drive_middle_finger("mjx")
    pressed, mjx_pressed = np.asarray(pressed), np.asarray(mjx_pressed)
    # Both: only that key, held down from the second control step to the end.
    for p in (pressed, mjx_pressed):
        assert p[4:, column].all() and not np.delete(p, column, axis=1).any()
    # Settled, the kernel's key rests where MJX's does (MJX: 0.0896 rad).
    np.testing.assert_allclose(np.asarray(angle)[-1, column], np.asarray(mjx_angle)[-1, column],
                               atol=2e-3)
    # The reaction: an upward force on the middle finger's distal body, none on the others.
    forces = np.asarray(xfrc)[-1, env.index.fingertip_body, :3]
    assert forces[2, 2] > 1.0
    np.testing.assert_allclose(np.delete(forces, 2, axis=0), 0.0)


def test_scene_command_writes_the_kernel_scene_without_key_joints(tmp_path):
    out = tmp_path / "kernel.xml"
    assert main(["scene", "--out", str(out), "--keys", "kernel"]) == 0
    model = mujoco.MjModel.from_xml_path(str(out))
    assert model.nq == 46 and model.nu == 38
    key_geoms = [g for g in range(model.ngeom) if model.geom(g).name.startswith("piano/key")]
    assert len(key_geoms) == 88 and not model.geom_conaffinity[key_geoms].any()
