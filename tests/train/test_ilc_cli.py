"""`mjx-piano train ilc`: bad input is refused before anything is written (exit 2); a run
trains, evaluates, plots and summarizes; the same command resumes it, a longer budget
continues it, and other fingerings on the same folder are refused."""

from __future__ import annotations

import csv
import os

import pytest

from mjx_piano.cli import main

CLIP = "etude/c-major-chords@0:6"
FLAGS = ["--pieces", CLIP, "--fingerings", "1.0", "--no-progress"]


def _rows(out) -> list[dict]:
    with open(os.path.join(out, "eval.csv"), newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("argv, message", [
    (["--pieces", "etude/c-major-chords", "etude/c-major-chords@0:40"], "equally long"),
    (["--pieces", "etude/no-such-etude"], "unknown clip"),
    (["--env-steps", "0"], "--env-steps must be >= 1"),
    (["--fingerings", "1.0", "1.0"], "repeats a cost"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert main(["train", "ilc", *argv, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_a_run_trains_resumes_continues_and_refuses_other_fingerings(tmp_path, capsys):
    out = str(tmp_path / "run")
    per_round = 6 * 6  # 6 candidates x 6 steps, one fingering
    assert main(["train", "ilc", *FLAGS, "--env-steps", str(2 * per_round), "--out", out]) == 0
    printed = capsys.readouterr().out
    rows = _rows(out)
    assert [int(r["env_steps"]) for r in rows] == [0, 2 * per_round]
    assert all(r["pieces"] == CLIP for r in rows)
    assert f"| {CLIP} | {float(rows[-1]['eval/f1']):.3f} |" in printed
    assert os.path.getsize(os.path.join(out, "learning_curve.png")) > 10_000
    assert f"perform --policy {out} --piece '{CLIP}'" in printed

    assert main(["train", "ilc", *FLAGS, "--env-steps", str(2 * per_round), "--out", out]) == 0
    assert _rows(out) == rows  # the budget is spent: nothing more
    assert main(["train", "ilc", *FLAGS, "--env-steps", str(3 * per_round), "--out", out]) == 0
    assert [int(r["env_steps"]) for r in _rows(out)] == [0, 2 * per_round, 3 * per_round]

    capsys.readouterr()
    assert main(["train", "ilc", "--pieces", CLIP, "--fingerings", "1.0", "0.0",
                 "--out", out]) == 2
    assert "other thumb_black_costs" in capsys.readouterr().err
    assert len(_rows(out)) == 3
