"""`mjx-piano bench gpu`: every section at toy sizes, the budget, resume, and valid files at
any moment (fake clocks and measurements for the budget logic; one real tiny run)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bench import gpu_sections
from bench.gpu_report import SECTIONS, SuiteLog, read_records
from bench.gpu_suite import Budget, Suite, gpu_sizes, run_suite, tiny_sizes
from mjx_piano.cli import main

HEADER = {"title": "GPU suite, test", "command": "test", "device": "fake", "versions": "",
          "budget_s": 100, "date": "today"}


def _by_id(out) -> dict[str, dict]:
    return {r["id"]: r for r in read_records(str(out / "results.jsonl"))}


def _well_formed(out) -> str:
    """report.md has the heading and a subsection per section; results.jsonl parses."""
    text = (out / "report.md").read_text()
    assert text.startswith("## GPU suite")
    headings = [line for line in text.splitlines() if line.startswith("### ")]
    assert [h.split()[1] for h in headings] == [f"{i}." for i in range(1, len(SECTIONS) + 1)]
    for line in (out / "results.jsonl").read_text().splitlines():
        json.loads(line)
    return text


def test_tiny_suite_runs_every_section_and_resumes_what_the_budget_cut(tmp_path):
    out = tmp_path / "gpu"
    # 60 s on 2 cores: each MJX compile takes ~6-16 s here, so the last sections may be cut.
    assert main(["bench", "gpu", "--budget-s", "60", "--tiny", "--impl", "jax",
                 "--out", str(out)]) == 0
    first = _by_id(out)
    _well_formed(out)
    assert {r["section"] for r in first.values()} == set(SECTIONS)
    assert all(r["status"] in ("ok", "cut") for r in first.values()), first
    for section in ("device", "env"):
        assert any(r["status"] == "ok" for r in first.values() if r["section"] == section)
    assert all("budget" in r["note"] for r in first.values() if r["status"] == "cut")
    assert (out / "report.png").stat().st_size > 5000

    # Resume with room: only what was cut is measured, and every section ends complete.
    assert main(["bench", "gpu", "--budget-s", "600", "--tiny", "--impl", "jax",
                 "--out", str(out)]) == 0
    second = _by_id(out)
    text = _well_formed(out)
    assert all(r["status"] == "ok" for r in second.values()), second
    for record_id, record in first.items():
        if record["status"] == "ok" and record_id != "device/versions":
            assert second[record_id] == record, record_id  # not measured again
    env = [r for r in second.values() if r["section"] == "env"]
    assert [r["mode"] for r in env].count("physics") == 1
    assert {("task", 2), ("task", 4)} <= {(r["mode"], r["batch"]) for r in env}
    assert any(r["lever"] == "reference" for r in env)  # the hinged-key row
    assert all(r["env_steps_per_s"] > 0 and r["compile_s"] > 0 for r in env)
    specialists = {r["algo"]: r for r in second.values() if r["section"] == "specialist"}
    assert set(specialists) == {"ppo", "sac"}
    for specialist in specialists.values():
        assert specialist["env_steps"] > 0 and len(specialist["curve"]) >= 2
        assert 0.0 <= specialist["best_f1"] <= 1.0
    assert "| toy-00 | sac |" in text
    (transformer,) = [r for r in second.values() if r["section"] == "transformer"]
    assert transformer["size"] == "tiny" and transformer["parameters"] > 10_000
    assert transformer["windows_per_s"] > 0 and transformer["env_steps_per_s"] > 0
    levers = [r for r in second.values() if r["section"] == "levers"]
    assert [r["name"] for r in levers][:1] == ["reference"] and levers[0]["speedup"] == 1.0
    assert "| wall (s) | env steps | eval F1 |" in text and "| reference | jax |" in text


class FakeClock:
    """Seconds that advance only when a fake measurement says so."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _fake_suite(tmp_path, monkeypatch, rates, seconds_per_row=30.0, budget=100.0,
                impls=("jax",)):
    clock = FakeClock()
    calls = []

    def fake_row(suite, impl, lever, mode, batch):
        calls.append((impl, lever, mode, batch))
        clock.now += seconds_per_row
        rate = rates.get((mode, batch), 1000.0)
        if isinstance(rate, Exception):
            raise rate
        return {"status": "ok", "compile_s": 1.0, "env_steps_per_s": rate,
                "physics_steps_per_s": 10 * rate, "diverged_random": 0.0, "overflowed": False}

    monkeypatch.setattr(gpu_sections, "_env_row", fake_row)
    sizes = dataclasses.replace(tiny_sizes(), batches=(1, 2, 4, 8))
    out = tmp_path / "fake"
    suite = Suite(SuiteLog(str(out), {**HEADER, "budget_s": budget}, plot=False),
                  Budget(budget, clock=clock), sizes, impls, str(out))
    return suite, out, calls


def test_budget_cut_mid_section_leaves_valid_files(tmp_path, monkeypatch):
    rates = {("task", b): 100.0 * b for b in (1, 2, 4, 8)}  # rising: the batch keeps growing
    suite, out, calls = _fake_suite(tmp_path, monkeypatch, rates)
    run_suite(suite, ("env",))
    rows = _by_id(out)
    # The env section may start rows until 45 of 100 s: two rows of 30 s fit, then cut.
    assert [c[3] for c in calls] == [1, 2]
    assert [rows[f"env/jax/solver-2/task/{b}"]["status"] for b in (1, 2, 4, 8)] == \
        ["ok", "ok", "cut", "cut"]
    assert rows["env/reference/task/2"]["status"] == "cut"
    text = _well_formed(out)
    assert "cut: budget: 60 of 100 s used" in text
    # A kill in the middle of a line leaves a partial last line: it is ignored when read back.
    with open(out / "results.jsonl", "a") as f:
        f.write('{"section": "env", "id": "half')
    assert len(read_records(str(out / "results.jsonl"))) == len(rows)


