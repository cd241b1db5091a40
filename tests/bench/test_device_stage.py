"""`bench/device_stage.py`: the two carried folders, with the project's files, fit 64 MiB each."""

from __future__ import annotations

import os
import subprocess

import pytest

from bench import device_stage
from bench.device_stage import (CARRY_LIMIT, INSTALL_A, INSTALL_B, INSTALL_ONE, MARGIN,
                                StageError, check, plan_split, project_bytes, stage_one_call)

MB = 10**6
# What `python3 -m bench.device_stage` measured on 2026-11-30: the wheels, warp-lang 1.18.0
# slimmed and xz-compressed, the built repertoire.
MEASURED = {"wheels": 41_500_000, "warp": 79_316_880, "repertoire": 2_711_626}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_measured_parts_and_this_project_fit_two_calls():
    project = project_bytes(ROOT)
    assert 100_000 < project < 8 * 2**20  # the tree travels with every call: keep data out
    plan = plan_split(**MEASURED, project=project)
    size_a, size_b = plan.totals()
    assert max(size_a, size_b) <= CARRY_LIMIT - MARGIN
    assert abs(size_a - size_b) < MB  # balanced: both keep room for files added later
    assert plan.size_a + plan.size_b == (sum(MEASURED.values()) + len(INSTALL_A)
                                         + len(INSTALL_B))


def test_parts_that_cannot_fit_are_refused():
    with pytest.raises(StageError, match="call 2 would carry"):
        plan_split(wheels=40 * MB, warp=100 * MB, repertoire=3 * MB, project=MB)
    with pytest.raises(StageError, match="the wheels"):
        plan_split(wheels=70 * MB, warp=MB, repertoire=MB, project=MB)


def _git_repo(path) -> None:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / ".gitignore").write_text("/.device_a/\n/.device_b/\n")
    (path / "code.py").write_bytes(b"x" * 1000)


def _sized(path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)


def test_check_measures_each_folder_with_the_project(tmp_path):
    _git_repo(tmp_path)
    _sized(tmp_path / ".device_a" / "a.whl", 60 * 2**20)
    _sized(tmp_path / ".device_b" / "cache" / "repertoire.npz", 64 * 2**20)
    lines = check(str(tmp_path))
    assert lines[0].startswith("ok .device_a: 60.0 MiB")
    assert lines[1].startswith("OVER .device_b: 64.0 MiB")
    # Ignored folders do not count as the project's files; untracked, unignored ones do.
    assert project_bytes(str(tmp_path)) == 1000 + len("/.device_a/\n/.device_b/\n")


def test_staged_folders_here_fit_when_there_are_any():
    # On a machine that staged (`python3 -m bench.device_stage`) this measures the real
    # folders; in a fresh clone there are none, and the plan test above stands for them.
    lines = check(ROOT)
    assert all(line.startswith(("ok", "MISSING")) for line in lines), lines


def test_install_scripts_are_valid_shell():
    for script in (INSTALL_A, INSTALL_B, INSTALL_ONE):
        subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    assert "MJX_PIANO_CACHE=$PWD/.device_b/cache" in INSTALL_B
    assert "MJX_PIANO_CACHE=$PWD/.device_a/cache" in INSTALL_ONE and "warp.part" not in INSTALL_ONE
    run = os.path.join(ROOT, "bench", "device_run.sh")  # the device calls' script
    subprocess.run(["bash", "-n", run], check=True)
    assert "source .device_a/install.sh" in open(run).read()
    wrong = subprocess.run(["bash", run, "neither"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "r2|parity" in wrong.stderr  # before installing anything


def test_one_call_stages_the_wheels_and_the_repertoire_and_refuses_what_cannot_fit(
        tmp_path, monkeypatch):
    _git_repo(tmp_path)
    _sized(tmp_path / "w" / "a.whl", 2 * 2**20)
    _sized(tmp_path / "w" / "repertoire.npz", 2**20)
    _sized(tmp_path / ".device_b" / "warp.part2", 10)  # a two-call staging's leftover
    monkeypatch.setattr(device_stage, "_wheels", lambda root: [str(tmp_path / "w" / "a.whl")])
    monkeypatch.setattr(device_stage, "_repertoire", lambda: str(tmp_path / "w" / "repertoire.npz"))
    with pytest.raises(StageError, match="exceed 2.0 MiB"):
        stage_one_call(str(tmp_path), limit=2 * 2**20)
    assert not (tmp_path / ".device_a").exists()  # nothing written
    size = stage_one_call(str(tmp_path))
    assert size == 3 * 2**20 + len(INSTALL_ONE)
    assert sorted(os.listdir(tmp_path / ".device_a")) == ["a.whl", "cache", "install.sh"]
    assert os.listdir(tmp_path / ".device_a" / "cache") == ["repertoire.npz"]
    assert not (tmp_path / ".device_b").exists()
    (line,) = check(str(tmp_path), folders=(".device_a",))
    assert line.startswith("ok .device_a: 3.0 MiB")
