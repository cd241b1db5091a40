"""Performances in the piano-key kernel's env (`key_dynamics='kernel'`, no key joints in its
model) are drawn with the hinged-key scene, the kernel's key angles in its key joints."""

from __future__ import annotations

import numpy as np
import pytest

from mjx_piano.env import EnvConfig, PianoEnv
from mjx_piano.perform.render_scene import render_model
from mjx_piano.perform.rollout import perform
from mjx_piano.scene.builder import SceneConfig


@pytest.mark.slow
def test_kernel_performance_renders_with_hinged_keys(roll, env, performance):
    kernel_env = PianoEnv(EnvConfig(fingering="none", scene=SceneConfig(key_dynamics="kernel")),
                          [roll])
    played = perform(kernel_env, 0, roll.name)
    model = render_model(kernel_env)
    assert render_model(env) is env.mj_model  # MJX keys: the env's own model
    assert model.nq == env.mj_model.nq > kernel_env.mj_model.nq  # the keys' 88 joints back
    assert played.qpos.shape == (roll.num_steps, model.nq)
    np.testing.assert_array_equal(played.pressed, performance.pressed)  # same keys as MJX keys
    # The drawn keys are the kernel's: pressed ones near full travel, the others near rest,
    # and the whole pose close to the MJX-keys performance (the scripted hands hold still).
    key_qpos = np.array([model.jnt_qposadr[model.joint(f"piano/key{k}").id] for k in range(88)])
    angles = played.qpos[:, key_qpos]
    assert np.all(angles[played.pressed] > 0.05) and np.all(np.abs(angles[~played.pressed]) < 0.06)
    np.testing.assert_allclose(played.qpos, performance.qpos, atol=2e-3)
