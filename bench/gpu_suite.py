"""`mjx-piano bench gpu`: every GPU figure of the project in one budgeted, resumable run.

    python3 -m mjx_piano bench gpu --budget-s 480 --out runs/gpu          # on the GPU
    python3 -m mjx_piano bench gpu --budget-s 60 --tiny --impl jax --out /tmp/gpu   # CPU smoke

Measures, in priority order, and writes each result the moment it is known
(`bench.gpu_report`: results.jsonl, report.md, report.png), so a command killed at its
limit still returns everything measured before the kill:

1. device and versions, and MuJoCo C stepping one env of the same scene on one core;
2. the full task step at the fastest lever whose parity the CPU showed (`kernel+solver-2`),
   per impl at growing batches (4k, 16k, 32k envs), a batch stops growing once env steps/s
   stop rising by 5%; then physics alone at each impl's best batch; then the hinged-key
   reference once;
3. specialists on a 550-step two-hand repertoire clip for a fixed slice of the budget
   (its share of `WEIGHTS`, split between PPO with the `gpu` preset and SAC-DroQ with the
   `gpu-sac` preset, each learning a 10% correction to the IK pianist from a zero start),
   with the best impl of section 2: eval F1 against wall seconds and env steps, and
   `time_to_f1_0.8_s` when it gets there;
4. the flow transformer (`omnipianist` size) training windows/s at batch 1024 and the
   generalist's batched rollout env steps/s;
5. with what time is left, the fast-path levers (`bench/levers.py`) at the best impl and batch.

The budget: a section starts its first measurement while any budget is left; its further
ones only before the section's cumulative share of the budget is used up (`WEIGHTS`, scaled
over the sections the run chooses), so one slow section cannot starve the ones after it. What was not measured is recorded as 'cut'.
A row that raised is recorded as 'error' with its message, and the suite goes on.

Resume: the same `--out` again skips every result already final there ('cut' and 'skipped'
rows are measured again). The device runbook uses that to split the suite over two calls:
the first has no warp-lang yet and measures the `jax` rows, the second the rest.

`--tiny` runs every section at toy sizes (a reduced scene with self-playing keys, the
`piano-keys` specialist on an etude, the tiny transformer on the toy env) for CI.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import shutil
import sys
import time
import traceback
from typing import Any, Callable

from bench.gpu_report import SECTIONS, SuiteLog
from mjx_piano.cli_flags import add_impl, add_out
from mjx_piano.paths import output_folder_problem

# Each section's share of the budget; the shares of the sections a run chooses are scaled
# to fill it. The specialist trains for its share (compile and evaluations included).
WEIGHTS = {"device": 0.05, "env": 0.40, "specialist": 0.30, "transformer": 0.10,
           "levers": 0.15}
GROWTH = 1.05  # a batch grows while env steps/s rise by at least this factor
TARGET_F1 = 0.8
DEFAULT_PIECE = "bach/bwv112.5/00"


@dataclasses.dataclass(frozen=True)
class Sizes:
    """What the suite measures, at GPU or toy sizes.

    Attributes:
        tiny: toy sizes (the scene below is the reduced self-playing one).
        batches: env rows' batch sizes, ascending (each impl grows through them).
        hinged_batch: envs of the hinged-key reference row.
        steps, repeats: control steps per timed rollout, timed rollouts.
        c_steps: control steps MuJoCo C is timed over.
        fast_lever, reference_lever: `bench.levers` names of the env rows' scene settings.
        specialists: (learner label, `train.config` overrides) of each specialist run, in
            order; they share the section's slice equally (a run's `run.iterations` caps it,
            its time limit stops it in any case).
        transformer_size, transformer_batch, transformer_steps: section 4's training.
        rollout_env, rollout_envs: section 4's generalist rollout.
        levers: section 5's levers, reference first.
    """

    tiny: bool
    batches: tuple[int, ...]
    hinged_batch: int
    steps: int
    repeats: int
    c_steps: int
    fast_lever: str
    reference_lever: str
    specialists: tuple[tuple[str, dict[str, Any]], ...]
    transformer_size: str
    transformer_batch: int
    transformer_steps: int
    rollout_env: str
    rollout_envs: int
    levers: tuple[str, ...]


def gpu_sizes(piece: str = DEFAULT_PIECE) -> Sizes:
    """The device sizes: 4k-32k envs, the `gpu` preset's specialist on `piece`."""
    from bench.lever_table import LEVER_NAMES
    from train.config import PRESETS
    from train.env_defaults import env_defaults

    # The piano env's defaults: a correction to the IK pianist from a zero start, kernel keys
    # (on CPU the residual recipes are the only policies that play R1's real clips).
    task = {**env_defaults({"env.name": "piano"}), "env.name": "piano", "env.pieces": (piece,)}
    first = ("reference", "kernel+solver-2", "kernel", "kernel+tolerance-1e-3", "kernel+solver-1",
             "kernel+warp-capacity", "solver-2", "tolerance-1e-3")
    return Sizes(
        tiny=False, batches=(4096, 16384, 32768), hinged_batch=16384, steps=20, repeats=2,
        c_steps=200, fast_lever="kernel+solver-2", reference_lever="reference",
        specialists=tuple((label, {**PRESETS[preset], **task,
                                   "run.iterations": 10**7, "run.eval_every": every})
                          for label, algo, preset, every in (
                              ("ppo-residual", "ppo", "gpu", 5),
                              ("sac-residual", "sac", "gpu-sac", 25))),
        transformer_size="omnipianist", transformer_batch=1024, transformer_steps=10,
        rollout_env="piano", rollout_envs=1024,
        levers=first + tuple(n for n in LEVER_NAMES if n not in first))


