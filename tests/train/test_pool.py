"""The specialist pool (`train pool`): slots refilled as pieces finish, every piece written to
the library as a one-agent run equal to a specialists run of its piece, and a crash mid-pool resumed to the
same library. Toy env, the tests' smoke configuration (its compiled trainer is shared)."""

from __future__ import annotations

import csv
import json
import os

import jax
import numpy as np
import pytest

from mjx_piano.cli import main
from train.checkpoint import Checkpointer
from train.dataset.collect import CollectConfig, collect
from train.library import library_entry
from train.loop import train_specialists
from train.pool import plan_pool, run_pool
from train.restore import load_specialists

from tests.train.conftest import smoke

PIECES = "toy-00,toy-01,toy-02,toy-03,toy-04"
EVERY = 5  # iterations per round
STEPS_PER_ITERATION = 32 * 16  # cpu-smoke: envs x unroll
BUDGET = 30 * STEPS_PER_ITERATION  # six rounds
TARGET = 0.55


def _config(out: str):
    return smoke(out, env__pieces=PIECES, run__eval_every=EVERY, run__target_f1=TARGET,
                 run__seed=10)


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("pool"))
    slots, stopped_by = run_pool(plan_pool(_config(out), 2, BUDGET))
    return out, slots, stopped_by


def test_slots_are_refilled_as_pieces_finish_and_every_piece_is_written(pool_run):
    out, slots, stopped_by = pool_run
    results = slots.results
    assert stopped_by is None and slots.piece == [-1, -1]
    assert sorted(r["piece"] for r in results) == PIECES.split(",")
    for r in results:
        assert (r["status"] == "solved") == (r["f1"] >= TARGET)
        assert r["status"] == "solved" or r["env_steps"] >= BUDGET
        assert r["seed"] == 10 + r["index"] and r["iterations"] % EVERY == 0
    # Pieces leave at different rounds (solved or out of budget: which one a piece near the
    # target meets moves with the machine's float rounding), the quickest first.
    assert "solved" in {r["status"] for r in results}
    iterations = [r["iterations"] for r in results]
    assert iterations[0] == min(iterations) < max(iterations)
    # A refilled slot starts its piece when another piece leaves: the pool finished in fewer
    # rounds than the pieces one after another, and more than the longest piece alone.
    assert max(iterations) // EVERY <= slots.rounds < sum(iterations) // EVERY
    with open(os.path.join(out, "pieces.csv")) as f:
        table = list(csv.DictReader(f))
    assert [row["piece"] for row in table] == [r["piece"] for r in results]
    assert all(row["status"] in ("solved", "budget") for row in table)


def test_pieces_that_miss_the_target_leave_at_their_budget_and_are_written(tmp_path):
    """An unreachable target: every piece trains its whole budget and is written with status
    'budget' (the compiled trainer is the module's)."""
    config = smoke(str(tmp_path), env__pieces="toy-00,toy-01,toy-02", run__eval_every=EVERY,
                   run__target_f1=1.01, run__seed=10)
    budget = 2 * EVERY * STEPS_PER_ITERATION
    slots, stopped_by = run_pool(plan_pool(config, 2, budget))
    assert stopped_by is None and slots.piece == [-1, -1]
    assert [r["status"] for r in slots.results] == ["budget"] * 3
    assert all(r["env_steps"] == budget and os.path.isdir(r["folder"]) for r in slots.results)
    # The third piece waited for a slot: the pool took two pieces' rounds, not three.
    assert slots.rounds == 2 * 2


