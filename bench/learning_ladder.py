"""`mjx-piano bench learning`: the learning ladder, F1 against env steps for named recipes.

    python3 -m mjx_piano bench learning --rung R1 --recipe ppo ppo-residual --out runs/ladder
    python3 -m mjx_piano bench learning --rung R1 --report-only --out runs/ladder
    python3 -m mjx_piano bench learning --list

A rung is a fixed set of clips and an env-step budget per clip; a recipe is a named set of
`train specialists` overrides on top of the full two-hand task (both hands, 88 keys, kernel
keys, 2 solver / 4 line-search iterations). Each (rung, recipe, seed) is one specialist run,
one agent per clip, in `OUT/<rung>/<recipe>/seed<k>`; running the same command again resumes
it from its newest checkpoint (a finished run is only reported). After the runs, every run
found under `OUT/<rung>` is reported together (`bench.learning_report`): `ladder.json`,
`ladder.md` (median and per-clip F1 at the rung's milestones, and wall time) and `ladder.png`
(median F1 against env steps and against wall seconds, one line per recipe and seed).

Rungs:
- R0: the etude `etude/c-major-scale-rh` (40 steps, right hand), the sanity check.
- R1: four two-hand clips of the built repertoire's train split cut to their first 100 control
  steps (`R1_RULE` says how they are chosen), 500k env steps per clip: the CPU rung.
- R2: the same clips whole (550 steps) and `bach/bwv112.5/00`: the GPU rung.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys

import numpy as np

from bench.learning_recipes import RECIPES, Recipe
from mjx_piano.cli_flags import add_out
from mjx_piano.defaults import KERNEL_KEYS_SOLVER
from mjx_piano.paths import output_folder_problem

R1_RULE = (
    "Candidates: the train split's clips of the full 550 control steps whose first 100 steps "
    "strike at least 3 notes with each hand. Sorted by notes struck per second in those 100 "
    "steps (then by name), the rung takes the candidates at the 1/8, 3/8, 5/8 and 7/8 "
    "quantiles (index floor(q * count)), each cut to `@0:100`.")
R1_STEPS = 100
R1_QUANTILES = (0.125, 0.375, 0.625, 0.875)
FULL_CLIP_STEPS = 550
MIN_ONSETS_PER_HAND = 3
GPU_TARGET_CLIP = "bach/bwv112.5/00"

# The full two-hand task as every recipe plays it: the fast path that keeps parity and trains
# stably (bench/RESULTS.md, 2026-11-25).
TASK = {"env.name": "piano", "env.key_dynamics": "kernel",
        "env.solver_iterations": KERNEL_KEYS_SOLVER[0], "env.ls_iterations": KERNEL_KEYS_SOLVER[1]}


@dataclasses.dataclass(frozen=True)
class Rung:
    """A rung of the ladder.

    Attributes:
        name: 'R0', 'R1' or 'R2'.
        pieces: the clips, windowed names allowed (`NAME@START:STOP`).
        env_steps: env steps per clip (per agent) of each run.
        milestones: env steps at which the report reads F1.
        eval_every_steps: env steps between evaluations (rounded to whole iterations).
    """

    name: str
    pieces: tuple[str, ...]
    env_steps: int
    milestones: tuple[int, ...]
    eval_every_steps: int


def r1_clips(steps: int = R1_STEPS) -> tuple[str, ...]:
    """The R1 clips by `R1_RULE`, cut to `steps`; needs the built repertoire.

    Raises:
        ValueError: no repertoire is built, or fewer candidates than quantiles.
    """
    from mjx_piano.music import StoreError, list_clips, load_clip

    try:
        names = list_clips("train")
    except StoreError as error:
        raise ValueError(f"the R1 and R2 rungs use repertoire clips: {error}") from None
    candidates = []
    for name in names:
        roll = load_clip(name)
        if roll.num_steps < FULL_CLIP_STEPS or roll.right_hand is None:
            continue
        keys = roll.keys[:R1_STEPS]
        held = np.zeros_like(keys)
        held[1:] = keys[:-1]
        struck = keys & ~held
        right = roll.right_hand[:R1_STEPS]
        if min((struck & right).sum(), (struck & ~right).sum()) < MIN_ONSETS_PER_HAND:
            continue
        candidates.append((float(struck.sum()) * 20.0 / R1_STEPS, name))
    candidates.sort()
    if len(candidates) < len(R1_QUANTILES):
        raise ValueError(f"only {len(candidates)} train clips qualify for R1 ({R1_RULE})")
    return tuple(f"{candidates[int(q * len(candidates))][1]}@0:{steps}" for q in R1_QUANTILES)


def make_rung(name: str) -> Rung:
    """The named rung.

    Raises:
        ValueError: an unknown rung, or (R1, R2) no built repertoire.
    """
    if name == "R0":
        return Rung("R0", ("etude/c-major-scale-rh",), 500_000, (100_000, 250_000, 500_000),
                    16_384)
    if name == "R1":
        return Rung("R1", r1_clips(), 500_000, (100_000, 250_000, 500_000), 16_384)
    if name == "R2":
        whole = tuple(p.split("@")[0] for p in r1_clips())
        return Rung("R2", (*whole, GPU_TARGET_CLIP), 8_000_000,
                    (1_000_000, 2_000_000, 4_000_000, 8_000_000), 131_072)
    raise ValueError(f"unknown rung {name!r}; choose from R0, R1, R2")


def run_config(rung: Rung, recipe: Recipe, seed: int, out: str, env_steps: int,
               time_limit_s: float, progress: bool, tables: str = ""):
    """The `SpecialistConfig` of one ladder run (one agent per clip of the rung); `tables`:
    the folder of the ILC run a `recipe.tables` recipe corrects."""
    from train.config import PRESETS, SpecialistConfig, apply_overrides, learner_config

    overrides = dict(recipe.overrides)
    preset = overrides.pop("preset", None)
    fields = {**(PRESETS[preset] if preset else {}), **TASK, **overrides}
    learner = learner_config(apply_overrides(SpecialistConfig(), fields))
    per_iteration = learner.num_envs * learner.unroll_length
    iterations = math.ceil(env_steps / per_iteration)
    fields.update({
        "env.pieces": rung.pieces, "run.agents": len(rung.pieces), "run.seed": seed,
        "run.iterations": iterations, "run.out": out, "run.progress": progress,
        "run.eval_every": max(1, round(rung.eval_every_steps / per_iteration)),
        "run.checkpoint_every": max(1, round(rung.eval_every_steps / per_iteration)) * 4,
        "run.time_limit_s": time_limit_s,
    })
    if recipe.tables:
        fields["env.residual_tables"] = os.path.abspath(tables)
    return apply_overrides(SpecialistConfig(), fields)


def run_folder(out: str, rung: str, recipe: str, seed: int) -> str:
    """Where one (rung, recipe, seed) run writes."""
    return os.path.join(out, rung, recipe, f"seed{seed}")


def ilc_rolls(rung: Rung) -> list:
    """The rung's clips (`PianoRoll`s) for an ILC run.

    Raises:
        ValueError: the clips differ in length (one table length per run).
    """
    from mjx_piano.default_piece import load_piece

    rolls = [load_piece(name) for name in rung.pieces]
    lengths = sorted({roll.num_steps for roll in rolls})
    if len(lengths) > 1:
        raise ValueError(f"ik-ilc needs clips of one length; {rung.name} has {lengths}")
    return rolls


def ilc_env(rung: Rung):
    """The `PianoEnv` of an ILC run of the rung: the full two-hand task (`TASK`), piece i is
    clip i."""
    from train.ilc_run import scene_env

    return scene_env(ilc_rolls(rung), TASK["env.key_dynamics"], TASK["env.solver_iterations"],
                     TASK["env.ls_iterations"])


def ilc_config(recipe: Recipe, seed: int):
    """The `train.ilc.ILCConfig` of an ILC recipe and seed."""
    from train.ilc import ILCConfig

    return ILCConfig(seed=seed, **recipe.overrides)


def ilc_one(rung: Rung, recipe: Recipe, seed: int, folder: str, env_steps: int,
            time_limit_s: float, progress: bool) -> None:
    """Trains (or resumes) one ILC run (`recipe`'s `ILCConfig` fields) of the rung's clips and
    prints its summary."""
    from train.ilc_run import ILCRun, run_ilc

    env = ilc_env(rung)
    run = ILCRun(out=folder, steps=int(env.bank.length[0]),
                 env_steps=env_steps, eval_every_steps=rung.eval_every_steps,
                 time_limit_s=time_limit_s, progress=progress, config=ilc_config(recipe, seed))
    print(run_ilc(env, rung.pieces, run))


def train_one(config, resume: bool) -> None:
    """Trains (or resumes) one ladder run and prints its summary."""
    from train.loop import train_specialists

    result = train_specialists(config, resume)
    print(result.summary)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `bench learning` under the `bench` command's subparsers."""
    parser = subparsers.add_parser(
        "learning", help="the learning ladder: F1 against env steps per recipe "
                         "(see bench/learning_ladder.py)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rung", default="R1", help="R0, R1 (default) or R2")
    parser.add_argument("--recipe", nargs="+", default=[], metavar="NAME",
                        help="recipes to run, in order: " + ", ".join(RECIPES))
    parser.add_argument("--seed", type=int, nargs="+", default=[0], help="seeds (default 0)")
    parser.add_argument("--env-steps", type=int, default=0,
                        help="env steps per clip (default: the rung's)")
    parser.add_argument("--time-limit", type=float, default=0.0, metavar="SECONDS",
                        help="stop each run after this much training (resume later)")
    add_out(parser, default="runs/ladder", help="ladder folder")
    parser.add_argument("--report-only", action="store_true",
                        help="only report the runs already in --out")
    parser.add_argument("--list", action="store_true", help="print the rungs and recipes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=main)


def _refuse(message: str) -> int:
    print(f"mjx-piano bench learning: {message}", file=sys.stderr)
    return 2


def _listing(rung_names: list[str]) -> str:
    lines = ["recipes:"] + [f"  {r.name}: {r.about}" for r in RECIPES.values()]
    for name in rung_names:
        try:
            rung = make_rung(name)
        except ValueError as error:
            lines.append(f"{name}: {error}")
            continue
        lines.append(f"{rung.name}: {rung.env_steps:,} env steps per clip; clips "
                     + ", ".join(rung.pieces))
    lines.append(f"R1 rule: {R1_RULE}")
    return "\n".join(lines)


def _has_checkpoint(folder: str) -> bool:
    """Whether `folder` holds a checkpoint to resume (a missing folder is not created)."""
    from train.checkpoint import Checkpointer

    if not os.path.isdir(folder):
        return False
    checkpointer = Checkpointer(folder, 1)
    try:
        return checkpointer.latest_step() is not None
    finally:
        checkpointer.close()


def main(args: argparse.Namespace) -> int:
    """Runs the recipes on the rung, then reports every run of the rung; exit 2 on bad input."""
    from bench.learning_report import write_report
    from train.plan import plan_run

    if args.list:
        print(_listing(["R0", "R1", "R2"]))
        return 0
    unknown = [r for r in args.recipe if r not in RECIPES]
    if unknown:
        return _refuse(f"unknown recipe(s) {unknown}; choose from {list(RECIPES)}")
    if not args.recipe and not args.report_only:
        return _refuse("name at least one --recipe (or --report-only); --list shows them")
    if args.env_steps < 0 or args.time_limit < 0:
        return _refuse("--env-steps and --time-limit must be >= 0")
    if output_folder_problem(args.out):
        return _refuse(f"--out: {output_folder_problem(args.out)}")
    try:
        rung = make_rung(args.rung)
    except ValueError as error:
        return _refuse(str(error))
    if any(RECIPES[r].learner == "ilc" for r in args.recipe) and not args.report_only:
        from train.determinism import deterministic_gpu, float32_matmuls

        deterministic_gpu()  # before anything computes: the ILC search compares replays
        float32_matmuls()
    runs, ilc_runs = [], []
    for recipe in [] if args.report_only else args.recipe:
        for seed in args.seed:
            folder = run_folder(args.out, rung.name, recipe, seed)
            if RECIPES[recipe].learner == "ilc":
                try:
                    ilc_rolls(rung)
                except ValueError as error:
                    return _refuse(f"{recipe}: {error}")
                ilc_runs.append((RECIPES[recipe], seed, folder))
                continue
            on = RECIPES[recipe].tables  # the ILC recipe whose run it corrects, if any
            tables = run_folder(args.out, rung.name, on, seed) if on else ""
            config = run_config(rung, RECIPES[recipe], seed, folder,
                                args.env_steps or rung.env_steps, args.time_limit,
                                not args.no_progress, tables)
            resume = _has_checkpoint(folder)
            try:
                plan_run(config, resume)  # every input check before anything compiles
            except (ValueError, NotImplementedError) as error:
                hint = (f" (run --recipe {RECIPES[recipe].tables} --seed {seed} on this --out "
                        "first)" if RECIPES[recipe].tables else "")
                return _refuse(f"{recipe} seed {seed}: {error}{hint}")
            runs.append((config, resume))
    for config, resume in runs:
        print(f"== {config.run.out} ({'resuming' if resume else 'fresh'}, "
              f"{config.run.iterations} iterations)")
        train_one(config, resume)
    for recipe, seed, folder in ilc_runs:
        print(f"== {folder} (ILC)")
        ilc_one(rung, recipe, seed, folder, args.env_steps or rung.env_steps, args.time_limit,
                not args.no_progress)
    paths = write_report(os.path.join(args.out, rung.name), rung.milestones)
    print("\n".join(f"wrote {p}" for p in paths))
    return 0