def tiny_sizes() -> Sizes:
    """Toy sizes that run every section on 2 CPU cores in about a minute."""
    from train.config import PRESETS

    # The toy env: the specialist section's plumbing (time limit, curve, time to target) is
    # what a tiny run checks; its physics is the env section's (a piano-keys run compiled
    # for ~70 s per learner here, the toy one in a few seconds).
    task = {"env.name": "toy", "env.pieces": ("toy-00",)}
    return Sizes(
        tiny=True, batches=(2, 4), hinged_batch=2, steps=2, repeats=1, c_steps=20,
        fast_lever="solver-2", reference_lever="reference",
        specialists=(
            ("ppo", {**PRESETS["cpu-piano"], **task, "ppo.num_envs": 16, "ppo.unroll_length": 8,
                     "ppo.num_minibatches": 2, "ppo.num_epochs": 1, "run.eval_every": 2,
                     "run.iterations": 6}),
            ("sac", {**task, "run.algo": "sac", "sac.num_envs": 8, "sac.unroll_length": 2,
                     "sac.batch_size": 16, "sac.updates_per_iteration": 1, "sac.warmup_steps": 16,
                     "sac.buffer_size": 256, "sac.policy_hidden": (16,),
                     "sac.critic_hidden": (16,), "run.eval_every": 3, "run.iterations": 6})),
        transformer_size="tiny", transformer_batch=16, transformer_steps=2, rollout_env="toy",
        rollout_envs=4, levers=("reference", "solver-2"))


def tiny_scene():
    """The reduced scene of `--tiny`: no hands, the default etude's keys, self-playing."""
    import numpy as np

    from mjx_piano.default_piece import default_piece
    from mjx_piano.scene.builder import SceneConfig

    used = np.nonzero(default_piece().keys.any(0))[0]
    return SceneConfig(hands="none", actuated_keys=True, keys=tuple(int(k) for k in used))