def test_a_library_specialist_equals_a_specialists_run_of_its_piece(pool_run, tmp_path):
    out, slots, _ = pool_run
    # The last piece to start went through a refilled slot.
    result = max(slots.results, key=lambda r: r["index"])
    assert result["index"] >= 2
    library = load_specialists(result["folder"])
    assert library.config.env.pieces == (result["piece"],) and library.agents == 1
    # `train specialists` on the piece with its seed and iteration count, its agent in a batch
    # of two as in the pool's two slots: float32 sums over batches of other sizes drift apart
    # as PPO iterates (one agent against two: 1e-8 after 1 iteration, 4e-6 after 10, 3e-3
    # after 15 on this toy piece), so the same batch is what makes the comparison exact.
    pieces = result["piece"] + ",toy-00"
    alone = train_specialists(smoke(str(tmp_path / "alone"), env__pieces=pieces,
                                    run__seed=result["seed"],
                                    run__iterations=result["iterations"],
                                    run__eval_every=0, run__checkpoint_every=0))
    reference = load_specialists(str(tmp_path / "alone"))
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(a, b[:1]),
                           (library.policy, library.normalizer),
                           (reference.policy, reference.normalizer))
    assert alone.final_eval["eval/f1"][0] == pytest.approx(result["f1"], abs=1e-6)
    # The library entry is a specialists run like any: a dataset is collected from it.
    store = collect(CollectConfig(run=result["folder"], out=str(tmp_path / "store"),
                                  rollouts=2, chunk_envs=2, progress=False))
    assert store.chunks_written == 1
    assert [p["piece"] for p in store.card["pieces"]] == [result["piece"]]
    assert store.card["trajectories"] == 2
    # The negative control: another piece's specialist is not this one.
    other = load_specialists(min(slots.results, key=lambda r: r["index"])["folder"])
    assert not np.allclose(jax.tree_util.tree_leaves(other.policy)[0],
                           jax.tree_util.tree_leaves(library.policy)[0], atol=1e-3)


def test_the_whole_library_is_collected_and_its_entries_found_by_piece(pool_run, tmp_path):
    out, slots, _ = pool_run
    whole = collect(CollectConfig(run=out, out=str(tmp_path / "store"), rollouts=2,
                                  chunk_envs=2, progress=False))
    by_index = sorted(slots.results, key=lambda r: r["index"])
    card = {p["piece"]: p for p in whole.card["pieces"]}
    assert list(card) == [r["piece"] for r in by_index]
    # Each piece is rolled out by its own specialist: noise-free rollouts score its eval F1.
    for r in by_index:
        assert card[r["piece"]]["trajectories"] == 2
        assert card[r["piece"]]["mean_f1"] == pytest.approx(r["f1"], abs=1e-4), r
    assert library_entry(out, "toy-03") == by_index[3]["folder"]
    with pytest.raises(ValueError, match="no specialist of 'toy-09'; its pieces"):
        library_entry(out, "toy-09")


def test_a_crash_mid_pool_resumes_to_the_same_library(pool_run, tmp_path, monkeypatch):
    _, reference, _ = pool_run
    out = str(tmp_path / "crashed")
    save = Checkpointer.save

    def crash_at_round_three(self, step, state, config):
        # What kill -9 leaves after round 3's specialists were written, before its checkpoint.
        if self.directory.endswith(os.path.join("pool", "checkpoints")) and step == 3:
            raise SystemExit("killed")
        save(self, step, state, config)

    monkeypatch.setattr(Checkpointer, "save", crash_at_round_three)
    with pytest.raises(SystemExit):
        run_pool(plan_pool(_config(out), 2, BUDGET))
    monkeypatch.setattr(Checkpointer, "save", save)
    with pytest.raises(ValueError, match="already holds a pool"):
        plan_pool(_config(out), 2, BUDGET)
    with pytest.raises(ValueError, match="--max-env-steps"):
        plan_pool(_config(out), 2, BUDGET * 2, resume=True)
    plan = plan_pool(_config(out), 2, BUDGET, resume=True)
    assert plan.resume_from == 2
    slots, _ = run_pool(plan)
    strip = [{k: v for k, v in r.items() if k not in ("seconds", "folder")} for r in
             reference.results]
    assert [{k: v for k, v in r.items() if k not in ("seconds", "folder")}
            for r in slots.results] == strip
    for mine, theirs in zip(slots.results, reference.results):
        a, b = load_specialists(mine["folder"]), load_specialists(theirs["folder"])
        jax.tree_util.tree_map(np.testing.assert_array_equal, a.policy, b.policy)


