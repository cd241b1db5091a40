"""The IK pianist: the OT finger strikes its key, a finger stuck in a neighbour key lifts, the
hands never cross, the fingers keep their order, one compile for a batch of envs and pieces,
and no NaN on empty or overfull goals (full scene, kernel keys).

One jitted, vmapped rollout over eight pieces serves the tests (MJX compiles slowly on CPU).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_piano import hand_placement, ik_pianist, key_holders
from mjx_piano.env import EnvConfig, PianoEnv
from mjx_piano.scene.builder import SceneConfig
from tests.sim.conftest import make_roll

STEPS = 24
STRIKE_WITHIN = 10  # control steps from the note's first row to the key pressed
ON_KEY_Y = 0.006  # m: the striking fingertip's offset from the key's target point along the
# keyboard (a white key is 0.0225 wide)
ON_KEY_X = 0.02  # m, along the key (0.15 long): the fingertip lands on its front part
SINGLE_KEY = 55  # E5, a white key: the right hand centres its reach on it and its middle
# finger strikes it (on D5, key 53, the middle finger rocks off the key every 4-5 steps and
# holds it 70% of the time: bench/RESULTS.md, 2026-12-02 eighth session)
DYAD = (51, 58)  # C5 + G5 in the right hand: its thumb takes C5, its little finger G5
BLACK_TRIAD = (52, 55, 59)  # C#5 + E5 + G#5 in the right hand: its thumb would take C#5
OCTAVES = {29: 9, 41: 5, 46: 0, 58: 4}  # D3 + D4 (left), G4 + G5 (right): key -> fingertip
# (right th..lf are 0..4, left 5..9); the first chord of R1's first clip, 0.1645 m per hand


def _pieces():
    silence = make_roll("silence", STEPS, {})
    single = make_roll("single", STEPS, {i: [SINGLE_KEY] for i in range(4, STEPS)})
    # Ten white keys at once, five per hand, far apart: more than the hands can cover.
    wide = make_roll("ten-keys", STEPS, {i: [3, 5, 7, 8, 10, 75, 77, 79, 80, 82]
                                         for i in range(STEPS)})
    # Keys that jump between the ends of the keyboard: the hands must not cross to follow.
    jumps = make_roll("jumps", STEPS, {i: [[2], [85], [40, 47], [0, 87]][i // 6]
                                       for i in range(STEPS)})
    # Triads in both hands, a new one every 4 steps: each hand fingers three keys at once.
    right = [[51, 55, 58], [53, 56, 60], [55, 58, 62], [56, 60, 63], [58, 62, 65], [60, 63, 67]]
    left = [[27, 31, 34], [29, 32, 36], [31, 34, 38], [32, 36, 39], [34, 38, 41], [36, 39, 43]]
    triads = make_roll("triads", STEPS, {i: right[i // 4] + left[i // 4] for i in range(STEPS)})
    dyad = make_roll("dyad", STEPS, {i: list(DYAD) for i in range(4, STEPS)})
    black = make_roll("black-triad", STEPS, {i: list(BLACK_TRIAD) for i in range(STEPS)})
    octaves = make_roll("octaves", STEPS, {i: list(OCTAVES) for i in range(4, STEPS)})
    return [silence, single, wide, jumps, triads, dyad, black, octaves]


@pytest.fixture(scope="module")
def played():
    env = PianoEnv(EnvConfig(scene=SceneConfig(key_dynamics="kernel", solver_iterations=2,
                                               ls_iterations=4)), _pieces())
    pianist = ik_pianist.IKPianist(env)
    slides = pianist.actuators[pianist.slide_actuator]  # actuator ids: coordinate = qpos there
    slide_qpos = np.asarray([env.index.hand_qpos[np.nonzero(
        env.index.actuator_velocity_map[a])[0][0]] for a in slides])

    @jax.jit
    @chex.assert_max_traces(n=1)
    def rollout(pieces):
        def one(piece):
            def body(state, _):
                action, targets = pianist.plan(state)
                nxt = env.step(state, action)
                tips = nxt.data.site_xpos[env.index.fingertip_site]
                return nxt, (nxt.pressed, targets.finger_of_key, tips, action,
                             nxt.data.qpos[slide_qpos])
            return jax.lax.scan(body, env.reset(jax.random.PRNGKey(0), piece), None,
                                length=STEPS)[1]
        return jax.vmap(one)(pieces)

    first = jax.device_get(rollout(jnp.array([0, 1, 2, 3, 4, 5, 6, 7], jnp.int32)))
    again = jax.device_get(rollout(jnp.array([3, 2, 1, 0, 4, 5, 6, 7], jnp.int32)))  # no retrace
    return env, pianist, first, again


def test_a_single_goal_key_is_struck_by_the_finger_ot_assigns(played):
    env, pianist, (pressed, finger_of_key, tips, _, _), _ = played
    key = list(env.config.scene.keys).index(SINGLE_KEY)
    down = np.nonzero(pressed[1, :, key])[0]
    assert down.size and down[0] <= 4 + STRIKE_WITHIN, down
    step = down[0]
    finger = finger_of_key[1, step, key]
    assert finger >= 0
    gap_x, gap_y = np.abs(tips[1, step, finger, :2] - pianist.key_points[key, :2])
    assert gap_y < ON_KEY_Y and gap_x < ON_KEY_X, (finger, gap_x, gap_y)
    # Only the goal key sounds once it is struck, and it stays down to the end.
    assert pressed[1, step:, key].mean() > 0.8
    assert pressed[1, step:].sum() <= pressed[1, step:, key].sum() + 2


def test_a_thumb_strikes_the_key_ot_gives_it(played):
    """The right thumb takes C5 of a held C5 + G5 and presses it within `STRIKE_WITHIN` steps
    and to the end, beside the little finger on G5. RP1M's thumb reaches a key's depth only
    with its forearm in and its wrist flexed; when the arm went there only once the thumb
    pressed, it came too late and this thumb never pressed its key."""
    env, _, (pressed, finger_of_key, _, _, _), _ = played
    keys = list(env.config.scene.keys)
    low, high = keys.index(DYAD[0]), keys.index(DYAD[1])
    assert np.all(finger_of_key[5, 4:, low] == 0), finger_of_key[5, :, low]  # the right thumb
    down = np.nonzero(pressed[5, :, low])[0]
    assert down.size and down[0] <= 4 + STRIKE_WITHIN, down
    assert pressed[5, down[0]:, low].mean() > 0.8 and pressed[5, down[0]:, high].mean() > 0.8
    assert pressed[5].sum() <= pressed[5, :, low].sum() + pressed[5, :, high].sum() + 2


def test_a_thumb_is_not_given_a_black_key(played, monkeypatch):
    """RP1M's thumb cannot press a black key (`bench/RESULTS.md`, 2026-12-03): the fingering
    gives C#5 of a C#-E-G# triad to the index finger; without `THUMB_BLACK_COST` (the negative
    control) the thumb takes it, as it does given a cost of 0 per episode (the argument
    `train.ilc`'s fingering variants use)."""
    env, pianist, (_, finger_of_key, _, _, _), _ = played
    low = list(env.config.scene.keys).index(BLACK_TRIAD[0])
    assert np.all(finger_of_key[6, :, low] == 1), finger_of_key[6, :, low]
    start = env.reset(jax.random.PRNGKey(0), jnp.int32(6))

    def finger(**cost):  # jitted (10x faster than the op-by-op plan); traced afresh each call
        return int(jax.jit(lambda s: pianist.plan(s, **cost)[1].finger_of_key[low])(start))

    assert finger() == 1
    assert finger(thumb_black_cost=jnp.float32(0.0)) == 0
    monkeypatch.setattr(ik_pianist, "THUMB_BLACK_COST", 0.0)
    assert finger() == 0


def test_octave_chords_give_the_thumbs_their_keys(played):
    """An octave in each hand (0.1645 m, past the hand's reach in the playing posture): in
    the wide pose the thumb and little finger of each hand are given the two keys, and press
    them within `STRIKE_WITHIN` steps and hold them to the end. Checked by hand, 2026-12-06:
    with `WIDE_SPAN` at inf the thumbs pressed their keys in none of the steps; with the ring
    finger counted as a holder of the little finger's key too (`key_holders` without its
    lowest-fingertip rule) the fingering handed the key to the ring finger every few steps and
    the little fingers held their keys in 29% of the steps."""
    env, _, (pressed, finger_of_key, _, _, _), _ = played
    keys = list(env.config.scene.keys)
    for key, finger in OCTAVES.items():
        column = keys.index(key)
        # A finger that slips off its key may hand it to its neighbour for a step.
        assert np.mean(finger_of_key[7, 4:, column] == finger) >= 0.8, (
            key, finger_of_key[7, :, column])
        down = np.nonzero(pressed[7, :, column])[0]
        assert down.size and down[0] <= 4 + STRIKE_WITHIN, (key, down)
        assert pressed[7, down[0]:, column].mean() > 0.8, (key, pressed[7, :, column])


def test_a_finger_down_in_a_neighbour_key_lifts_before_it_presses(played, monkeypatch):
    """The finger given a sounding key aims below the key's top, unless its fingertip is down
    among the keys more than `LIFT_MISS` off the key along the keyboard: it is in a
    neighbour, and then it hovers over its own key. Found on R1's Haydn clip (2026-12-06): the
    left thumb, down in C4 1.7-1.9 cm short of D4, pushed on and held C4 down, the key's side
    keeping it from sliding over. A finger above the keys aims down whatever its miss. With
    `LIFT_MISS` at inf (the rule off, the negative control) the stuck finger aims down too."""
    env, pianist, *_ = played
    key = list(env.config.scene.keys).index(SINGLE_KEY)
    rows = jnp.zeros((env.config.lookahead + 1, len(env.config.scene.keys)), bool)
    rows = rows.at[:, key].set(True)
    slides, right_keys, wide = hand_placement.place_hands(
        pianist.placement, rows[:ik_pianist.PLACEMENT_ROWS], jnp.zeros(2))
    rest = pianist._points(pianist.data.xpos, pianist.data.xmat)  # [F, 3], above the keys
    holding = jnp.zeros((rows.shape[1], rest.shape[0]), bool)

    def aim_z(miss: float, depth: float) -> tuple[int, float]:
        """(the key's finger, its target's height above the key's top) with that finger's
        tip `miss` m along the keyboard from the key and `depth` m below its top."""
        finger = int(pianist._targets(rows, rest, rest, right_keys, slides, wide, holding,
                                      ik_pianist.THUMB_BLACK_COST).finger_of_key[key])
        top = pianist.key_points[key]
        actual = rest.at[finger].set(top + jnp.array([0.0, miss, -depth]))
        targets = pianist._targets(rows, rest, actual, right_keys, slides, wide, holding,
                                   ik_pianist.THUMB_BLACK_COST)
        assert int(targets.finger_of_key[key]) == finger
        return finger, float(targets.position[finger, 2] - top[2])

    press = ik_pianist.TIP_RADIUS - ik_pianist.PRESS_DEPTH
    hover = ik_pianist.TIP_RADIUS + ik_pianist.HOVER
    finger, on_key = aim_z(0.004, 0.005)  # down in its own key
    assert finger >= 0 and on_key == pytest.approx(press, abs=1e-6)
    for miss in (0.02, -0.02):  # down in a neighbour key, either side
        assert aim_z(miss, 0.005)[1] == pytest.approx(hover, abs=1e-6)
    assert aim_z(0.02, -0.03)[1] == pytest.approx(press, abs=1e-6)  # above the keys
    monkeypatch.setattr(ik_pianist, "LIFT_MISS", float("inf"))
    assert aim_z(0.02, 0.005)[1] == pytest.approx(press, abs=1e-6)


def test_hands_never_cross_and_forearms_keep_apart(played):
    _, pianist, (_, _, tips, _, slides), _ = played
    start = pianist.placement.start_y  # left, right
    left, right = slides[..., 0] + start[0], slides[..., 1] + start[1]
    assert np.all(right - left > pianist.placement.min_separation - 0.02)
    # Every right fingertip stays to the right of every left fingertip.
    assert np.all(tips[..., :5, 1].min(-1) > tips[..., 5:, 1].max(-1))


def test_fingers_keep_their_order_within_each_hand(played):
    """Thumb to little finger, a hand's fingered keys run along the keyboard in the hand's
    direction (right hand: up; left hand, mirrored: down): no finger crosses another. A
    finger already holding a sounding key keeps it (`keep_held`), so those keys are left out.
    The black triad is left out too: a thumb kept off its black key (`THUMB_BLACK_COST`) may
    pass under the index finger to the next white key for a step (a thumb-under; the cost
    scored better on the development set than none, `bench/RESULTS.md`)."""
    _, pianist, (pressed, finger_of_key, tips, _, _), _ = played
    key_xy = pianist.key_points[:, :2]
    box = ik_pianist.HOLD_BOX
    chords = 0
    for piece in (0, 1, 2, 3, 4, 5, 7):  # not the black triad (piece 6)
        for step in range(1, STEPS):
            fingers = finger_of_key[piece, step].copy()
            # The IK pianist's rule, on the state the step was planned from.
            held = np.asarray(key_holders.key_holders(
                pianist.key_points, tips[piece, step - 1], pressed[piece, step - 1], box))
            keeps = (fingers >= 0) & held[np.arange(len(fingers)), np.maximum(fingers, 0)]
            fingers[keeps] = -1
            for hand, direction in ((0, 1.0), (1, -1.0)):
                mine = np.nonzero((fingers >= 5 * hand) & (fingers < 5 * hand + 5))[0]
                by_finger = mine[np.argsort(fingers[mine])]
                assert np.all(direction * np.diff(key_xy[by_finger, 1]) > 0), (
                    piece, step, fingers[by_finger], by_finger)
                chords += len(mine) >= 3
    assert chords >= 20  # the triads were fingered as chords


def test_one_compile_for_a_batch_of_envs_and_pieces(played):
    *_, first, again = played
    # The second call (other pieces) reused the trace: assert_max_traces(n=1) would have
    # raised. Pieces swapped, results swapped.
    np.testing.assert_array_equal(first[0][0], again[0][3])


def test_no_goal_and_ten_goal_keys_give_finite_actions(played):
    env, _, (pressed, finger_of_key, tips, actions, _), _ = played
    assert np.all(np.isfinite(actions)) and np.all(np.isfinite(tips))
    assert not pressed[0].any()  # silence: nothing pressed
    assert np.all(finger_of_key[0] == -1)
    assert np.all(actions >= env.action_low - 1e-6) and np.all(actions <= env.action_high + 1e-6)
    # Ten keys at once: each finger takes at most one key.
    for step in range(STEPS):
        fingers = finger_of_key[2, step][finger_of_key[2, step] >= 0]
        assert len(set(fingers.tolist())) == len(fingers)


def test_residual_env_plays_the_ik_action_plus_a_bounded_correction(played):
    """With no tables the IK pianist's action; with a bank of tables the IK pianist's with
    the piece's row for the step; a correction reaches at most `scale` of each range."""
    from mjx_piano.residual import ResidualIKEnv

    env, pianist, *_ = played
    residual = ResidualIKEnv(env, 0.1)
    assert residual.bank is env.bank and residual.action_size == env.action_size
    np.testing.assert_array_equal(residual.action_low, -1.0)
    state = env.reset(jax.random.PRNGKey(0), jnp.int32(1))
    ones = jnp.ones(env.action_size)
    # A bank with a table per piece (an ILC run's): piece 1's lifts every fingertip 2 cm at
    # step 0, in the fingering variant that lets thumbs take black keys.
    tips = len(pianist.tip_site)
    offsets = np.zeros((env.bank.num_pieces, 3, tips, 3), np.float32)
    offsets[1, 0, :, 2] = 0.02
    costs = np.ones(env.bank.num_pieces, np.float32)
    costs[1] = 0.0
    tabled = ResidualIKEnv(env, 0.1, table_steps=3).bind(env.bank.with_ik_tables(offsets, costs))
    ik_action, still, pushed, table_action, on_table = jax.jit(lambda s: (
        pianist.action(s), residual.physical_action(s, 0 * ones),
        residual.physical_action(s, ones), pianist.plan(s, offsets[1, 0], costs[1])[0],
        tabled.physical_action(s, 0 * ones)))(state)
    np.testing.assert_allclose(still, ik_action, atol=1e-6)
    np.testing.assert_allclose(on_table, table_action, atol=1e-6)  # the table's play
    assert np.abs(np.asarray(on_table) - np.asarray(ik_action)).max() > 1e-3  # not the IK's
    reach = 0.1 * (env.action_high - env.action_low) / 2
    assert np.all(np.asarray(pushed) <= np.asarray(ik_action) + reach + 1e-5)
    assert np.any(np.asarray(pushed) > np.asarray(ik_action) + 1e-4)
    with pytest.raises(ValueError, match="residual scale"):
        ResidualIKEnv(env, 0.0)


def test_training_env_config_reaches_the_residual_action_space():
    from train.config import EnvSpec
    from train.envs import make_env

    loaded = make_env(EnvSpec(name="piano", pieces=("etude/c-major-scale-rh",),
                              key_dynamics="kernel", solver_iterations=2, ls_iterations=4,
                              residual_scale=0.2))
    assert loaded.env.scale == 0.2 and float(loaded.env.action_high[0]) == 1.0
    with pytest.raises(ValueError, match="residual_scale"):
        make_env(EnvSpec(name="toy", pieces=("toy-00",), residual_scale=0.2))