class Budget:
    """Wall seconds of the suite, split into cumulative section deadlines (`WEIGHTS`).

    Args:
        seconds: the whole budget.
        sections: the sections this run measures (their weights are scaled to fill it).
        clock: seconds now (injectable for tests).
    """

    def __init__(self, seconds: float, sections: tuple[str, ...] = SECTIONS,
                 clock: Callable[[], float] = time.perf_counter):
        self.seconds = seconds
        self.clock = clock
        self.origin = clock()
        total = sum(WEIGHTS[s] for s in sections)
        self.share = {s: WEIGHTS[s] / total for s in sections}
        self.deadline, done = {}, 0.0
        for section in SECTIONS:
            done += self.share.get(section, 0.0)
            self.deadline[section] = done

    def elapsed(self) -> float:
        """Seconds since the suite started."""
        return self.clock() - self.origin

    def left(self) -> float:
        """Seconds of the whole budget left (may be negative)."""
        return self.seconds - self.elapsed()

    def may_start(self, section: str, first: bool) -> bool:
        """Whether a measurement of `section` may start now (`first`: its first one)."""
        elapsed = self.elapsed()
        return elapsed < self.seconds and (first or
                                           elapsed < self.deadline[section] * self.seconds)

    def slice_s(self, section: str) -> float:
        """`section`'s share of the budget, at most what is left (>= 1 s)."""
        return max(1.0, min(self.share.get(section, 0.0) * self.seconds, self.left()))


def missing_impl(impl: str) -> str | None:
    """Why MJX backend `impl` cannot run here, or None when it can."""
    if impl == "warp":
        try:
            import warp  # noqa: F401
        except ImportError:
            return "warp-lang is not installed"
    return None


class Suite:
    """One run of the suite: the report folder, the budget, the sizes, the backends."""

    def __init__(self, log: SuiteLog, budget: Budget, sizes: Sizes, impls: tuple[str, ...],
                 out: str):
        self.log, self.budget, self.sizes, self.impls, self.out = log, budget, sizes, impls, out
        self.started: set[str] = set()

    def measure(self, section: str, record_id: str, measure: Callable[[], dict[str, Any]],
                **fields: Any) -> dict[str, Any]:
        """The final stored record of `record_id`, else measures it now within the budget
        ('cut' when no time is left, 'error' when `measure` raises) and records it."""
        stored = self.log.final(record_id)
        if stored is not None:
            return stored
        base = {"section": section, "id": record_id, **fields}
        if not self.budget.may_start(section, first=section not in self.started):
            return self.log.add({**base, "status": "cut", "note": self._budget_note()})
        self.started.add(section)
        print(f"[{self.budget.elapsed():6.0f} s] {record_id} ...", flush=True)
        try:
            result = measure()
        except Exception as error:  # noqa: BLE001 - one failed row must not end the suite
            traceback.print_exc()
            result = {"status": "error", "note": f"{type(error).__name__}: {error}"[:400]}
        record = self.log.add({**base, "status": "ok", **result})
        print(f"[{self.budget.elapsed():6.0f} s] {record_id}: {record['status']} "
              f"{_headline(record)}", flush=True)
        return record

    def _budget_note(self) -> str:
        return f"budget: {self.budget.elapsed():.0f} of {self.budget.seconds:.0f} s used"

    def skip(self, section: str, record_id: str, why: str, **fields: Any) -> None:
        """Records that `record_id` cannot be measured in this run (measured on resume)."""
        if self.log.final(record_id) is None:
            self.log.add({"section": section, "id": record_id, "status": "skipped", "note": why,
                          **fields})

    def best_task_row(self, impl: str | None = None) -> dict[str, Any] | None:
        """The fastest valid full-task row of section 2 at the fast lever (of `impl`)."""
        rows = [r for r in self.log.rows("env") if r["status"] == "ok" and r["mode"] == "task"
                and r["lever"] == self.sizes.fast_lever and impl in (None, r["impl"])]
        return max(rows, key=lambda r: r["env_steps_per_s"], default=None)

    def available_impls(self) -> list[str]:
        """The requested backends that can run here."""
        return [impl for impl in self.impls if missing_impl(impl) is None]


