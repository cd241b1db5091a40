"""Windowed clip names, `NAME@START:STOP`: parsing, cutting, and every loader taking them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mjx_piano.music import load_clip
from mjx_piano.music.clip_window import ClipWindow, cut, parse_window
from train.config import EnvSpec
from train.envs import resolve_pieces

ETUDE = "etude/c-major-chords"  # 80 steps, both hands, sustain


@pytest.mark.parametrize("name, expected", [
    ("bach/bwv356/00", ClipWindow("bach/bwv356/00")),
    ("bach/bwv356/00@0:100", ClipWindow("bach/bwv356/00", 0, 100)),
    ("bach/bwv356/00@:100", ClipWindow("bach/bwv356/00", 0, 100)),
    ("bach/bwv356/00@200:", ClipWindow("bach/bwv356/00", 200, None)),
    ("a@b/c@5:7", ClipWindow("a@b/c", 5, 7)),  # the last '@' starts the window
])
def test_parse_window(name, expected):
    assert parse_window(name) == expected


@pytest.mark.parametrize("name, message", [
    ("x@10:5", "must be after its start"),
    ("x@3:3", "must be after its start"),
    ("x@1-5", "NAME@START:STOP"),
    ("x@-1:5", "NAME@START:STOP"),
    ("@0:5", "NAME@START:STOP"),
])
def test_bad_windows_are_refused(name, message):
    with pytest.raises(ValueError, match=message):
        parse_window(name)


def test_load_clip_cuts_every_array_of_the_clip():
    whole = load_clip(ETUDE)
    part = load_clip(f"{ETUDE}@10:30")
    assert part.name == f"{ETUDE}@10:30"
    assert part.num_steps == 20
    np.testing.assert_array_equal(part.keys, whole.keys[10:30])
    np.testing.assert_array_equal(part.sustain, whole.sustain[10:30])
    np.testing.assert_array_equal(part.right_hand, whole.right_hand[10:30])
    assert part.keys.any() and part.sustain.any()  # the window holds music, not silence
    tail = load_clip(f"{ETUDE}@70:")
    np.testing.assert_array_equal(tail.keys, whole.keys[70:])


def test_a_window_past_the_clip_names_its_length():
    with pytest.raises(ValueError, match="has 80 control steps"):
        load_clip(f"{ETUDE}@0:81")
    with pytest.raises(ValueError, match="has 80 control steps"):
        cut(load_clip(ETUDE), ClipWindow(ETUDE, 80, None), f"{ETUDE}@80:")


def test_training_takes_windowed_names_and_checks_the_clip_name():
    config = EnvSpec(name="piano", pieces=(f"{ETUDE}@0:40", ETUDE))
    assert resolve_pieces(config) == (f"{ETUDE}@0:40", ETUDE)
    with pytest.raises(ValueError, match="close matches: etude/c-major-chords"):
        resolve_pieces(dataclasses.replace(config, pieces=("etude/c-major-chord@0:40",)))
    with pytest.raises(ValueError, match="NAME@START:STOP"):
        resolve_pieces(dataclasses.replace(config, pieces=(f"{ETUDE}@zero:40",)))


def test_the_training_env_plays_the_window():
    from train.envs import _load_roll

    roll = _load_roll(f"{ETUDE}@20:60")
    np.testing.assert_array_equal(roll.keys, load_clip(ETUDE).keys[20:60])


def test_show_describes_a_window(capsys):
    from mjx_piano.cli import main
    from mjx_piano.music.repertoire import clip_info

    info = clip_info(f"{ETUDE}@10:30")
    assert (info["name"], info["steps"], info["split"]) == (f"{ETUDE}@10:30", 20, "etude")
    assert info["notes"] == load_clip(f"{ETUDE}@10:30").num_notes < clip_info(ETUDE)["notes"]
    assert main(["repertoire", "show", f"{ETUDE}@10:30"]) == 0
    assert "20 steps (1.00 s)" in capsys.readouterr().out
    assert main(["repertoire", "show", f"{ETUDE}@0:81"]) == 2
    assert "has 80 control steps" in capsys.readouterr().err
