"""`pipeline`'s stages: the pool gets its share of `--budget-hours` as its wall-clock budget,
each DAgger round relabels the last generalist's rollouts and trains on every store so far, on
the piano env the pool is one ILC run of equally long clips whose last evaluation the report
reads, and bad settings are refused before anything runs (the stages themselves run in the
miniature test)."""

from __future__ import annotations

import json
import os

import pytest

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


PIANO = ["pipeline", "--env", "piano", "--pieces", "etude/c-major-chords",
         "etude/c-major-scale-rh"]  # 80 and 40 control steps


def test_on_the_piano_env_the_pool_is_one_ilc_run_of_equally_long_clips(tmp_path, capsys):
    """`--specialists ilc` (the piano env's default): one `train ilc` run over the clips cut
    to `--clip-steps` (shorter ones left out), the pool's share of the budget as its time
    limit in seconds; `--specialists rl` keeps `train pool`."""
    out = str(tmp_path / "p")
    args = build_parser().parse_args([*PIANO, "--clip-steps", "60", "--budget-hours", "1",
                                      "--pool-share", "0.5", "--max-env-steps", "9000",
                                      "--key-dynamics", "mjx", "--eval-limit", "3",
                                      "--out", out])
    (_, pool), (_, collect), (_, generalist), *_ = stage_commands(args)
    assert generalist[generalist.index("--eval-limit") + 1] == "3"
    assert pool[:2] == ["train", "ilc"]
    assert pool[pool.index("--pieces") + 1: pool.index("--env-steps")] == [
        "etude/c-major-chords@0:60"]
    assert "1 shorter clip(s) left out: etude/c-major-scale-rh" in capsys.readouterr().out
    assert pool[pool.index("--env-steps") + 1] == "9000"
    assert pool[pool.index("--time-limit") + 1] == "1800.0"
    assert pool[pool.index("--key-dynamics") + 1] == "mjx"
    assert collect[collect.index("--run") + 1] == os.path.join(out, "pool")
    whole = stage_commands(build_parser().parse_args([*PIANO, "--clip-steps", "40",
                                                      "--out", out]))[0][1]
    assert whole[whole.index("--pieces") + 1: whole.index("--env-steps")] == [
        "etude/c-major-chords@0:40", "etude/c-major-scale-rh"]  # already 40 steps: uncut
    rl = stage_commands(build_parser().parse_args([*PIANO, "--specialists", "rl",
                                                   "--out", out]))[0][1]
    assert rl[:2] == ["train", "pool"] and rl[rl.index("--preset") + 1] == "cpu-smoke"
    assert stage_commands(build_parser().parse_args([*ARGV, "--out", out]))[0][1][:2] == [
        "train", "pool"]  # the toy env has no IK pianist


@pytest.mark.parametrize("flags, message", [
    ([], "must be equally long; these are [40, 80] control steps: give --clip-steps"),
    (["--clip-steps", "90"], "--clip-steps 90: no piece is that long (the longest has 80"),
    (["--clip-steps", "0"], "--clip-steps must be >= 1"),
    (["--clip-steps", "40", "--slots", "8"], "--slots: settings of the RL pool"),
    (["--specialists", "rl", "--clip-steps", "40"], "--clip-steps is for --specialists ilc"),
])
def test_an_ilc_pool_refuses_what_it_cannot_train_before_any_stage(tmp_path, capsys, flags,
                                                                    message):
    out = tmp_path / "p"
    assert main([*PIANO, *flags, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(out)


def test_the_report_reads_an_ilc_pools_last_evaluation(tmp_path):
    """The report's specialists are an ILC pool's clips at its last evaluation; those at or
    above the target count as solved, none as untrained."""
    from train.pipeline import write_report

    pool = tmp_path / "pool"
    pool.mkdir()
    (pool / "ilc_run.json").write_text(json.dumps({"pieces": ["a@0:9", "b@0:9"]}))
    rows = [(0, "a@0:9", 0.5), (0, "b@0:9", 0.6), (900, "a@0:9", 0.85), (900, "b@0:9", 0.7)]
    with open(pool / "eval.csv", "w") as f:
        f.write("round,env_steps,agent,pieces,wall_s,eval/f1\n")
        f.writelines(f"1,{s},{i % 2},{p},1.0,{v}\n" for i, (s, p, v) in enumerate(rows))
    for name in ("generalist",):
        (tmp_path / name).mkdir()
        (tmp_path / name / "eval_id_ood.json").write_text(json.dumps(
            {"id": {"pieces": ["a@0:9", "b@0:9"], "means": {"eval/f1": 0.4}}}))
    report, figure = write_report(str(tmp_path), ["pool", "dataset", "generalist"], 0.8)
    text = open(report).read()
    assert "Specialists (`pool/`): 2 pieces, 1 reached the target; F1 median 0.775, " \
           "min 0.700, max 0.850." in text
    assert "| id | 2 | 0.400 | 0.775 |" in text and "not trained" not in text
    assert "`pool/learning_curve.png`" in text and os.path.getsize(figure) > 1000