def _headline(record: dict[str, Any]) -> str:
    for key, unit in (("env_steps_per_s", "env steps/s"), ("windows_per_s", "windows/s"),
                      ("best_f1", "best F1")):
        if isinstance(record.get(key), (int, float)):
            return f"{record[key]:,.3g} {unit}"
    return record.get("note", "")


def run_suite(suite: Suite, sections: tuple[str, ...]) -> None:
    """Runs the chosen sections in priority order (`bench.gpu_report.SECTIONS`)."""
    from bench import gpu_sections

    runners = {"device": gpu_sections.device_section, "env": gpu_sections.env_section,
               "specialist": gpu_sections.specialist_section,
               "transformer": gpu_sections.transformer_section,
               "levers": gpu_sections.levers_section}
    for section in SECTIONS:
        if section in sections:
            runners[section](suite)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `bench gpu` under the `bench` command's subparsers."""
    parser = subparsers.add_parser(
        "gpu", help="the GPU figures in one budgeted, resumable run (see bench/gpu_suite.py)",
        description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-s", type=float, default=480.0,
                        help="wall seconds for the whole suite (default 480)")
    add_out(parser, default="runs/bench_gpu",
            help="report folder; a second run on it resumes")
    parser.add_argument("--tiny", action="store_true", help="toy sizes (CPU, CI)")
    add_impl(parser, many=True, default=["warp", "jax"], help="MJX backends, in order")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS,
                        help="sections to run (default: all, in priority order)")
    parser.add_argument("--piece", default=DEFAULT_PIECE,
                        help=f"the specialist's clip (default {DEFAULT_PIECE}; ignored by --tiny)")
    parser.set_defaults(run=main)


def _refuse(message: str) -> int:
    print(f"mjx-piano bench gpu: {message}", file=sys.stderr)
    return 2


def main(args: argparse.Namespace) -> int:
    """Runs the suite; prints where the report is. Exit code 2 on bad arguments."""
    if not args.budget_s > 0:
        return _refuse(f"--budget-s must be > 0, got {args.budget_s}")
    problem = output_folder_problem(args.out)
    if problem:
        return _refuse(f"--out: {problem}")
    import jax
    import mujoco

    device = jax.devices()[0]
    versions = {"jax": jax.__version__, "mujoco": mujoco.__version__,
                "python": platform.python_version()}
    try:
        import warp

        versions["warp"] = warp.config.version
    except ImportError:
        versions["warp"] = "not installed"
    header = {
        "title": f"GPU suite, {datetime.date.today().isoformat()}: `mjx-piano bench gpu`"
                 f"{' --tiny' if args.tiny else ''} on {device.device_kind}",
        "command": command_line(args),
        "device": f"{device.device_kind} ({device.platform}) x{len(jax.devices())}",
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "budget_s": args.budget_s,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    sizes = tiny_sizes() if args.tiny else gpu_sizes(args.piece)
    suite = Suite(SuiteLog(args.out, header), Budget(args.budget_s, tuple(args.sections)), sizes,
                  tuple(args.impl), args.out)
    print(f"bench gpu on {header['device']} ({header['versions']}), budget {args.budget_s:.0f} s,"
          f" report in {args.out}", flush=True)
    run_suite(suite, tuple(args.sections))
    suite.log.refresh()
    print(open(os.path.join(args.out, "report.md")).read())
    print(f"done in {suite.budget.elapsed():.0f} s; wrote {args.out}/results.jsonl, report.md, "
          "report.png", flush=True)
    return 0


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run."""
    return (f"python3 -m mjx_piano bench gpu --budget-s {args.budget_s:g} --out {args.out}"
            f"{' --tiny' if args.tiny else ''} --impl {' '.join(args.impl)} "
            f"--sections {' '.join(args.sections)}"
            f"{'' if args.tiny or args.piece == DEFAULT_PIECE else ' --piece ' + args.piece}")


def remove_tree(path: str) -> None:
    """Deletes a folder if it is there (a run cut before its record was written)."""
    if os.path.isdir(path):
        shutil.rmtree(path)