def test_first_row_of_a_section_runs_past_its_deadline_but_not_past_the_budget(tmp_path,
                                                                             monkeypatch):
    suite, _, calls = _fake_suite(tmp_path, monkeypatch, {})
    suite.budget.clock.now = 80.0  # past the env section's 45 s, inside the 100 s budget
    run_suite(suite, ("env",))
    assert [c[3] for c in calls] == [1]
    budget = Budget(10.0, clock=FakeClock())
    budget.clock.now = 10.0
    assert not budget.may_start("device", first=True)


def test_sections_a_run_leaves_out_give_their_share_to_the_others():
    alone = Budget(100.0, ("device", "env"), clock=FakeClock())
    assert alone.deadline["env"] == pytest.approx(1.0)
    assert alone.deadline["device"] == pytest.approx(0.05 / 0.45)
    full = Budget(100.0, clock=FakeClock())
    assert full.deadline["env"] == pytest.approx(0.45) and full.deadline["levers"] == 1.0
    assert full.slice_s("specialist") == pytest.approx(30.0)


def test_batch_stops_growing_when_env_steps_per_s_stop_rising(tmp_path, monkeypatch):
    rates = {("task", 1): 100.0, ("task", 2): 200.0, ("task", 4): 205.0, ("task", 8): 900.0}
    suite, out, calls = _fake_suite(tmp_path, monkeypatch, rates, seconds_per_row=0.0)
    run_suite(suite, ("env",))
    assert calls == [("jax", "solver-2", "task", 1), ("jax", "solver-2", "task", 2),
                     ("jax", "solver-2", "task", 4), ("jax", "solver-2", "physics", 4),
                     ("jax", "reference", "task", 2)]
    assert suite.best_task_row()["batch"] == 4
    assert "env/jax/solver-2/task/8" not in _by_id(out)


def test_a_failed_row_is_recorded_and_the_suite_goes_on(tmp_path, monkeypatch):
    rates = {("task", 2): RuntimeError("RESOURCE_EXHAUSTED: out of memory")}
    suite, out, calls = _fake_suite(tmp_path, monkeypatch, rates, seconds_per_row=0.0)
    run_suite(suite, ("env",))
    rows = _by_id(out)
    assert rows["env/jax/solver-2/task/2"]["status"] == "error"
    assert "out of memory" in rows["env/jax/solver-2/task/2"]["note"]
    assert "env/jax/solver-2/task/4" not in rows  # a larger batch would fail the same way
    assert rows["env/jax/solver-2/physics/1"]["status"] == "ok"
    assert "error: RuntimeError: RESOURCE_EXHAUSTED" in _well_formed(out)


def test_missing_warp_is_skipped_then_measured_on_resume(tmp_path, monkeypatch):
    import bench.gpu_suite as gpu_suite

    monkeypatch.setattr(gpu_suite, "missing_impl",
                        lambda impl: "warp-lang is not installed" if impl == "warp" else None)
    monkeypatch.setattr(gpu_sections, "missing_impl", gpu_suite.missing_impl)
    suite, out, calls = _fake_suite(tmp_path, monkeypatch, {}, seconds_per_row=0.0,
                                    impls=("warp", "jax"))
    run_suite(suite, ("env",))
    rows = _by_id(out)
    assert rows["env/warp/solver-2/task/1"]["status"] == "skipped"
    assert all(c[0] == "jax" for c in calls)
    # The next call has warp-lang: the skipped rows are measured, the jax rows are kept.
    monkeypatch.setattr(gpu_sections, "missing_impl", lambda impl: None)
    monkeypatch.setattr(gpu_suite, "missing_impl", lambda impl: None)
    resumed = Suite(SuiteLog(str(out), HEADER, plot=False), Budget(100, clock=FakeClock()),
                    suite.sizes, ("warp", "jax"), str(out))
    calls.clear()
    run_suite(resumed, ("env",))
    assert calls[0] == ("warp", "solver-2", "task", 1)
    assert not any(c[0] == "jax" and c[2] == "task" for c in calls)
    assert _by_id(out)["env/warp/solver-2/task/1"]["status"] == "ok"


@pytest.mark.parametrize("args, message", [
    (["--budget-s", "0"], "--budget-s must be > 0"),
    (["--out", "FILE"], "is a file"),
])
def test_bad_arguments_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    file = tmp_path / "a_file"
    file.write_text("x")
    args = [str(file) if a == "FILE" else a for a in args]
    out = ["--out", str(tmp_path / "new")] if "--out" not in args else []
    try:
        code = main(["bench", "gpu", "--tiny", *args, *out])
    except SystemExit as exit_:  # a bad --out is argparse's own error
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
    assert file.read_text() == "x"


def test_device_specialists_learn_a_correction_to_the_ik_pianist_from_a_zero_start():
    from train.config import SpecialistConfig, apply_overrides, learner_config

    runs = {label: apply_overrides(SpecialistConfig(), overrides)
            for label, overrides in gpu_sizes("bach/bwv112.5/00").specialists}
    assert list(runs) == ["ppo-residual", "sac-residual"]
    for label, config in runs.items():
        assert config.run.algo == label.split("-")[0]
        assert (config.env.name, config.env.residual_scale) == ("piano", 0.1)
        assert config.env.pieces == ("bach/bwv112.5/00",)
        assert learner_config(config).zero_initial_action
        assert learner_config(config).num_envs >= 1024
