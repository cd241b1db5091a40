"""`mjx-piano train ilc`: bad input is refused before anything is written (exit 2). A run
end to end is in tests/train/test_ilc.py (it shares that file's compiled rollouts)."""

from __future__ import annotations

import pytest

from mjx_piano.cli import main

def test_a_folder_of_another_kind_of_run_is_refused(tmp_path, capsys):
    (tmp_path / "manifest.json").write_text("{}")  # a dataset store
    assert main(["train", "ilc", "--out", str(tmp_path)]) == 2
    assert "holds a dataset run" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


@pytest.mark.parametrize("given, horizon", [
    ({}, 20), ({"verify": True}, 0), ({"train_noise": 0.01}, 0), ({"horizon": 0}, 0),
    ({"horizon": 7}, 7)])
def test_the_segment_search_is_the_default_but_for_whole_clip_searches(given, horizon):
    import argparse

    from train.ilc_cli import _horizon

    args = argparse.Namespace(**{"horizon": None, "verify": False, "train_noise": 0.0, **given})
    assert _horizon(args) == horizon


@pytest.mark.parametrize("argv, message", [
    (["--pieces", "etude/c-major-chords", "etude/c-major-chords@0:40"], "equally long"),
    (["--pieces", "etude/no-such-etude"], "unknown clip"),
    (["--env-steps", "0"], "--env-steps must be >= 1"),
    (["--fingerings", "1.0", "1.0"], "repeats a cost"),
    (["--train-noise", "-0.01"], "train_noise must be >= 0"),
    (["--train-noise", "0.01", "--verify"], "verify is for a deterministic search"),
    (["--horizon", "-1"], "horizon must be >= 0"),
    (["--horizon", "20", "--verify"], "goes with neither train_noise nor verify"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert main(["train", "ilc", *argv, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_the_summary_gives_each_clip_its_last_f1_and_its_first_evaluation_at_the_target(
        tmp_path):
    from train.ilc_cli import plot_curve, summary_table
    from train.ilc_store import EVAL_FIELDS

    rows = [(0, 0, 0, "a", 0.0, 0.70, 0.8, 0.6, 1.0), (0, 0, 1, "b", 0.0, 0.50, 0.6, 0.4, 1.0),
            (10, 960, 0, "a", 30.0, 0.82, 0.9, 0.7, 0.0),
            (10, 960, 1, "b", 30.0, 0.60, 0.7, 0.5, 1.0),
            (20, 1920, 0, "a", 61.0, 0.79, 0.9, 0.7, 0.0),
            (20, 1920, 1, "b", 61.0, 0.70, 0.8, 0.6, 1.0)]
    with open(tmp_path / "eval.csv", "w") as f:
        f.write(",".join(EVAL_FIELDS) + "\n")
        f.writelines(",".join(str(v) for v in row) + "\n" for row in rows)
    table = summary_table(str(tmp_path), 0.8).splitlines()
    assert table[2] == "| a | 0.790 | 0.900 | 0.700 | 0 | 960 | 30 |"
    assert table[3] == "| b | 0.700 | 0.800 | 0.600 | 1 | not yet | not yet |"
    assert len(table) == 4
    assert plot_curve(str(tmp_path)).endswith("learning_curve.png")
