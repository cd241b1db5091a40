"""`pipeline`'s stages: the pool gets its share of `--budget-hours` as its wall-clock budget,
each DAgger round relabels the last generalist's rollouts and trains on every store so far, and
bad settings are refused before anything runs (the stages themselves run in the miniature
test)."""

from __future__ import annotations

import os

from mjx_piano.cli import build_parser, main
from train.pipeline import stage_commands

ARGV = ["pipeline", "--env", "toy", "--pieces", "toy-00", "toy-01"]


def test_the_pool_gets_its_share_of_the_budget(tmp_path):
    args = build_parser().parse_args([*ARGV, "--out", str(tmp_path / "p"),
                                      "--budget-hours", "2", "--pool-share", "0.25"])
    (_, pool), (_, collect), (_, generalist), *_ = stage_commands(args)
    assert pool[pool.index("--budget-hours") + 1] == "0.5"
    assert "--budget-hours" not in collect + generalist
    unbounded = stage_commands(build_parser().parse_args([*ARGV, "--out", str(tmp_path)]))
    assert "--budget-hours" not in unbounded[0][1]


def test_each_dagger_round_relabels_the_last_generalist_and_trains_on_every_store(tmp_path):
    out = str(tmp_path)
    args = build_parser().parse_args([*ARGV, "--out", out, "--dagger-rounds", "2"])
    stages = dict(stage_commands(args))
    assert list(stages) == ["pool", "dataset", "generalist", "dataset_dagger1",
                            "generalist_dagger1", "dataset_dagger2", "generalist_dagger2"]
    at = lambda name: os.path.join(out, name)

    def flag(argv, name, count=1):
        i = argv.index(name)
        return argv[i + 1: i + 1 + count]

    assert "--relabel-learner" not in stages["dataset"]
    assert flag(stages["dataset_dagger1"], "--relabel-learner") == [at("generalist")]
    assert flag(stages["dataset_dagger2"], "--relabel-learner") == [at("generalist_dagger1")]
    assert flag(stages["dataset_dagger2"], "--run") == [at("pool")]
    assert flag(stages["generalist"], "--data", 2) == [at("dataset"), "--env"]
    assert flag(stages["generalist_dagger2"], "--data", 3) == [
        at("dataset"), at("dataset_dagger1"), at("dataset_dagger2")]
    none = dict(stage_commands(build_parser().parse_args([*ARGV, "--out", out,
                                                          "--dagger-rounds", "0"])))
    assert list(none) == ["pool", "dataset", "generalist"]


def test_a_bad_share_is_refused_before_any_stage(tmp_path, capsys):
    out = tmp_path / "p"
    assert main([*ARGV, "--out", str(out), "--budget-hours", "1", "--pool-share", "1.5"]) == 2
    assert "--pool-share must be in (0, 1], got 1.5" in capsys.readouterr().err
    assert not os.path.exists(out)
    assert main([*ARGV, "--out", str(out), "--dagger-rounds", "-1"]) == 2
    assert "--dagger-rounds must be >= 0" in capsys.readouterr().err
