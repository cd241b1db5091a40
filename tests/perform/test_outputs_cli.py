"""The piano-roll PNG, the whole output folder (with and without a renderer), the CLI."""

from __future__ import annotations

import os

import numpy as np
import pytest

from mjx_piano.cli import build_parser
from mjx_piano.perform import outputs
from mjx_piano.perform.outputs import TAIL_S, write_outputs
from train.restore import load_policy, split_checkpoint_path
from mjx_piano.perform.sound import read_wav
from tests.perform.conftest import STEPS


def test_classify_and_counts_by_hand():
    pressed = np.array([[1, 1, 0, 0], [0, 1, 1, 0]], bool)
    goal = np.array([[1, 0, 1, 0], [0, 1, 0, 0]], bool)
    cells = outputs.classify(pressed, goal)
    np.testing.assert_array_equal(cells, [[1, 2, 3, 0], [0, 1, 2, 0]])
    assert outputs.count(pressed, goal) == outputs.RollCounts(correct=2, wrong=2, missed=1)
    assert outputs.title("x", 0.5, outputs.count(pressed, goal)) == (
        "x: F1 = 0.500\n2 correct, 2 wrong, 1 missed key-steps")


def test_piano_roll_png_of_the_scripted_player_has_f1_one(performance, tmp_path):
    path = str(tmp_path / "roll.png")
    title = outputs.plot_roll(path, performance.name, performance.pressed, performance.goal,
                                performance.sustain, performance.goal_sustain, performance.f1,
                                performance.control_hz)
    assert performance.f1 == pytest.approx(1.0)
    assert "F1 = 1.000" in title and "0 wrong, 0 missed" in title
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(path) > 5_000


def test_piano_roll_marks_wrong_and_missed_notes(performance, tmp_path):
    played = performance.pressed.copy()
    played[4, 50] = True  # a wrong key
    played[2, 39] = False  # a missed one
    title = outputs.plot_roll(str(tmp_path / "r.png"), "bad", played, performance.goal,
                                performance.sustain, performance.goal_sustain, 0.8,
                                performance.control_hz)
    assert "F1 = 0.800" in title and "1 wrong, 1 missed" in title


def test_outputs_without_a_renderer_still_write_audio_midi_and_roll(env, performance, tmp_path,
                                                                     no_gl, capsys):
    out = str(tmp_path / "perf")
    written = write_outputs(performance, env.mj_model, out, use_soundfont=False)
    assert written.mp4 is None and written.renderer.startswith("unavailable")
    assert "no video" in capsys.readouterr().err
    for path in (written.wav, written.midi, written.png):
        assert os.path.getsize(path) > 0
    samples, rate = read_wav(written.wav)
    assert samples.size == round((STEPS / performance.control_hz + TAIL_S) * rate)
    assert not os.path.exists(os.path.join(out, "performance.mp4"))


def test_perform_command_is_registered():
    args = build_parser().parse_args(
        ["perform", "--policy", "scripted", "--piece", "etude/c-major-chords", "--out", "d"])
    assert args.policy == "scripted" and args.out == "d" and callable(args.run)


def test_checkpoint_paths_resolve_to_the_run_folder(tmp_path):
    run = str(tmp_path / "run")
    assert split_checkpoint_path(run) == (run, None)
    assert split_checkpoint_path(run + "/checkpoints/") == (run, None)
    assert split_checkpoint_path(run + "/checkpoints/40") == (run, 40)
    with pytest.raises(FileNotFoundError, match="no checkpoints folder"):
        load_policy(run, None)
