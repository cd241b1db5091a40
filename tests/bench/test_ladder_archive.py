"""`bench/ladder`: the kept evaluations of the ladder's runs read back, and the committed
report is the one they make today. The archive holds rung folders (`R1`) at its top, for runs
on today's IK pianist, and under `earlier-ik/` for residual runs on an earlier one."""

from __future__ import annotations

import glob
import json
import os
import shutil

import numpy as np
import pytest

from bench.learning_ladder import RECIPES
from bench.learning_report import read_run, write_report

ARCHIVE = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "ladder")
MILESTONES = (100_000, 250_000, 500_000)  # R1's (`bench.learning_ladder.make_rung`)
# Rung folders relative to ARCHIVE (`R1`, `earlier-ik/R1`); a rung folder's parent is the
# ladder folder (`--out`) that reports it.
RUNGS = sorted(os.path.relpath(os.path.dirname(p), ARCHIVE)
               for pattern in ("R*", os.path.join("*", "R*"))
               for p in glob.glob(os.path.join(ARCHIVE, pattern, "")))


def test_the_archive_holds_runs():
    assert RUNGS, f"no rung folder in {ARCHIVE}"


@pytest.mark.parametrize("rung", RUNGS)
def test_every_kept_run_is_a_known_recipe_on_the_rungs_clips(rung):
    folders = sorted(glob.glob(os.path.join(ARCHIVE, rung, "*", "seed*")))
    assert folders
    clips = set()
    for folder in folders:
        run = read_run(folder)
        assert run is not None, f"{folder}: no complete evaluation"
        assert run.recipe in RECIPES, folder
        if RECIPES[run.recipe].learner == "ilc":
            _check_ilc_run(folder, run)
        else:
            _check_policy_run(folder, run)
        assert run.env_steps[0] == 0 and np.all(np.diff(run.env_steps) > 0), folder
        assert np.all(np.diff(run.wall_s) >= 0), folder
        assert np.all((run.f1 >= 0) & (run.f1 <= 1)), folder
        clips.add(run.pieces)
    assert len(clips) == 1, f"{rung}: runs on different clips {clips}"


def _check_policy_run(folder: str, run) -> None:
    """A policy learner's run: its config is the recipe's, on the run's seed and clips."""
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    assert config["run"]["seed"] == run.seed, folder
    assert tuple(config["env"]["pieces"]) == run.pieces, folder
    for field, value in RECIPES[run.recipe].overrides.items():  # it ran the recipe
        if field != "preset":
            section, name = field.split(".", 1)
            assert config[section][name] == value, (folder, field)


def _check_ilc_run(folder: str, run) -> None:
    """An ILC run: its description (`ilc_run.json`) is the recipe's, on the run's seed and
    clips."""
    with open(os.path.join(folder, "ilc_run.json")) as f:
        described = json.load(f)
    assert described["seed"] == run.seed, folder
    assert tuple(described["pieces"]) == run.pieces, folder
    for field, value in RECIPES[run.recipe].overrides.items():  # it ran the recipe
        expected = list(value) if isinstance(value, tuple) else value
        assert described.get(field) == expected, (folder, field)


@pytest.mark.parametrize("rung", RUNGS)
def test_the_committed_report_is_the_one_the_runs_make(rung, tmp_path):
    copy = tmp_path / os.path.basename(rung)
    shutil.copytree(os.path.join(ARCHIVE, rung), copy,
                    ignore=shutil.ignore_patterns("ladder.*"))
    write_report(str(copy), MILESTONES)
    for name in ("ladder.md", "ladder.json"):
        committed = open(os.path.join(ARCHIVE, rung, name)).read()
        assert committed == (copy / name).read_text(), (
            f"bench/ladder/{rung}/{name} is stale: run `python3 -m mjx_piano bench learning "
            f"--rung {os.path.basename(rung)} --report-only --out "
            f"{os.path.dirname(os.path.join('bench/ladder', rung))}`")
