"""`key_holders`: one holder per pressed key, the lowest fingertip in the key's box."""

from __future__ import annotations

import numpy as np

from mjx_piano.key_holders import key_holders

BOX = (0.05, 0.0115)
KEYS = np.array([[0.0, 0.0, 0.02], [0.0, 0.0235, 0.02], [0.0, 0.2, 0.02]], np.float32)


def test_the_lowest_of_two_fingertips_on_a_key_holds_it():
    # Fingertips 0 and 1 both rest within key 0's box; fingertip 1 is lower (pushing it).
    tips = np.array([[0.01, 0.004, 0.03], [0.0, -0.008, 0.012], [0.0, 0.1, 0.05]], np.float32)
    held = np.asarray(key_holders(KEYS, tips, np.array([True, False, False]), BOX))
    assert held.tolist() == [[False, True, False], [False, False, False], [False, False, False]]


def test_keys_that_are_up_or_out_of_reach_have_no_holder():
    tips = np.array([[0.0, 0.0, 0.01], [0.06, 0.0235, 0.0], [0.0, 0.185, 0.0]], np.float32)
    # Key 0 is up; key 1's only near fingertip is past the box along the key; key 2's 1.5 cm
    # along the keyboard (box 1.15 cm).
    held = np.asarray(key_holders(KEYS, tips, np.array([False, True, True]), BOX))
    assert not held.any()


def test_a_fingertip_may_hold_two_keys_but_a_key_has_one_holder():
    # A white key and its black neighbour 1.2 cm apart along the keyboard: a fingertip between
    # them lies in both boxes.
    keys = KEYS.copy()
    keys[1, 1] = 0.012
    tips = np.array([[0.0, 0.006, 0.0], [0.0, 0.006, 0.01], [0.0, 0.5, 0.0]], np.float32)
    held = np.asarray(key_holders(keys, tips, np.array([True, True, False]), BOX))
    assert held.sum(axis=1).tolist() == [1, 1, 0]
    assert held[0, 0] and held[1, 0]