def test_a_spent_time_budget_writes_the_slots_and_a_larger_one_goes_on(pool_run, tmp_path):
    _, reference, _ = pool_run
    out = str(tmp_path / "timed")
    ticks = iter(range(10_000))
    clock = lambda: float(next(ticks))  # every reading 1 s later: a round takes 2 s
    slots, stopped_by = run_pool(plan_pool(_config(out), 2, BUDGET, budget_s=5.0), clock=clock)
    # Round 3 spends the budget: both slots are written as they stand, nothing is refilled.
    assert stopped_by is None and slots.rounds == 3 and slots.elapsed == 6.0
    assert slots.piece == [-1, -1] and slots.next_piece < 5
    timed = [r for r in slots.results if r["status"] == "time"]
    assert len(timed) == 2
    assert all(r["f1"] < TARGET and r["env_steps"] < BUDGET for r in timed)
    # What finished before is what the unbounded pool finished in its first rounds.
    before = {r["piece"]: r["f1"] for r in reference.results if r["status"] != "time"}
    for r in slots.results:
        if r["status"] == "solved":
            assert before[r["piece"]] == r["f1"]
    with open(os.path.join(out, "pieces.csv")) as f:
        table = {row["piece"]: row["status"] for row in csv.DictReader(f)}
    queued = [name for name, status in table.items() if status == "queued"]
    assert len(queued) == 5 - slots.next_piece > 0
    # The same budget again: nothing to do. A larger one: the idle slots take queued pieces.
    again, _ = run_pool(plan_pool(_config(out), 2, BUDGET, resume=True, budget_s=5.0),
                        clock=clock)
    assert again.rounds == 3 and again.results == slots.results
    more, _ = run_pool(plan_pool(_config(out), 2, BUDGET, resume=True, budget_s=9.0),
                       clock=clock)
    assert more.rounds == 5 and more.elapsed == 10.0
    started = {r["piece"] for r in more.results[len(slots.results):]}
    assert set(queued) & started, (queued, more.results)


def test_bad_pool_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="--slots, --max-env-steps and --eval-every"):
        plan_pool(_config(str(tmp_path)), 0, BUDGET)
    with pytest.raises(ValueError, match="--budget-hours must be > 0"):
        plan_pool(_config(str(tmp_path)), 2, BUDGET, budget_s=0.0)


def test_the_command_runs_a_pool_and_resume_says_where(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MJX_PIANO_CACHE", str(tmp_path / "cache"))  # the rates' records
    out = str(tmp_path / "cli")
    argv = ["train", "pool", "--env", "toy", "--preset", "cpu-smoke", "--pieces", "toy-00",
            "toy-01", "toy-02", "--slots", "2", "--max-env-steps", str(2 * EVERY * 512),
            "--eval-every", str(EVERY), "--out", out, "--no-progress"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "3 pieces, 2 slots" in captured.out and "3 of 3 pieces finished" in captured.out
    assert "no measured pool throughput for" in captured.out
    assert "cpu, env toy, 2 slots x 32 envs, ppo yet" in captured.out
    assert "env steps/s over 2 slots (round 2)" in captured.err
    with open(os.path.join(out, "pieces.csv")) as f:
        assert len(list(csv.DictReader(f))) == 3
    assert sorted(os.listdir(os.path.join(out, "library"))) == ["00000", "00001", "00002"]
    # Round 2's rate is kept for this device and these settings: the next pool starts with
    # an estimate from it (3 pieces at their budget).
    with open(tmp_path / "cache" / "pool_rates.json") as f:
        (record,) = json.load(f).values()
    hours = 3 * 2 * EVERY * 512 / record["env_steps_per_s"] / 3600
    assert main([*argv, "--resume"]) == 0  # nothing left: it says so and stops
    captured = capsys.readouterr().out
    assert "3 of 3 pieces finished" in captured
    assert f"expected at most {hours:,.2f} device-hours for 3 pieces at their budget" in captured
