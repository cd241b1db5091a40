"""A trained specialist, loaded from its checkpoint, replays its own evaluation in `perform` and,
from a pool's library, in `play` (slow: trains)."""

from __future__ import annotations

import csv
import re
import shutil

import pytest

from mjx_piano.cli import main
from mjx_piano.perform.rollout import perform
from train.restore import load_policy

PIECE = "etude/c-major-scale-rh"


@pytest.mark.slow
def test_checkpoint_policy_replays_the_runs_evaluation_f1(tmp_path, capsys):
    run = str(tmp_path / "run")
    code = main(["train", "specialists", "--env", "piano-keys", "--pieces", PIECE,
                 "--iterations", "2", "--envs", "4", "--unroll", "8", "--minibatches", "2",
                 "--epochs", "1", "--eval-every", "0", "--checkpoint-every", "0",
                 "--no-progress", "--out", run])
    assert code == 0
    with open(f"{run}/eval.csv") as f:
        last = list(csv.DictReader(f))[-1]
    loaded = load_policy(f"{run}/checkpoints/{last['iteration']}", PIECE)
    assert loaded.piece_name == PIECE and loaded.agent == 0
    performance = perform(loaded.env, loaded.piece, PIECE, action_fn=loaded.action_fn)
    # The deterministic policy in the same env: the same episode as the run's evaluation.
    assert performance.f1 == pytest.approx(float(last["eval/f1"]), abs=1e-5)
    with pytest.raises(ValueError, match="did not train on"):
        load_policy(run, "etude/d-major-chords")
    # A pool's library holding the run as its entry 0: `play` finds the piece's entry and
    # plays it in parallel envs, deterministically, to the run's evaluation F1.
    shutil.copytree(run, tmp_path / "pool" / "library" / "00000")
    capsys.readouterr()
    assert main(["play", "--policy", str(tmp_path / "pool"), "--piece", PIECE,
                 "--envs", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"piece {PIECE!r}: " in printed and "x 2 envs" in printed, printed
    f1 = float(re.search(r"F1 ([0-9.]+)", printed).group(1))
    assert f1 == pytest.approx(float(last["eval/f1"]), abs=5e-4), printed
    assert main(["play", "--policy", str(tmp_path / "pool"), "--piece",
                 "etude/d-major-chords"]) == 2
    assert "has no specialist of 'etude/d-major-chords'" in capsys.readouterr().err
