"""`mjx-piano train specialists`: many specialists (PPO or SAC-DroQ), one program.

Examples:
    mjx-piano train specialists --env toy --preset cpu-smoke --out runs/toy
    mjx-piano train specialists --env toy --algo sac --out runs/toy-sac
    mjx-piano train specialists --pieces toy-00 toy-01 --agents 4 --iterations 100
    mjx-piano train specialists --env piano --split train --limit 64 --preset gpu --out runs/gpu
    mjx-piano train specialists --env piano --split train --limit 64 --preset gpu --out runs/gpu --resume
    mjx-piano train specialists --env toy --set ppo.entropy_cost=0.01 --set run.mesh=4,2

Configuration = dataclass defaults, then the env's defaults, then the preset, then the flags,
then `--set` (later wins). On the piano env the defaults are the learning ladder's best recipe
among the policy learners: a correction of at most 10% to the IK pianist's action from a zero
start, kernel keys, 2 solver / 4 line-search iterations (`train/env_defaults.py`);
`--residual-scale 0` trains on the plain action space; `--residual-tables RUN` corrects an ILC
run's play (`train ilc`: its clips, their learned tables) in place of the IK pianist's.
Bad input (unknown pieces, sizes that do not divide across devices, a checkpoint from another
configuration) is reported before anything is compiled, with exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from mjx_piano.cli_flags import add_impl, add_key_dynamics, add_out
from mjx_piano.music.piece_args import add_music_options, piece_names
from train.ilc_cli import add_ilc_command
from train.pool_cli import add_pool_command
from train.config import (ALGOS, ENV_NAMES, PRESETS, SPLITS, SpecialistConfig,
                          apply_overrides, parse_set_items)
from train.env_defaults import env_defaults

if TYPE_CHECKING:
    from train.loop import RunResult

# Flag -> config field, for the common overrides.
_FLAG_FIELDS = {
    "env": "env.name", "split": "env.split", "limit": "env.limit",
    "key_dynamics": "env.key_dynamics", "repertoire": "env.repertoire",
    "solver_iterations": "env.solver_iterations", "ls_iterations": "env.ls_iterations",
    "solver_tolerance": "env.solver_tolerance",
    "impl": "env.impl", "residual_scale": "env.residual_scale",
    "residual_tables": "env.residual_tables",
    "agents": "run.agents", "out": "run.out", "algo": "run.algo",
    "iterations": "run.iterations",
    "minibatches": "ppo.num_minibatches", "epochs": "ppo.num_epochs", "seed": "run.seed",
    "eval_every": "run.eval_every",
    "checkpoint_every": "run.checkpoint_every", "mesh": "run.mesh",
    "time_limit": "run.time_limit_s", "target_f1": "run.target_f1",
}
# Flag -> field of the run's learner section (`ppo.` or `sac.`, after --algo).
_LEARNER_FLAGS = {"envs": "num_envs", "unroll": "unroll_length", "lr": "learning_rate"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `train` command group (`train specialists`, `train pool`, `train ilc`)."""
    train = subparsers.add_parser("train", help="train specialists (PPO, SAC, ILC) and pools")
    train.set_defaults(run=lambda args: _print_help(train))
    commands = train.add_subparsers(dest="train_command", metavar="WHAT")
    parser = commands.add_parser(
        "specialists", help="train one specialist per agent (PPO or SAC), all agents in one "
                            "program",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_flags(parser)
    parser.add_argument("--distributed", action="store_true",
                        help="many hosts: call jax.distributed.initialize() first (run the same "
                             "command on every host; the mesh spans all of their devices); the "
                             "cluster (Slurm, Open MPI, TPU) is detected unless the next three "
                             "flags name it")
    parser.add_argument("--coordinator", metavar="HOST:PORT",
                        help="with --distributed: process 0's address and a free port")
    parser.add_argument("--num-processes", type=int, metavar="N",
                        help="with --distributed: processes in the run")
    parser.add_argument("--process-id", type=int, metavar="I",
                        help="with --distributed: this process, 0..N-1 (0 writes the metrics)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="any config field, e.g. ppo.entropy_cost=0.01 (repeatable)")
    add_music_options(parser)
    parser.set_defaults(run=run_specialists)
    add_pool_command(commands)
    add_ilc_command(commands)


def add_run_flags(parser: argparse.ArgumentParser, pool: bool = False) -> None:
    """The flags of a run's configuration (`config_from_args` reads them); `pool`: without
    those a pool decides itself (agents, iterations, checkpoints, time limit)."""
    parser.add_argument("--env", choices=ENV_NAMES, default=None, help="environment (default toy)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--pieces", nargs="+", metavar="NAME",
                       help="piece names or music files (spaces or commas); a file gives "
                            "one agent's piece per clip (see 'music files' below)")
    which.add_argument("--split", choices=SPLITS,
                       help="a named subset of the catalogue: the built repertoire's train, "
                            "test_id, test_ood; etude, etude-train, etude-test; all")
    parser.add_argument("--limit", type=int, metavar="K",
                        help="with --split: only its first K pieces (default: all)")
    parser.add_argument("--repertoire", metavar="NAME",
                        help="with --split: a repertoire built from your files (`repertoire "
                             "build --from DIR --name NAME`) instead of the corpus one")
    add_key_dynamics(parser, default=None,
                     help="piano env key dynamics: MJX hinge joints ('mjx') or the piano-key "
                          "kernel ('kernel', kernels/piano_keys.py, the fast path; the default)")
    parser.add_argument("--solver-iterations", type=int, metavar="N",
                        help="piano env: MJX solver iterations per physics step (default 2 "
                             "with kernel keys, the fastest that trains stably; 4 with mjx)")
    parser.add_argument("--ls-iterations", type=int, metavar="N",
                        help="piano env: line-search iterations per solver iteration (default "
                             "4 with kernel keys, 8 with mjx)")
    parser.add_argument("--solver-tolerance", type=float, metavar="TOL",
                        help="piano env: the solver stops early below this (default 1e-8, "
                             "MuJoCo's; the levers bench measures 1e-3)")
    add_impl(parser, default=None,
             help="piano envs' MJX backend: 'jax' (the default, any devices) or 'warp' "
                  "(MJX-Warp, NVIDIA's fast path; one device)")
    parser.add_argument("--residual-scale", type=float, metavar="S",
                        help="piano env: the policy corrects the IK pianist's action by at most "
                             "S of each control range (mjx_piano/residual.py; default 0.1, from "
                             "a zero start; 0 = the plain action space)")
    parser.add_argument("--residual-tables", type=os.path.abspath, metavar="RUN",
                        help="piano env, with --residual-scale: the action corrected is the IK "
                             "pianist's with the tables of the ILC run in RUN (`train ilc`; "
                             "every piece one of its clips), not the IK pianist's alone")
    parser.add_argument("--algo", choices=ALGOS,
                        help="learner: ppo (default) or sac (SAC with DroQ critics, a replay "
                             "buffer per agent on the device; train/sac.py)")
    if not pool:
        parser.add_argument("--agents", type=int, help="agents (default: one per piece)")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a tuned set of defaults")
    add_out(parser, help="output folder (default runs/pool)" if pool else
            "output folder (default runs/specialists)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in --out")
    if not pool:
        parser.add_argument("--iterations", type=int, help="total iterations")
    parser.add_argument("--envs", type=int, help="envs per agent")
    parser.add_argument("--unroll", type=int, help="control steps per env per iteration")
    parser.add_argument("--minibatches", type=int, help="PPO: minibatches per epoch")
    parser.add_argument("--epochs", type=int, help="PPO: epochs per iteration")
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--seed", type=int, help="agent i uses seed + i")
    parser.add_argument("--eval-every", type=int, help="iterations between evaluations")
    if not pool:
        parser.add_argument("--checkpoint-every", type=int,
                            help="iterations between checkpoints")
        parser.add_argument("--time-limit", type=float, metavar="SECONDS",
                            help="stop after this much wall-clock training (then evaluate and "
                                 "checkpoint); resumes count the time already spent")
    parser.add_argument("--target-f1", type=float,
                        help="the summary says when each agent's eval F1 first reached this "
                             "(default 0.8)")
    parser.add_argument("--mesh", help="device mesh 'AGENTS,ENVS' (default: automatic)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def config_from_args(args: argparse.Namespace) -> SpecialistConfig:
    """The run's configuration: defaults < the env's defaults (`train.env_defaults`:
    on the piano env, the learning ladder's best policy recipe) < preset < flags < --set.

    Raises:
        ValueError: an unknown field or a value that does not parse.
    """
    overrides: dict[str, Any] = dict(PRESETS[args.preset]) if args.preset else {}
    for flag, field in _FLAG_FIELDS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[field] = value
    algo = parse_set_items(args.set).get("run.algo", overrides.get("run.algo", "ppo"))
    if algo == "sac" and (args.minibatches is not None or args.epochs is not None):
        raise ValueError("--minibatches and --epochs are PPO's; SAC's sizes are "
                         "--set sac.batch_size=... and sac.updates_per_iteration=...")
    for flag, field in _LEARNER_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[f"{algo}.{field}"] = value
    # Music files become their clips' full names (options and sha256 in the name).
    names = piece_names([n for text in args.pieces or () for n in text.split(",") if n], args)
    if args.pieces:
        overrides["env.pieces"] = tuple(names)  # not a string: names may hold spaces
    elif args.split:
        overrides["env.pieces"] = ""  # --split wins over a preset's pieces
    if args.no_progress:
        overrides["run.progress"] = False
    overrides.update(parse_set_items(args.set))
    return apply_overrides(SpecialistConfig(), {**env_defaults(overrides), **overrides})


def distributed_arguments(args: argparse.Namespace) -> dict[str, Any] | None:
    """`jax.distributed.initialize` arguments from the flags; None without --distributed.

    Raises:
        ValueError: cluster flags without --distributed, only some of them, or a process id
            outside 0..N-1.
    """
    named = {"coordinator_address": args.coordinator, "num_processes": args.num_processes,
             "process_id": args.process_id}
    given = [k for k, v in named.items() if v is not None]
    if not args.distributed:
        if given:
            raise ValueError("--coordinator, --num-processes and --process-id need --distributed")
        return None
    if not given:
        return {}
    if len(given) != len(named):
        raise ValueError("give all of --coordinator, --num-processes and --process-id, or none "
                         "(then the cluster is detected)")
    if args.num_processes < 1 or not 0 <= args.process_id < args.num_processes:
        raise ValueError(f"--process-id must lie in 0..{args.num_processes - 1}, "
                         f"got {args.process_id}")
    return named


def run_specialists(args: argparse.Namespace) -> int:
    """Runs `train specialists`; returns the exit code (2 on bad input, 130 if interrupted or
    stopped by SIGINT, 143 if stopped by SIGTERM, sent to this process or another of the
    run's)."""
    from train.checkpoint import CheckpointLayoutError
    from train.loop import train_specialists
    from train.plan import plan_run

    try:
        cluster = distributed_arguments(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if cluster is not None:
        import jax

        jax.distributed.initialize(**cluster)
    try:
        config = config_from_args(args)
        plan_run(config, args.resume)  # every input check, before anything compiles
    except (ValueError, NotImplementedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        result = train_specialists(config, args.resume)
    except CheckpointLayoutError as error:  # found when the checkpoint is restored
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second stop signal before the first iteration was done
        print("interrupted before the first iteration finished; no checkpoint written",
              file=sys.stderr)
        return 130
    run = result.plan.config.run
    print(result.summary)
    print(_timing_line(result))
    if result.stopped_by:
        print(f"stopped by {result.stopped_by} after iteration {result.iterations}, with a "
              f"checkpoint there; --resume continues")
    if result.out_of_time:
        print(f"stopped at the time limit ({run.time_limit_s:g} s) after {result.iterations} "
              "iterations; --resume with a larger --time-limit continues")
    print(f"wrote {run.out}/: train.csv eval.csv tensorboard/ checkpoints/ summary.txt "
          "learning_curve.png")
    if result.stopped_by and result.stopped_by.startswith("SIGTERM"):
        return 143
    return 130 if result.interrupted else 0


def _timing_line(result: RunResult) -> str:
    """What this call ran and how fast: compile apart from the steady iterations."""
    ran = result.iterations - (result.plan.resume_from or 0)
    head = f"{len(result.plan.seeds)} agent(s), {result.iterations} iterations"
    if ran == 0:
        return f"{head}; the checkpoint already had them, nothing ran (raise --iterations to go on)"
    line = f"{head}; first call of this process (compile + 1 iteration) {result.compile_s:.1f} s"
    if ran > 1:
        line += (f", then {result.train_s:.1f} s at {result.env_steps_per_s:,.0f} env steps/s "
                 "over all agents")
    return line
