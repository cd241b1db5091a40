"""The hand split and the playability rule."""

from __future__ import annotations

import numpy as np

from mjx_piano.music import HandRule, PianoRoll, is_playable, playability_problems
from mjx_piano.music.hands import Segment, assign_hands


def _roll(rows: dict[int, list[int]], right: dict[int, list[int]] | None = None) -> PianoRoll:
    keys = np.zeros((max(rows) + 1, 88), dtype=bool)
    for step, pressed in rows.items():
        keys[step, pressed] = True
    hands = None
    if right is not None:
        hands = np.zeros_like(keys)
        for step, pressed in right.items():
            hands[step, pressed] = True
    return PianoRoll("r", keys, np.zeros(len(keys), bool), right_hand=hands)


def test_rule_with_a_recorded_split():
    assert is_playable(_roll({0: [20, 24, 27, 50, 55]}, {0: [50, 55]}))
    six = _roll({0: [50, 51, 52, 53, 54, 55]}, {0: [50, 51, 52, 53, 54, 55]})
    assert playability_problems(six) == [
        "step 0 (0.00 s): right hand holds 6 keys B4 C5 C#5 D5 D#5 E5"]
    wide = _roll({0: [50, 65]}, {0: [50, 65]})  # 15 semitones in one hand
    assert "right hand holds" in playability_problems(wide)[0]
    crossed = _roll({0: [40, 45]}, {0: [40]})
    assert "hands cross" in playability_problems(crossed)[0]


def test_rule_without_a_split_searches_one():
    assert is_playable(_roll({0: [10, 12, 14, 16, 18, 40, 42, 44, 46, 48]}))
    assert not is_playable(_roll({0: [10, 12, 14, 16, 18, 19, 40, 42, 44, 46, 48]}))
    assert not is_playable(_roll({0: [0, 20, 40]}))  # three clusters, two hands
    assert is_playable(_roll({0: [0, 20, 40]}), HandRule(max_notes=5, max_span=20))


def test_assign_hands_prefers_the_source_then_the_other_hand_then_drops():
    segments = [Segment(0, 10, 20, "left"), Segment(0, 10, 60, "right"),
                Segment(2, 6, 30, "left"),   # 10 above the left hand's key: fits
                Segment(2, 6, 50, "left"),   # too far for the left hand: goes right
                Segment(3, 5, 40, None)]     # above middle C; but 20 from 20, below 50: neither
    placed, dropped = assign_hands(segments, drop=True)
    assert dropped == 1
    assert {(s.key, s.hand) for s in placed} == {(20, "left"), (60, "right"), (30, "left"), (50, "right")}
    kept, none_dropped = assign_hands(segments, drop=False)
    assert none_dropped == 0 and (40, "right") in {(s.key, s.hand) for s in kept}


def test_assign_hands_middle_c_without_a_source():
    placed, _ = assign_hands([Segment(0, 4, 38, None), Segment(0, 4, 39, None)])
    assert [(s.key, s.hand) for s in placed] == [(38, "left"), (39, "right")]
