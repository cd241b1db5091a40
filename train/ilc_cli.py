"""`mjx-piano train ilc`: specialists by iterative learning control on the IK pianist.

    mjx-piano train ilc --out runs/ilc
    mjx-piano train ilc --pieces "monteverdi/madrigal.3.5/05@0:100" song.mid@0:100 --out runs/m

Each clip learns a table of fingertip-target offsets for the IK pianist on the full two-hand
scene, one per fingering variant, and plays the better variant (`train.ilc`, `train.ilc_run`).
The clips of one run must be equally long (cut them with `NAME@START:STOP`). The command is
resumable (the same command continues the run in `--out`; SIGTERM / SIGINT stop it after the
round in flight, exit 143 / 130), shows a progress bar, and ends with a table of each clip's
F1, when it first reached `--target-f1`, and `learning_curve.png` (F1 against env steps and
against seconds). `mjx-piano perform --policy OUT --piece NAME` plays a clip's table.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

from mjx_piano.cli_flags import add_key_dynamics, add_out
from mjx_piano.defaults import KERNEL_KEYS_SOLVER, LS_ITERATIONS, SOLVER_ITERATIONS
from mjx_piano.music.piece_args import add_music_options, error_text, piece_names
from mjx_piano.paths import run_kind

DEFAULT_PIECES = ("etude/c-major-chords",)
CURVE_FILE = "learning_curve.png"


DEFAULT_FINGERINGS = (1.0, 0.0)  # the thumbs' cost of a black key (m) per fingering variant
DEFAULT_HORIZON = 20  # steps after a window in the segment search's replays (bench/RESULTS.md)


def add_ilc_command(commands: argparse._SubParsersAction) -> None:
    """Adds `train ilc`."""
    parser = commands.add_parser(
        "ilc", help="specialists by iterative learning control on the IK pianist (full "
                    "two-hand scene, CPU minutes)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pieces", nargs="+", default=list(DEFAULT_PIECES), metavar="NAME",
                        help="clips of equal length: repertoire or etude names, music files, "
                             f"each with an optional @START:STOP (default {DEFAULT_PIECES[0]})")
    add_out(parser, default="runs/ilc", help="run folder (the same command resumes it)")
    parser.add_argument("--env-steps", type=int, default=30_000, metavar="N",
                        help="env steps per clip (candidate rollouts of all its variants; "
                             "default 30000)")
    parser.add_argument("--eval-every", type=int, default=0, metavar="N",
                        help="env steps per clip between evaluations (default: every 10 "
                             "rounds)")
    parser.add_argument("--fingerings", type=float, nargs="+", default=list(DEFAULT_FINGERINGS),
                        metavar="COST", help="fingering variants, the thumbs' cost of a black "
                                             "key (m; default 1.0 0.0: thumbs kept off black "
                                             "keys, or not)")
    parser.add_argument("--verify", action="store_true",
                        help="keep a round's change only if it also wins in a second batch "
                             "shape (other float rounding; its rollouts are counted)")
    parser.add_argument("--train-noise", type=float, default=0.0, metavar="STD",
                        help="search under Gaussian action noise of this std (policy's [-1, 1] "
                             "space, as dataset collect --noise): tables that hold around their "
                             "path; each table plays --noise-draws episodes (default 0: none)")
    parser.add_argument("--noise-draws", type=int, default=4, metavar="N",
                        help="episodes per table and round under --train-noise (default 4)")
    parser.add_argument("--horizon", type=int, metavar="N",
                        help="the segment search: each candidate and the current table replay "
                             "from the env state at their window's start for the window and N "
                             "steps more (default 20; 0 with --verify or --train-noise); 0: "
                             "every candidate plays the whole clip from its first step")
    parser.add_argument("--random-candidates", type=int, default=1, metavar="K",
                        help="random candidates per track and round (default 1); a wider "
                             "round costs a GPU little more time (bench/RESULTS.md)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random candidates")
    parser.add_argument("--time-limit", type=float, default=0.0, metavar="S",
                        help="stop after S seconds of this command (resumable; default none)")
    parser.add_argument("--target-f1", type=float, default=0.8, metavar="F",
                        help="the summary's time-to-F1 threshold (default 0.8)")
    add_key_dynamics(parser, default="kernel")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_music_options(parser)
    parser.set_defaults(run=run_ilc_command)


def run_ilc_command(args: argparse.Namespace) -> int:
    """Runs `train ilc`; exit 2 on bad input (nothing written), else 0 (143 / 130 when a
    signal stopped it)."""
    from train.determinism import deterministic_gpu, float32_matmuls
    from train.ilc import ILCConfig
    from train.ilc_run import ILCRun, run_ilc
    from train.ilc_store import check_same_run, run_description

    deterministic_gpu()  # before anything computes: the search compares replays
    float32_matmuls()
    try:
        names = _clip_names(args)
        if args.env_steps < 1 or args.eval_every < 0:
            raise ValueError(f"--env-steps must be >= 1 and --eval-every >= 0, got "
                             f"{args.env_steps} and {args.eval_every}")
        if len(set(args.fingerings)) < len(args.fingerings):
            raise ValueError(f"--fingerings repeats a cost: {args.fingerings}")
        solver = (KERNEL_KEYS_SOLVER if args.key_dynamics == "kernel"
                  else (SOLVER_ITERATIONS, LS_ITERATIONS))
        other = run_kind(args.out)
        if other not in (None, "ilc"):
            raise ValueError(f"--out: {args.out} holds a {other} run; use another folder")
        config = ILCConfig(seed=args.seed, thumb_black_costs=tuple(args.fingerings),
                           verify=args.verify, train_noise=args.train_noise,
                           noise_draws=args.noise_draws, horizon=_horizon(args),
                           random_candidates=args.random_candidates)
        env = _env(names, args.key_dynamics, solver)
        check_same_run(args.out, run_description(env, names, config))
    except (KeyError, ValueError) as error:
        print(f"train ilc: {error_text(error)}", file=sys.stderr)
        return 2
    steps = int(env.bank.length[0])
    per_round = config.rollouts_per_round * len(args.fingerings) * config.rollout_steps(steps)
    run = ILCRun(out=args.out, steps=steps, env_steps=args.env_steps,
                 eval_every_steps=args.eval_every or 10 * per_round,
                 time_limit_s=args.time_limit, progress=not args.no_progress, config=config)
    line = run_ilc(env, names, run)
    print(line)
    print(summary_table(args.out, args.target_f1))
    print(f"learning curve: {plot_curve(args.out)}")
    print(f"play a clip: mjx-piano perform --policy {args.out} --piece {names[0]!r} "
          f"--out {os.path.join(args.out, 'perform')}")
    return 143 if "SIGTERM" in line else 130 if "SIGINT" in line else 0


def _horizon(args: argparse.Namespace) -> int:
    """`--horizon`, or its default: 20 (the segment search), 0 with `--verify` or
    `--train-noise` (searches of whole clips)."""
    if args.horizon is not None:
        return args.horizon
    return 0 if args.verify or args.train_noise else DEFAULT_HORIZON


def _clip_names(args: argparse.Namespace) -> tuple[str, ...]:
    """The full names of `--pieces` (files expanded to their clips), all equally long.

    Raises:
        ValueError / KeyError: an unknown piece or unreadable file, or clips of unequal length.
    """
    from mjx_piano.default_piece import load_piece
    from mjx_piano.music.events import MusicError

    try:
        names = tuple(piece_names(args.pieces, args))
        lengths = {name: load_piece(name).num_steps for name in names}
    except MusicError as error:
        raise ValueError(str(error)) from None
    if len(set(lengths.values())) > 1:
        shortest = min(lengths.values())
        raise ValueError(f"--pieces: clips of one run must be equally long, these are "
                         f"{lengths} control steps; cut them, e.g. NAME@0:{shortest}")
    return names


@functools.lru_cache(maxsize=2)
def _env(names: tuple[str, ...], key_dynamics: str, solver: tuple[int, int]):
    """The run's env (one object per setting in a process, so its compiled rollout is
    reused by a later command of the same clips)."""
    from mjx_piano.default_piece import load_piece
    from train.ilc_run import scene_env

    return scene_env([load_piece(name) for name in names], key_dynamics, *solver)


def summary_table(out: str, target_f1: float) -> str:
    """A markdown table of the run's last evaluation: per clip F1, precision, recall, the
    fingering played, and the env steps and seconds of its first evaluation at `target_f1`."""
    from train.ilc_store import eval_rows

    rows = eval_rows(out)
    last = max(int(r["env_steps"]) for r in rows)
    lines = [f"| clip | F1 | precision | recall | thumb black-key cost | env steps to F1 "
             f"{target_f1:g} | seconds to F1 {target_f1:g} |", "|---|---|---|---|---|---|---|"]
    for row in (r for r in rows if int(r["env_steps"]) == last):
        reached = [r for r in rows if r["pieces"] == row["pieces"]
                   and float(r["eval/f1"]) >= target_f1]
        first = min(reached, key=lambda r: int(r["env_steps"])) if reached else None
        to_target = (f"{first['env_steps']} | {float(first['wall_s']):.0f}" if first
                     else "not yet | not yet")
        lines.append(f"| {row['pieces']} | {float(row['eval/f1']):.3f} | "
                     f"{float(row['eval/precision']):.3f} | {float(row['eval/recall']):.3f} | "
                     f"{float(row['thumb_black_cost']):g} | {to_target} |")
    return "\n".join(lines)


def plot_curve(out: str) -> str:
    """Writes `learning_curve.png` in `out`: each clip's evaluation F1 against env steps per
    clip and against training seconds; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from train.ilc_store import eval_rows

    rows = eval_rows(out)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for name in dict.fromkeys(r["pieces"] for r in rows):
        mine = [r for r in rows if r["pieces"] == name]
        f1 = [float(r["eval/f1"]) for r in mine]
        axes[0].plot([int(r["env_steps"]) for r in mine], f1, marker=".", label=name)
        axes[1].plot([float(r["wall_s"]) for r in mine], f1, marker=".", label=name)
    axes[0].set_xlabel("env steps per clip")
    axes[1].set_xlabel("training seconds")
    axes[0].set_ylabel("evaluation F1 (from the first step)")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.set_ylim(0, 1)
    axes[1].legend(fontsize=7, loc="lower right")
    figure.suptitle(f"ILC on the IK pianist: {out}")
    figure.tight_layout()
    path = os.path.join(out, CURVE_FILE)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
