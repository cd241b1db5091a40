"""`bench.ilc_noise`: its table and its refusals (the rollout it plays is `dataset collect`'s,
tested end to end in tests/train/test_ilc.py)."""

from __future__ import annotations

from bench.ilc_noise import main, markdown


def test_the_table_gives_each_clip_table_and_ik_alone_per_noise_their_medians_and_the_gain():
    report = {"pieces": ["bach/x/00@0:100", "etude/c-major-chords", "a/b/c/03"],
              "noise": [0.0, 0.05], "table": [[0.9, 0.8, 0.7], [0.5, 0.6, 0.4]],
              "ik_alone": [[0.6, 0.5, 0.4], [0.3, 0.2, 0.1]]}
    lines = markdown(report).splitlines()
    assert lines[0] == ("| noise | x/00@0:100 | etude/c-major-chords | c/03 | "
                        "median (table / IK alone) | mean gain |")
    assert lines[2] == ("| 0 | 0.900 / 0.600 | 0.800 / 0.500 | 0.700 / 0.400 | 0.800 / 0.500 "
                        "| +0.300 |")
    assert lines[3].endswith("| 0.500 / 0.200 | +0.300 |")


def test_bad_input_and_a_folder_without_a_run_exit_2(tmp_path, capsys):
    assert main(["--run", str(tmp_path), "--envs", "0"]) == 2
    assert main(["--run", str(tmp_path), "--noise", "-0.1"]) == 2
    assert main(["--run", str(tmp_path)]) == 2
    assert "holds no ILC run" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
