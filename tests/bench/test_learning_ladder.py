"""`mjx-piano bench learning`: the R1 rule, run configs, the report, and a whole toy ladder run
that resumes."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from bench import learning_ladder
from bench.learning_ladder import RECIPES, Recipe, Rung, r1_clips, run_config
from bench.learning_report import read_rung, write_report
from mjx_piano.cli import main
from mjx_piano.music.roll import PianoRoll


def _roll(name: str, steps: int, right_onsets: int, left_onsets: int) -> PianoRoll:
    """A roll whose first 100 steps strike `right_onsets` notes on C5 and `left_onsets` on C3
    (one every other step; repeated notes are released in between)."""
    keys = np.zeros((steps, 88), bool)
    right = np.zeros_like(keys)
    for i in range(right_onsets):
        keys[2 * i, 51] = right[2 * i, 51] = True
    for i in range(left_onsets):
        keys[2 * i, 27] = True
    return PianoRoll(name, keys, np.zeros(steps, bool), right_hand=right)


def test_r1_rule_filters_then_takes_the_density_quantiles(monkeypatch):
    import mjx_piano.music as music

    # Densities 3+3 .. 10+10 onsets in eight qualifying clips, listed out of order, plus three
    # that the rule drops: too short, one hand silent, a hand with only 2 onsets.
    rolls = {f"c{n}": _roll(f"c{n}", 550, n, n) for n in (7, 3, 10, 5, 4, 9, 6, 8)}
    rolls.update({"short": _roll("short", 549, 20, 20), "right-only": _roll("r", 550, 20, 0),
                  "thin-left": _roll("t", 550, 20, 2)})
    monkeypatch.setattr(music, "list_clips", lambda split: list(rolls))
    monkeypatch.setattr(music, "load_clip", lambda name: rolls[name])
    # Sorted by density: c3 c4 c5 c6 c7 c8 c9 c10; quantile indices floor(q * 8) = 1, 3, 5, 7.
    assert r1_clips() == ("c4@0:100", "c6@0:100", "c8@0:100", "c10@0:100")
    assert r1_clips(40)[0] == "c4@0:40"
    monkeypatch.setattr(music, "list_clips", lambda split: ["c3", "c4", "short"])
    with pytest.raises(ValueError, match="only 2 train clips qualify"):
        r1_clips()


def test_run_config_is_the_full_task_with_the_recipe_and_the_rung_budget():
    rung = Rung("R1", ("a@0:100", "b@0:100"), 500_000, (100_000,), 16_384)
    config = run_config(rung, RECIPES["ppo-residual"], 3, "/tmp/x", 500_000, 60.0, False)
    assert (config.env.name, config.env.key_dynamics, config.env.solver_iterations,
            config.env.ls_iterations) == ("piano", "kernel", 2, 4)
    assert config.env.residual_scale == 0.1 and config.env.pieces == rung.pieces
    assert (config.ppo.num_envs, config.ppo.unroll_length, config.ppo.num_minibatches) == \
        (64, 32, 4)
    assert config.ppo.policy_hidden == (256, 256, 256)  # the gpu preset's networks
    assert config.run.iterations == 245  # ceil(500k / 2048)
    assert (config.run.eval_every, config.run.agents, config.run.seed) == (8, 2, 3)
    assert config.run.time_limit_s == 60.0
    assert run_config(rung, RECIPES["ppo"], 0, "/tmp/x", 500_000, 0, False).env.residual_scale \
        == 0.0
    sac = run_config(rung, RECIPES["sac-residual"], 0, "/tmp/x", 500_000, 0, False)
    assert (sac.run.algo, sac.env.residual_scale, sac.env.key_dynamics) == ("sac", 0.1, "kernel")
    assert sac.run.iterations == 3_907 and sac.run.eval_every == 128  # 128 env steps each
    assert not sac.sac.zero_initial_action and not config.ppo.zero_initial_action
    zero = {name: run_config(rung, RECIPES[name], 0, "/tmp/x", 500_000, 0, False)
            for name in ("ppo-residual-zero", "ppo-residual-zero-5pct", "sac-residual-zero-30pct")}
    assert zero["ppo-residual-zero"].env.residual_scale == 0.1
    assert zero["ppo-residual-zero"].ppo.zero_initial_action
    assert zero["ppo-residual-zero-5pct"].env.residual_scale == 0.05
    assert zero["ppo-residual-zero-5pct"].ppo.num_envs == 64
    recall = run_config(rung, RECIPES["ppo-residual-zero-recall"], 0, "/tmp/x", 500_000, 0,
                        False)
    assert recall.reward.no_wrong_key_share == 0.25 and recall.ppo.zero_initial_action
    sac_zero = zero["sac-residual-zero-30pct"]
    assert (sac_zero.run.algo, sac_zero.env.residual_scale, sac_zero.sac.zero_initial_action) \
        == ("sac", 0.3, True)


def _write_eval(folder, rows: list[tuple[int, float, list[float]]], pieces=("p0", "p1", "p2")):
    folder.mkdir(parents=True)
    with open(folder / "eval.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["iteration", "env_steps", "agent", "pieces", "wall_s",
                                    "eval/f1"])
        writer.writeheader()
        for i, (steps, wall, f1s) in enumerate(rows):
            for agent, f1 in enumerate(f1s):
                writer.writerow({"iteration": i, "env_steps": steps, "agent": agent,
                                 "pieces": pieces[agent], "wall_s": wall, "eval/f1": f1})


def test_report_reads_medians_at_the_first_evaluation_past_each_milestone(tmp_path):
    rung = tmp_path / "R1"
    _write_eval(rung / "ppo" / "seed0", [(0, 0, [0, 0, 0]), (90_000, 50, [0.1, 0.5, 0.3]),
                                         (110_000, 60, [0.2, 0.6, 0.4]),
                                         (260_000, 130, [0.9, 0.1, 0.5])])
    _write_eval(rung / "ppo" / "seed1", [(0, 0, [0, 0, 0]), (100_000, 30, [0.65, 0.25, 0.45])])
    # A run cut short: a half-written evaluation (one agent) is not read.
    _write_eval(rung / "sac" / "seed1", [(0, 0, [0, 0, 0]), (120_000, 40, [0.8, 0.9, 0.7])])
    with open(rung / "sac" / "seed1" / "eval.csv", "a", newline="") as f:
        f.write("2,240000,0,p0,80,0.95\n")
    paths = write_report(str(rung), (100_000, 250_000, 500_000))
    runs = read_rung(str(rung))
    assert [(r.recipe, r.seed) for r in runs] == [("ppo", 0), ("ppo", 1), ("sac", 1)]
    summary = json.loads((rung / "ladder.json").read_text())
    ppo = summary[0]["milestones"]
    # The window of 100k: the evaluations at 90k and 110k (75k up to the one read).
    window = {k: ppo["100000"].pop(k) for k in ("window_median_f1", "window_f1")}
    assert ppo["100000"] == {"env_steps": 110_000, "wall_s": 60.0, "median_f1": 0.4,
                             "f1": [0.2, 0.6, 0.4]}
    assert window["window_median_f1"] == pytest.approx(0.35)
    assert window["window_f1"] == pytest.approx([0.15, 0.55, 0.35])
    assert ppo["250000"]["median_f1"] == 0.5 and ppo["500000"] is None
    assert ppo["250000"]["window_f1"] == [0.9, 0.1, 0.5]
    assert summary[2]["last_env_steps"] == 120_000
    table = (rung / "ladder.md").read_text()
    assert summary[0]["best_median_f1"] == 0.5 and summary[0]["best_env_steps"] == 260_000
    assert "| ppo | 0 | 0.000 | 0.400 | 0.500 | - | 0.500 (260,000) | 0.90 / 0.10 / 0.50 | " \
        "260,000 | 130 |" in table
    assert "| sac | 1 | 0.000 | 0.800 | - | - | 0.800 (120,000) | 0.80 / 0.90 / 0.70 | " \
        "120,000 | 40 |" in table
    # Seeds together: 100k's window means (0.35 and 0.45) averaged; 250k only seed 0 reached.
    assert "| ppo | 0, 1 | 0.400 | - | - | 0.40 / 0.40 / 0.40 |" in table
    assert "| sac | 1 | 0.800 | - | - | 0.80 / 0.90 / 0.70 |" in table
    assert paths[2].endswith("ladder.png") and (rung / "ladder.png").stat().st_size > 5000


def test_bad_input_exits_2_before_anything_runs(tmp_path, capsys):
    out = str(tmp_path / "ladder")
    assert main(["bench", "learning", "--rung", "R0", "--recipe", "nope", "--out", out]) == 2
    assert "unknown recipe" in capsys.readouterr().err
    assert main(["bench", "learning", "--rung", "R9", "--recipe", "ppo", "--out", out]) == 2
    assert "unknown rung 'R9'" in capsys.readouterr().err
    assert main(["bench", "learning", "--rung", "R0", "--out", out]) == 2
    assert not (tmp_path / "ladder").exists()


def test_ik_ilc_refuses_clips_of_different_lengths_before_anything_runs(tmp_path, capsys,
                                                                        monkeypatch):
    from bench import learning_ladder

    uneven = Rung("R1", ("etude/a-major-chords", "etude/a-major-scale-rh"), 1_000, (500,), 500)
    monkeypatch.setattr(learning_ladder, "make_rung", lambda name: uneven)
    out = str(tmp_path / "ladder")
    assert main(["bench", "learning", "--recipe", "ik-ilc", "--out", out]) == 2
    assert "ik-ilc needs clips of one length; R1 has [40, 80]" in capsys.readouterr().err
    assert not (tmp_path / "ladder").exists()
    assert RECIPES["ik-ilc"].learner == "ilc" and RECIPES["ppo"].learner == "rl"


def test_the_wide_segment_recipe_is_the_segment_search_with_24_random_candidates():
    from bench.learning_ladder import ilc_config

    narrow = ilc_config(RECIPES["ik-ilc-fingerings-segments"], 3)
    wide = ilc_config(RECIPES["ik-ilc-fingerings-segments-wide"], 3)
    assert (narrow.random_candidates, narrow.group) == (1, 7)
    assert (wide.random_candidates, wide.group, wide.seed) == (24, 30, 3)
    assert (wide.horizon, wide.thumb_black_costs) == (narrow.horizon, narrow.thumb_black_costs)


def test_a_toy_ladder_runs_reports_and_resumes(tmp_path, monkeypatch, capsys):
    # The ladder's own code end to end, on the toy env (the piano runs are measured in the
    # background and reported in bench/RESULTS.md).
    toy = {"preset": "cpu-smoke", "ppo.num_envs": 16, "ppo.unroll_length": 8,
           "ppo.num_minibatches": 2, "ppo.num_epochs": 1}
    monkeypatch.setattr(learning_ladder, "TASK", {"env.name": "toy"})
    monkeypatch.setitem(RECIPES, "toy", Recipe("toy", "toy PPO", toy))
    monkeypatch.setattr(learning_ladder, "make_rung", lambda name: Rung(
        name, ("toy-00", "toy-01"), 1_280, (640, 1_280), 640))
    out = tmp_path / "ladder"
    argv = ["bench", "learning", "--rung", "R0", "--recipe", "toy", "--out", str(out),
            "--no-progress"]
    assert main([*argv, "--env-steps", "640"]) == 0
    first = read_rung(str(out / "R0"))[0]
    assert list(first.env_steps) == [0, 640] and first.f1.shape == (2, 2)
    assert "(fresh, 5 iterations)" in capsys.readouterr().out
    assert main(argv) == 0  # resumes to the rung's 1,280 env steps
    assert "(resuming, 10 iterations)" in capsys.readouterr().out
    second = read_rung(str(out / "R0"))[0]
    assert list(second.env_steps) == [0, 640, 1_280]
    np.testing.assert_array_equal(second.f1[:2], first.f1)
    table = (out / "R0" / "ladder.md").read_text()
    assert "| toy | 0 |" in table and "1,280" in table


def test_a_recipe_on_the_segment_search_corrects_that_runs_tables_and_needs_it(
        tmp_path, capsys, monkeypatch):
    """`*-residual-zero-segments`: the segment search's run of the same seed and --out is the
    tables' folder; without it the ladder exits 2 naming the run to make first, and writes
    nothing."""
    rung = Rung("R1", ("etude/c-major-chords", "etude/eb-major-chords"), 1_000, (500,), 500)
    for learner in ("ppo", "sac"):
        recipe = RECIPES[f"{learner}-residual-zero-segments"]
        config = run_config(rung, recipe, 1, "/tmp/x", 1_000, 0, False, "rel/seed1")
        assert config.env.residual_tables == os.path.abspath("rel/seed1")
        assert config.env.residual_scale == 0.1 and config.run.algo == learner
        assert getattr(config, learner).zero_initial_action
        assert recipe.tables == "ik-ilc-fingerings-segments"
    small = run_config(rung, RECIPES["sac-residual-zero-segments-1pct"], 1, "/tmp/x", 1_000, 0,
                       False, "rel/seed1")
    assert small.env.residual_scale == 0.01
    assert small.env.residual_tables == config.env.residual_tables
    assert run_config(rung, RECIPES["ppo-residual-zero"], 1, "/tmp/x", 1_000, 0, False,
                      "rel/seed1").env.residual_tables == ""
    monkeypatch.setattr(learning_ladder, "make_rung", lambda name: rung)
    out = tmp_path / "ladder"
    assert main(["bench", "learning", "--recipe", "ppo-residual-zero-segments", "--seed", "2",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds no ILC run" in err
    assert "run --recipe ik-ilc-fingerings-segments --seed 2 on this --out first" in err
    assert not out.exists()
