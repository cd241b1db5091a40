"""Hand placement: which hand takes which coming keys, and where the forearm slides go
(numbers worked out by hand on a toy keyboard of evenly spaced keys)."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from mjx_piano.hand_placement import REACH_CENTRE, Placement, place_hands

KEYS = 40
PLACEMENT = Placement(key_y=np.linspace(-0.46, 0.46, KEYS).astype(np.float32),  # 2.36 cm apart
                      start_y=np.array([-0.15, 0.15], np.float32),
                      low=np.array([-0.45, -0.75], np.float32),
                      high=np.array([0.75, 0.45], np.float32), min_separation=0.11)


def _window(*keys: int) -> jnp.ndarray:
    """One goal row [1, K] with `keys` sounding."""
    return jnp.zeros((1, KEYS), bool).at[0, jnp.array(keys)].set(True)


def _absolute(target) -> np.ndarray:
    return np.asarray(target) + PLACEMENT.start_y


def test_no_coming_keys_leaves_the_hands_where_they_are():
    current = jnp.array([0.02, -0.03])
    target, _, _ = place_hands(PLACEMENT, jnp.zeros((1, KEYS), bool), current)
    np.testing.assert_allclose(target, current, atol=1e-6)


def test_keys_at_both_ends_are_split_and_each_hand_centres_on_its_own():
    low, high = (2, 3, 4), (35, 36, 37)
    target, right, _ = place_hands(PLACEMENT, _window(*low, *high), jnp.zeros(2))
    assert not np.asarray(right)[list(low)].any() and np.asarray(right)[list(high)].all()
    y = PLACEMENT.key_y
    # The left hand's reach is centred REACH_CENTRE above its slide, the right's below.
    np.testing.assert_allclose(_absolute(target), [y[3] - REACH_CENTRE, y[36] + REACH_CENTRE],
                               atol=1e-6)


def test_a_few_keys_near_one_hand_go_to_that_hand_and_the_other_stays():
    current = jnp.zeros(2)
    target, right, _ = place_hands(PLACEMENT, _window(24, 25), current)  # y ~ +0.11, +0.13
    assert np.asarray(right)[[24, 25]].all()
    assert abs(float(target[0])) < 1e-6  # the left hand does not move


def test_hands_keep_their_forearms_apart_when_the_keys_crowd_together():
    # Keys in the middle, hands already close: whatever the split, the slides end at least
    # the forearms' clearance apart.
    for keys in ((19, 20), (16, 18, 21, 23), (10, 29)):
        target, _, _ = place_hands(PLACEMENT, _window(*keys), jnp.array([0.12, -0.12]))
        left_y, right_y = _absolute(target)
        assert right_y - left_y >= PLACEMENT.min_separation - 1e-6, keys


def test_a_hand_with_no_keys_makes_way_for_the_one_that_plays():
    # One key between the hands, which stand close: the idle hand, in the way, takes the whole
    # push, so the playing one still centres its reach on the key.
    target, right, _ = place_hands(PLACEMENT, _window(20), jnp.array([0.12, -0.12]))
    playing = int(np.asarray(right)[20])  # 0 left, 1 right
    expected = float(PLACEMENT.key_y[20]) + (REACH_CENTRE if playing else -REACH_CENTRE)
    absolute = _absolute(target)
    np.testing.assert_allclose(absolute[playing], expected, atol=1e-6)
    assert absolute[1] - absolute[0] >= PLACEMENT.min_separation - 1e-6


WIDE = dataclasses.replace(PLACEMENT, wide_span=0.15, wide_centre=-0.05)


def test_an_octave_chord_puts_its_hand_in_the_wide_pose_centred_for_it():
    # Right hand: keys 26 and 33 sound together, 0.165 m apart (> wide_span); the left hand
    # plays one key. The right slide is centred for the wide pose, the left as usual.
    target, right, wide = place_hands(WIDE, _window(5, 26, 33), jnp.zeros(2))
    assert np.asarray(right)[[26, 33]].all() and not np.asarray(right)[5]
    np.testing.assert_array_equal(wide, [False, True])
    y = WIDE.key_y
    np.testing.assert_allclose(_absolute(target), [y[5] - REACH_CENTRE,
                                                   (y[26] + y[33]) / 2 + WIDE.wide_centre],
                               atol=1e-6)


def test_the_same_keys_one_after_the_other_keep_the_usual_pose():
    # An arpeggio: the keys of that octave in different rows are no chord.
    rows = jnp.concatenate([_window(5, 26), _window(5, 29), _window(5, 33)])
    target, _, wide = place_hands(WIDE, rows, jnp.zeros(2))
    np.testing.assert_array_equal(wide, [False, False])
    y = WIDE.key_y
    np.testing.assert_allclose(_absolute(target)[1], (y[26] + y[33]) / 2 + REACH_CENTRE,
                               atol=1e-6)


def test_the_left_hand_mirrors_the_wide_centre():
    target, right, wide = place_hands(WIDE, _window(3, 10, 36), jnp.zeros(2))  # 0.165 m apart
    assert not np.asarray(right)[[3, 10]].any()
    np.testing.assert_array_equal(wide, [True, False])
    y = WIDE.key_y
    np.testing.assert_allclose(_absolute(target)[0], (y[3] + y[10]) / 2 - WIDE.wide_centre,
                               atol=1e-6)
