"""`kernels.piano_keys` against MJX's key joints and numbers worked out by hand.

The kernel's free key response reproduces the MJX hinge joints (spring, damping, armature,
gravity, soft travel limit) to within float32 rounding: measured 1.1e-8 rad against MuJoCo C
(float64) and under 1e-5 rad against MJX (float32) over an 80-step press and release; the test
allows 1e-4 rad, 1% of the pressed band (8.7 mrad).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from mujoco import mjx

from kernels import piano_keys
from mjx_piano.scene import piano
from mjx_piano.scene.builder import SceneConfig, build_key_reference
from mjx_piano.scene.index import kernel_key_params

KEYS = (39, 40)  # C4 (white), C#4 (black)
DT = 0.005


@pytest.fixture(scope="module")
def params() -> piano_keys.KeyParams:
    return kernel_key_params(SceneConfig(keys=KEYS))


def test_params_are_the_hinge_joints_worked_out_by_hand(params):
    # Box about its own centre m (lx^2 + lz^2) / 12, moved to the hinge (+ m (lx / 2)^2), plus
    # the armature; gravity pulls the front down with m g lx / 2 at angle 0.
    full = np.array([[piano.WHITE_KEY_LENGTH, piano.WHITE_KEY_HEIGHT, piano.WHITE_KEY_MASS],
                     [piano.BLACK_KEY_LENGTH, piano.BLACK_KEY_HEIGHT, piano.BLACK_KEY_MASS]])
    length, height, mass = full.T
    inertia = mass * (length**2 + height**2) / 12 + mass * (length / 2) ** 2 + piano.KEY_ARMATURE
    np.testing.assert_allclose(params.inertia, inertia, rtol=1e-5)
    np.testing.assert_allclose(params.gravity_cos, mass * 9.81 * length / 2, rtol=1e-5)
    np.testing.assert_allclose(params.gravity_sin, 0.0, atol=1e-7)
    np.testing.assert_allclose(params.stiffness, piano.KEY_STIFFNESS)
    np.testing.assert_allclose(params.springref, piano.KEY_SPRINGREF, rtol=1e-6)
    np.testing.assert_allclose(params.upper, [piano.WHITE_KEY_TRAVEL, piano.BLACK_KEY_TRAVEL],
                               rtol=1e-6)


def _press_and_release(torque: float, press_steps: int, total: int):
    """Angles [total, 2] of MJX's key joints and of the kernel, a torque on both keys for
    `press_steps` steps, then none."""
    model = build_key_reference(SceneConfig(keys=KEYS))
    mx = mjx.put_model(model)
    applied = jnp.where(jnp.arange(total)[:, None] < press_steps, torque, 0.0) * jnp.ones(2)
    params = kernel_key_params(SceneConfig(keys=KEYS))

    def body(carry, tau):
        data, keys = carry
        data = mjx.step(mx, data.replace(qfrc_applied=tau))
        keys = piano_keys.step_keys(params, keys.replace(applied=tau), jnp.zeros(2), DT)
        return (data, keys), (data.qpos, keys.angle)

    start = (mjx.make_data(mx), piano_keys.KeyState.at_rest(params))
    _, (mjx_angle, kernel_angle) = jax.jit(lambda s: jax.lax.scan(body, s, applied))(start)
    return np.asarray(mjx_angle), np.asarray(kernel_angle), params


def test_free_key_response_matches_the_mjx_key_joints():
    mjx_angle, kernel_angle, params = _press_and_release(0.5, press_steps=20, total=80)
    worst = np.abs(mjx_angle - kernel_angle).max()
    assert worst < 1e-4, worst
    pressed_band = params.upper - piano.PRESS_THRESHOLD
    # Pressed within 20 ms, held while the torque lasts, back within 1 mrad of rest 300 ms later.
    assert np.all(kernel_angle[4:20] >= pressed_band)
    assert np.all(mjx_angle[4:20] >= pressed_band)
    assert np.all(kernel_angle[30:] < pressed_band)
    assert np.abs(kernel_angle[-1]).max() < 1e-3
    # MuJoCo's soft limit lets a hard press overshoot the travel; the kernel does the same.
    assert kernel_angle[:20, 0].max() > params.upper[0] + 0.01


def test_a_weak_torque_does_not_press_a_key(params):
    # 0.1 N m < the spring at full travel (2 (0.0666 + 0.0175) = 0.168 N m, minus gravity 0.029).
    _, kernel_angle, params = _press_and_release(0.1, press_steps=80, total=80)
    assert np.all(kernel_angle[:, 0] < params.upper[0] - piano.PRESS_THRESHOLD)
    # It settles where the torques balance: 0.1 + 0.02943 cos q = 2 (q + 0.01745).
    assert kernel_angle[-1, 0] == pytest.approx((0.1 + 0.02943) / 2 - 0.017453, abs=2e-3)


def _sphere_over_key(params, x: float, y: float, depth: float):
    """A fingertip capsule (two coincident ends) above key 0 at (x, y), `depth` into its top."""
    radius = 0.009
    top = params.hinge[0, 2] + params.box_centre[0, 2] + params.half_size[0, 2]
    centre = np.array([x, y, top + radius - depth], np.float32)
    ends = jnp.asarray(np.stack([centre, centre])[None])
    return piano_keys.fingertip_contact(
        params, jnp.zeros(2), jnp.zeros(2), ends, jnp.array([radius]), jnp.zeros((1, 2, 3)),
        jnp.asarray(centre[None] + np.array([0, 0, 0.02], np.float32)))


def test_contact_pushes_the_fingertip_up_and_the_key_down_equally(params):
    x = float(params.hinge[0, 0]) + 0.12  # 0.12 m in front of the hinge
    y = float(params.hinge[0, 1])
    out = _sphere_over_key(params, x, y, depth=0.002)
    force = piano_keys.CONTACT_STIFFNESS * 0.002
    np.testing.assert_allclose(out.tip_force, [[0.0, 0.0, force]], atol=1e-4)
    # Torque on the key: the reaction at a lever of 0.12 m presses it (positive).
    np.testing.assert_allclose(out.key_torque, [force * 0.12, 0.0], rtol=1e-3)
    # About the fingertip's centre of mass, 0.02 + 0.009 m above the contact point: no torque.
    np.testing.assert_allclose(out.tip_torque, 0.0, atol=1e-6)


def test_no_contact_when_apart_or_beside_the_key(params):
    x, y = float(params.hinge[0, 0]) + 0.12, float(params.hinge[0, 1])
    apart = _sphere_over_key(params, x, y, depth=-0.001)
    beside = _sphere_over_key(params, x, y + 0.03, depth=0.002)  # over the next white key's gap
    for out in (apart, beside):
        np.testing.assert_allclose(out.tip_force, 0.0)
        np.testing.assert_allclose(out.key_torque, 0.0)


def test_candidates_are_the_nearest_keys_along_the_keyboard():
    params = kernel_key_params(SceneConfig(keys=tuple(range(30, 50))))
    y = jnp.asarray(params.y_sorted[[0, 10, 19]])
    candidates = np.asarray(piano_keys.candidate_keys(params, y))
    assert candidates.shape == (3, piano_keys.NUM_CANDIDATES)
    for row, position in zip(candidates, (0, 10, 19)):
        assert params.by_y[position] in row  # the key right under the point is always tested
        assert len(set(row.tolist())) == piano_keys.NUM_CANDIDATES
    # Inside the keyboard the window is centred: two keys on each side of the point.
    np.testing.assert_array_equal(np.sort(candidates[1]), np.sort(params.by_y[8:12]))


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="key_dynamics"):
        SceneConfig(key_dynamics="solver")
    with pytest.raises(ValueError, match="actuated_keys"):
        SceneConfig(key_dynamics="kernel", actuated_keys=True)
