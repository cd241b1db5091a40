"""The env against MuJoCo C, key-press detection, observation layout and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from mjx_piano.scene import piano
from tests.sim.conftest import NUM_ENVS

# Max |qpos| difference between MJX (float32) and MuJoCo C (float64) over 10 control steps
# (100 physics steps) of the same random actions, hands moving freely above the keys.
# (Once fingers touch keys the two differ more: MJX's capsule-box collision returns other
# contact points than MuJoCo C's, and contact dynamics amplify that.)
MJX_VS_C_QPOS_TOLERANCE = 1e-4


def _random_free_actions(env, steps: int, seed: int = 0) -> np.ndarray:
    """Random actions within a quarter of each range around the rest pose: no key is touched."""
    rng = np.random.default_rng(seed)
    rest = np.clip(0.0, env.action_low, env.action_high)
    spread = 0.25 * (env.action_high - env.action_low)
    actions = rest + spread * rng.uniform(-0.5, 0.5, size=(steps, env.action_size))
    return np.clip(actions, env.action_low, env.action_high).astype(np.float32)


def test_mjx_and_mujoco_c_agree_over_a_short_rollout(env, batched_reset, batched_step):
    steps = 10
    actions = _random_free_actions(env, steps)
    states = batched_reset(jax.random.split(jax.random.PRNGKey(0), NUM_ENVS), jnp.zeros(NUM_ENVS, jnp.int32))
    model = env.mj_model
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    worst = 0.0
    for action in actions:
        states = batched_step(states, jnp.tile(action, (NUM_ENVS, 1)))
        data.ctrl[:] = action[:-1]
        for _ in range(env.config.substeps):
            mujoco.mj_step(model, data)
        worst = max(worst, float(np.abs(np.asarray(states.data.qpos[0]) - data.qpos).max()))
        assert data.ncon == 0
    print(f"MJX vs MuJoCo C, worst |qpos| error over 100 physics steps: {worst:.2e}")
    assert np.abs(data.qpos[env.index.hand_qpos]).max() > 0.05, "the hands should have moved"
    assert worst < MJX_VS_C_QPOS_TOLERANCE


def test_setting_key_angles_presses_exactly_those_keys(env):
    data = env.initial_data
    down = np.array([0, 1, 39, 40, 86, 87])
    half = np.array([20, 21])  # halfway down: not pressed
    just_outside = np.array([50])  # 0.6 deg short of full travel: not pressed
    just_inside = np.array([51])  # 0.4 deg short: pressed
    travel = env.index.key_travel
    angles = np.zeros(88, np.float32)
    angles[down] = travel[down]
    angles[half] = travel[half] / 2
    angles[just_outside] = travel[just_outside] - np.deg2rad(0.6)
    angles[just_inside] = travel[just_inside] - np.deg2rad(0.4)
    qpos = data.qpos.at[env.index.key_qpos].set(angles)
    pressed = np.asarray(env.pressed_keys(data.replace(qpos=qpos)))
    expected = np.zeros(88, bool)
    expected[np.concatenate([down, just_inside])] = True
    np.testing.assert_array_equal(pressed, expected)


def test_scene_has_the_task_dimensions(env):
    model = env.mj_model
    key_joints = [j for j in range(model.njnt) if model.joint(j).name.startswith("piano/key")]
    assert len(key_joints) == 88
    assert env.action_size == 2 * 19 + 1
    assert env.observation_size == 1144
    assert len(env.index.hand_qpos) == 46
    white = ~np.array([piano.is_black(k) for k in range(88)])
    assert white.sum() == 52


def test_observation_blocks_hold_what_the_layout_says(env, batched_reset):
    states = batched_reset(jax.random.split(jax.random.PRNGKey(1), NUM_ENVS), jnp.array([0, 1, 2, 3, 0]))
    obs = np.asarray(states.obs[3])  # piece "low-and-high": keys 0 at step 0, 87 at step 2
    blocks = {name: obs[s] for name, s in env.layout.slices().items()}
    goal = blocks["goal"].reshape(env.config.lookahead + 1, 89)
    assert goal[0, 0] == 1 and goal[2, 87] == 1 and goal[2, 88] == 1 and goal[1].sum() == 0
    np.testing.assert_allclose(blocks["fingertips"],
                               np.asarray(env.initial_data.site_xpos[env.index.fingertip_site]).ravel())
    assert np.all(blocks["key_state"] == 0)


def test_wrong_action_shape_or_dtype_is_a_clear_error(env, batched_reset):
    state = jax.tree_util.tree_map(lambda x: x[0], batched_reset(
        jax.random.split(jax.random.PRNGKey(0), NUM_ENVS), jnp.zeros(NUM_ENVS, jnp.int32)))
    with pytest.raises(ValueError, match=r"shape \(39,\)"):
        env.step(state, jnp.zeros(38))
    with pytest.raises(ValueError, match="vmap"):
        env.step(state, jnp.zeros((2, 39)))
    with pytest.raises(TypeError, match="floating"):
        env.step(state, jnp.zeros(39, jnp.int32))
    with pytest.raises(IndexError, match="outside the bank"):
        env.reset(jax.random.PRNGKey(0), 7)


def test_actions_are_clipped_and_nan_actions_do_not_spread(env, batched_reset, batched_step):
    states = batched_reset(jax.random.split(jax.random.PRNGKey(0), NUM_ENVS), jnp.zeros(NUM_ENVS, jnp.int32))
    actions = jnp.zeros((NUM_ENVS, env.action_size)).at[0].set(1e3).at[1].set(jnp.nan)
    states = batched_step(states, actions)
    np.testing.assert_allclose(states.data.ctrl[0], env.action_high[:-1])
    assert np.all(np.isfinite(np.asarray(states.data.qpos)))
    assert np.all(np.isfinite(np.asarray(states.obs))) and np.all(np.isfinite(np.asarray(states.reward)))


# NaN, and a finite speed far beyond any played motion (a solver losing the constraints).
@pytest.mark.parametrize("bad_speed", [float("nan"), 1e6])
def test_diverged_env_is_reset_counted_and_isolated(env, batched_reset, batched_step, bad_speed):
    states = batched_reset(jax.random.split(jax.random.PRNGKey(0), NUM_ENVS), jnp.zeros(NUM_ENVS, jnp.int32))
    hold = jnp.tile(jnp.clip(jnp.zeros(env.action_size), env.action_low, env.action_high), (NUM_ENVS, 1))
    states = batched_step(states, hold)
    before = np.asarray(states.data.qpos)
    poisoned = states.data.replace(qvel=states.data.qvel.at[2, 0].set(bad_speed))
    after = batched_step(states.replace(data=poisoned), hold)
    assert np.asarray(after.done).tolist() == [False, False, True, False, False]
    assert int(after.num_diverged[2]) == 1 and int(after.last_episode.diverged[2]) == 1
    assert int(after.t[2]) == 0
    np.testing.assert_array_equal(np.asarray(after.data.qpos[2]), np.asarray(env.initial_data.qpos))
    for leaf in jax.tree_util.tree_leaves(after):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert np.all(np.isfinite(np.asarray(leaf))), "a NaN leaked into the batch"
    # The other envs stepped on undisturbed.
    assert int(after.t[1]) == 2 and np.abs(np.asarray(after.data.qpos[1]) - before[1]).max() < 0.05


def test_optional_fingering_observation_points_the_nearest_finger_at_the_goal_key():
    from mjx_piano.env import EnvConfig, PianoEnv
    from tests.sim.conftest import PIECES

    env = PianoEnv(EnvConfig(observe_fingering=True), PIECES[3:])  # A0 is the first goal
    assert env.observation_size == 1144 + 40
    state = jax.jit(env.reset)(jax.random.PRNGKey(0), jnp.int32(0))
    block = np.asarray(state.obs[env.layout.slices()["fingering"]])
    vectors, flags = block[:30].reshape(10, 3), block[30:]
    tips = np.asarray(env.initial_data.site_xpos[env.index.fingertip_site])
    a0 = np.asarray(env.initial_data.site_xpos[env.index.key_target_site[0]])
    nearest = int(np.argmin(np.linalg.norm(tips - a0, axis=-1)))
    assert nearest == 9  # the left little finger
    np.testing.assert_array_equal(flags, np.eye(10)[nearest])
    np.testing.assert_allclose(vectors[nearest], a0 - tips[nearest], atol=1e-6)
    assert not vectors[np.arange(10) != nearest].any()
    with pytest.raises(ValueError, match="observe_fingering"):
        PianoEnv(EnvConfig(observe_fingering=True, fingering="none"), PIECES[:1])


def test_forearm_overlap_test_agrees_with_mujoco_collision_detection(env):
    from mjx_piano.physics import forearms_overlap

    model, data = env.mj_model, mujoco.MjData(env.mj_model)
    slides = [model.joint(name).qposadr[0] for name in ("rh/forearm_ty", "lh/forearm_ty", "rh/forearm_tx")]
    boxes = set(env.index.forearm_geoms.tolist())
    rng = np.random.default_rng(0)
    touching = 0
    for _ in range(200):
        data.qpos[:] = 0
        data.qpos[slides] = rng.uniform([-0.3, 0.0, 0.0], [0.0, 0.3, 0.06])
        mujoco.mj_forward(model, data)
        contact = data.contact
        by_mujoco = any({contact.geom1[k], contact.geom2[k]} == boxes and contact.dist[k] < 0
                        for k in range(data.ncon))
        assert bool(forearms_overlap(env.index, data.geom_xpos)) == by_mujoco
        touching += by_mujoco
    assert 30 < touching < 170, "the sample must hold both touching and apart cases"
