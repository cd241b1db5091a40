"""`mjx-piano pipeline`: the whole chain in one command, each stage through its own command.

specialists for every piece (`train pool`) -> a trajectory store of their rollouts (`dataset
collect --run <pool>`, the whole library) -> the flow transformer trained on it (`generalist
train --source dataset`) -> its evaluation on its training pieces and the held-out ones ->
`report.md` and `report.png` (the specialists' F1 distribution, the generalist's F1 by split
against the specialists', where the learning curves are). Every stage resumes, and one whose
output is complete does nothing, so the same command continues an interrupted pipeline.
`generalist miniature` is this command at toy sizes.

Examples:
    mjx-piano pipeline --env toy --pieces toy-00 toy-01 toy-02 toy-03 --out runs/pipe
    mjx-piano pipeline --env piano --split train --limit 256 --slots 64 --preset gpu \\
        --max-env-steps 2000000 --size small --steps 20000 --out runs/pipeline
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from typing import Any, Sequence

from mjx_piano.cli_flags import add_key_dynamics, add_out

STAGES = ("pool", "dataset", "generalist")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `pipeline` command."""
    parser = subparsers.add_parser(
        "pipeline", help="specialists pool -> dataset -> generalist -> evaluation report, "
                         "resumable", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="toy", choices=("toy", "piano"),
                        help="environment (default toy)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--pieces", nargs="+", metavar="NAME", help="the pieces")
    which.add_argument("--split", help="a named split of the env's catalogue (e.g. train)")
    parser.add_argument("--limit", type=int, help="with --split: its first K pieces")
    parser.add_argument("--repertoire", metavar="NAME", help="a repertoire built from files")
    add_key_dynamics(parser, default=None)
    parser.add_argument("--preset", default="cpu-smoke", help="specialists' preset "
                                                              "(default cpu-smoke)")
    parser.add_argument("--slots", type=int, default=4, help="pool slots (default 4)")
    parser.add_argument("--target-f1", type=float, default=0.8)
    parser.add_argument("--max-env-steps", type=int, default=20_480,
                        help="a piece's env-step budget (default 20,480)")
    parser.add_argument("--eval-every", type=int, default=10, help="pool round, iterations")
    parser.add_argument("--rollouts", type=int, default=16, help="trajectories per piece")
    parser.add_argument("--size", default="tiny", help="transformer size (default tiny)")
    parser.add_argument("--steps", type=int, default=300, help="transformer steps")
    parser.add_argument("--batch", type=int, default=128, help="transformer batch")
    add_out(parser, required=True)
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=lambda args: run_pipeline(args.out, stage_commands(args)))


def stage_commands(args: argparse.Namespace) -> list[list[str]]:
    """The three stages' command lines (argv without the program name), in order."""
    pool, store, generalist = (os.path.join(args.out, name) for name in STAGES)
    which = ["--pieces", *args.pieces] if args.pieces else ["--split", args.split]
    which += ["--limit", str(args.limit)] if args.limit else []
    which += ["--repertoire", args.repertoire] if args.repertoire else []
    quiet = ["--no-progress"] if args.no_progress else []
    physics = ["--key-dynamics", args.key_dynamics] if args.key_dynamics else []
    return [
        ["train", "pool", "--env", args.env, *which, *physics, "--preset", args.preset,
         "--slots", str(args.slots), "--target-f1", str(args.target_f1),
         "--max-env-steps", str(args.max_env_steps), "--eval-every", str(args.eval_every),
         "--out", pool, *quiet],
        ["dataset", "collect", "--run", pool, "--out", store, "--rollouts", str(args.rollouts),
         "--chunk-envs", str(args.rollouts), *quiet],
        ["generalist", "train", "--source", "dataset", "--data", store, "--env", args.env,
         "--size", args.size, "--steps", str(args.steps), "--batch", str(args.batch),
         "--lr", "3e-3", "--log-every", "50", "--out", generalist, *quiet,
         "--set", "optim.warmup_steps=20", "--set", f"optim.decay_steps={args.steps}"],
    ]


def run_pipeline(out: str, commands: Sequence[list[str]]) -> int:
    """Runs the stages (each resumes what `out` holds); stops at the first that fails; writes
    the report. Returns the exit code."""
    from mjx_piano.cli import main

    for argv in commands:
        resumable = argv[:2] in (["train", "pool"], ["generalist", "train"])
        if resumable and os.path.isdir(os.path.join(argv[argv.index("--out") + 1],
                                                    "checkpoints" if argv[0] == "generalist"
                                                    else "pool")):
            argv = [*argv, "--resume"]
        print("$ mjx-piano " + " ".join(argv), flush=True)
        code = main(argv)
        if code:
            return code
    paths = write_report(out)
    print(f"report: {', '.join(paths)}")
    return 0


def write_report(out: str) -> list[str]:
    """`report.md` and `report.png` in `out` from the stages' outputs; returns their paths."""
    with open(os.path.join(out, "pool", "pieces.csv")) as f:
        specialists = list(csv.DictReader(f))
    with open(os.path.join(out, "generalist", "eval_id_ood.json")) as f:
        generalist = json.load(f)
    f1 = [float(r["f1"]) for r in specialists if r["f1"]]
    by_piece = {r["piece"]: float(r["f1"]) for r in specialists if r["f1"]}
    solved = sum(r["status"] == "solved" for r in specialists)
    lines = ["# Pipeline report", "",
             f"Specialists (`pool/`): {len(f1)} pieces, {solved} reached the target; "
             f"F1 median {_median(f1):.3f}, min {min(f1):.3f}, max {max(f1):.3f}.", "",
             "| split | pieces | generalist F1 (mean) | specialists' F1 on those pieces (mean) |",
             "|---|---|---|---|"]
    rows = []
    for split, result in generalist.items():
        mine = [by_piece[p] for p in result["pieces"] if p in by_piece]
        theirs = sum(mine) / len(mine) if mine else None
        rows.append((split, result["means"]["eval/f1"], theirs))
        lines.append(f"| {split} | {len(result['pieces'])} | {result['means']['eval/f1']:.3f} | "
                     f"{'-' if theirs is None else f'{theirs:.3f}'} |")
    lines += ["", "Learning curves: `generalist/loss.png` (the transformer), "
              "`pool/library/<index>/` (each specialist's run) and `pool/pieces.csv`.", ""]
    report = os.path.join(out, "report.md")
    with open(report, "w") as f:
        f.write("\n".join(lines))
    figure = os.path.join(out, "report.png")
    _plot(f1, rows, figure)
    return [report, figure]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _plot(f1: list[float], rows: list[tuple[str, float, Any]], path: str) -> None:
    """The specialists' F1 histogram beside the generalist's F1 by split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.hist(f1, bins=10, range=(0.0, 1.0), color="tab:blue")
    left.set(xlabel="specialist eval F1", ylabel="pieces", title="specialists")
    names = [r[0] for r in rows]
    x = range(len(rows))
    right.bar([i - 0.2 for i in x], [r[1] for r in rows], 0.4, label="generalist")
    right.bar([i + 0.2 for i in x], [r[2] or 0.0 for r in rows], 0.4, label="specialists")
    right.set(xticks=list(x), xticklabels=names, ylim=(0, 1), ylabel="mean eval F1",
              title="by split")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

