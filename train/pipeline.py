"""`mjx-piano pipeline`: the whole chain in one command, each stage through its own command.

specialists for every piece (`train pool`) -> a trajectory store of their rollouts (`dataset
collect --run <pool>`, the whole library) -> the flow transformer trained on it (`generalist
train --source dataset`) -> its evaluation on its training pieces and the held-out ones ->
`report.md` and `report.png` (the specialists' F1 distribution, the generalist's F1 by split
against the specialists', where the learning curves are). Every stage resumes, and one whose
output is complete does nothing, so the same command continues an interrupted pipeline.
`generalist miniature` is this command at toy sizes.

`--dagger-rounds R` (default 1) adds R rounds of DAgger after the first generalist: round r
rolls the last generalist out on every piece while the pieces' specialists label the states
it visits (`dataset collect --relabel-learner`, into `dataset_dagger<r>/`), then trains a
new generalist (`generalist_dagger<r>/`, the same steps) on the first store and every
relabelled one. The report gives each round's generalist by split.

On the piano env the specialists are, by default, the learning ladder's best recipe
(`--specialists ilc`, `train.pipeline_ilc`): one `train ilc` run (the segment search on the IK
pianist) over all clips, cut to `--clip-steps` when their lengths differ; `--specialists rl`
keeps the RL pool (`train pool`, PPO or SAC by `--preset`), the only kind on the toy env.

`--budget-hours H` gives the pool `--pool-share` of H (default 0.8) as its wall-clock budget
(an RL pool's across resumes, an ILC pool's per command); the dataset and the generalist
follow with the specialists written by then, their time set by --rollouts and --steps.
`stages.json` keeps each stage's wall seconds, and the report lists them.

Examples:
    mjx-piano pipeline --env toy --pieces toy-00 toy-01 toy-02 toy-03 --out runs/pipe
    mjx-piano pipeline --env piano --split train --limit 64 --clip-steps 100 \\
        --max-env-steps 100000 --size small --steps 20000 --eval-limit 64 --out runs/pipeline
    mjx-piano pipeline --env piano --specialists rl --split train --limit 256 --slots 64 \\
        --preset gpu --max-env-steps 2000000 --size small --steps 20000 --out runs/pipeline
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from typing import Any, Sequence

from mjx_piano.cli_flags import add_key_dynamics, add_out
from mjx_piano.paths import run_kind
from train import pipeline_ilc

STAGES = ("pool", "dataset", "generalist")  # then dataset_dagger<r>, generalist_dagger<r>


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
    parser.add_argument("--specialists", choices=("rl", "ilc"),
                        help="how the pool trains: 'rl' (`train pool`: PPO or SAC per piece, "
                             "the default on --env toy) or 'ilc' (`train ilc`: the learning "
                             "ladder's best recipe on the IK pianist, all clips in one run; the "
                             "default on --env piano)")
    parser.add_argument("--clip-steps", type=int, metavar="L",
                        help="--specialists ilc: cut every clip to its first L control steps "
                             "(one run needs equal lengths; shorter clips are left out)")
    parser.add_argument("--preset", help="rl pool: specialists' preset (default cpu-smoke)")
    parser.add_argument("--slots", type=int, help="rl pool: slots (default 4)")
    parser.add_argument("--target-f1", type=float, default=0.8)
    parser.add_argument("--max-env-steps", type=int, default=20_480,
                        help="a piece's env-step budget (default 20,480)")
    parser.add_argument("--eval-every", type=int,
                        help="rl pool: iterations per pool round (default 10)")
    parser.add_argument("--budget-hours", type=float, metavar="H",
                        help="wall-clock budget; the pool gets --pool-share of it")
    parser.add_argument("--pool-share", type=float, default=0.8,
                        help="the pool's share of --budget-hours (default 0.8)")
    parser.add_argument("--rollouts", type=int, default=16, help="trajectories per piece")
    parser.add_argument("--size", default="tiny", help="transformer size (default tiny)")
    parser.add_argument("--steps", type=int, default=300, help="transformer steps")
    parser.add_argument("--batch", type=int, default=128, help="transformer batch")
    parser.add_argument("--eval-limit", type=int, metavar="K",
                        help="the generalists' evaluation: the first K pieces of the held-out "
                             "split (default: all of it; on the piano env hundreds of clips)")
    parser.add_argument("--dagger-rounds", type=int, default=1,
                        help="DAgger rounds after the first generalist (default 1)")
    add_out(parser, required=True)
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=_run_command)


def _run_command(args: argparse.Namespace) -> int:
    """`pipeline`'s entry: its stages' commands, run (2 on bad settings)."""
    import sys

    try:
        commands = stage_commands(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return run_pipeline(args.out, commands)


def stage_names(rounds: int) -> list[str]:
    """The stages' names (= their folders under the pipeline's `--out`), in order."""
    return [*STAGES, *(f"{kind}_dagger{r}" for r in range(1, rounds + 1)
                       for kind in ("dataset", "generalist"))]


def stage_commands(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """Each stage's name and command line (argv without the program name), in order.

    Raises:
        ValueError: a --pool-share outside (0, 1] or negative --dagger-rounds.
    """
    if args.dagger_rounds < 0:
        raise ValueError(f"--dagger-rounds must be >= 0, got {args.dagger_rounds}")
    where = {name: os.path.join(args.out, name) for name in stage_names(args.dagger_rounds)}
    which = ["--pieces", *args.pieces] if args.pieces else ["--split", args.split]
    which += ["--limit", str(args.limit)] if args.limit else []
    which += ["--repertoire", args.repertoire] if args.repertoire else []
    quiet = ["--no-progress"] if args.no_progress else []
    physics = ["--key-dynamics", args.key_dynamics] if args.key_dynamics else []
    budget = []
    if args.budget_hours is not None:
        if not 0 < args.pool_share <= 1:
            raise ValueError(f"--pool-share must be in (0, 1], got {args.pool_share:g}")
        budget = ["--budget-hours", repr(args.budget_hours * args.pool_share)]

    def collect(out: str, learner: list[str]) -> list[str]:
        return ["dataset", "collect", "--run", where["pool"], *learner, "--out", out,
                "--rollouts", str(args.rollouts), "--chunk-envs", str(args.rollouts), *quiet]

    def generalist(stores: list[str], out: str) -> list[str]:
        return ["generalist", "train", "--source", "dataset", "--data", *stores, "--env",
                args.env, "--size", args.size, "--steps", str(args.steps), "--batch",
                str(args.batch), "--lr", "3e-3", "--log-every", "50", "--out", out, *quiet,
                *(["--eval-limit", str(args.eval_limit)] if args.eval_limit else []),
                "--set", "optim.warmup_steps=20", "--set", f"optim.decay_steps={args.steps}"]

    if specialists_kind(args) == "ilc":
        clips, left_out = pipeline_ilc.clip_names(args)
        if left_out:
            print(f"--clip-steps {args.clip_steps}: {len(left_out)} shorter clip(s) left out: "
                  f"{', '.join(left_out[:5])}{' ...' if len(left_out) > 5 else ''}")
        pool = pipeline_ilc.pool_command(args, clips, where["pool"], quiet, physics)
    else:
        if args.clip_steps is not None:
            raise ValueError("--clip-steps is for --specialists ilc")
        pool = ["train", "pool", "--env", args.env, *which, *physics, "--preset",
                args.preset or "cpu-smoke", "--slots", str(args.slots or 4), "--target-f1",
                str(args.target_f1), "--max-env-steps", str(args.max_env_steps),
                "--eval-every", str(args.eval_every or 10), *budget, "--out", where["pool"],
                *quiet]
    commands = [
        ("pool", pool),
        ("dataset", collect(where["dataset"], [])),
        ("generalist", generalist([where["dataset"]], where["generalist"]))]
    stores, learner = [where["dataset"]], where["generalist"]
    for r in range(1, args.dagger_rounds + 1):
        stores.append(where[f"dataset_dagger{r}"])
        commands.append((f"dataset_dagger{r}", collect(stores[-1],
                                                       ["--relabel-learner", learner])))
        learner = where[f"generalist_dagger{r}"]
        commands.append((f"generalist_dagger{r}", generalist(list(stores), learner)))
    return commands


def specialists_kind(args: argparse.Namespace) -> str:
    """`--specialists`, or its default: 'ilc' on the piano env (the ladder's best recipe,
    `bench/RESULTS.md`), 'rl' on the toy env (no IK pianist there)."""
    return args.specialists or ("ilc" if args.env == "piano" else "rl")


def run_pipeline(out: str, commands: Sequence[tuple[str, list[str]]]) -> int:
    """Runs the stages (each resumes what `out` holds); stops at the first that fails; writes
    the report. Returns the exit code."""
    from mjx_piano.cli import main

    for stage, argv in commands:
        resumable = argv[:2] in (["train", "pool"], ["generalist", "train"])
        if resumable and os.path.isdir(os.path.join(argv[argv.index("--out") + 1],
                                                    "checkpoints" if argv[0] == "generalist"
                                                    else "pool")):
            argv = [*argv, "--resume"]
        print("$ mjx-piano " + " ".join(argv), flush=True)
        tic = time.perf_counter()
        code = main(argv)
        _add_stage_seconds(out, stage, time.perf_counter() - tic)
        if code:
            return code
    pool = dict(commands).get("pool", [])
    target = float(pool[pool.index("--target-f1") + 1]) if "--target-f1" in pool else 0.8
    paths = write_report(out, [name for name, _ in commands], target)
    print(f"report: {', '.join(paths)}")
    return 0


def _add_stage_seconds(out: str, stage: str, seconds: float) -> None:
    """Adds `seconds` to the stage's wall seconds in `out/stages.json` (all runs of `out`)."""
    path = os.path.join(out, "stages.json")
    spent = _stage_seconds(out)
    spent[stage] = round(spent.get(stage, 0.0) + seconds, 3)
    os.makedirs(out, exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(spent, f, indent=1)
    os.replace(path + ".tmp", path)


def _stage_seconds(out: str) -> dict[str, float]:
    """{stage: wall seconds} from `out/stages.json` ({} before the first stage ends)."""
    path = os.path.join(out, "stages.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def write_report(out: str, stages: Sequence[str] = STAGES, target_f1: float = 0.8) -> list[str]:
    """`report.md` and `report.png` in `out` from the stages' outputs (`stages`: their names,
    as `stage_names` gives them; `target_f1`: an ILC pool's clips at or above it count as
    solved, an RL pool says itself); returns their paths."""
    pool = os.path.join(out, "pool")
    if run_kind(pool) == "ilc":
        specialists = pipeline_ilc.specialist_rows(pool, target_f1)
        curves = "`pool/learning_curve.png` and `pool/eval.csv` (the ILC run's clips)"
    else:
        with open(os.path.join(pool, "pieces.csv")) as f:
            specialists = list(csv.DictReader(f))
        curves = "`pool/library/<index>/` (each specialist's run) and `pool/pieces.csv`"
    generalists = [name for name in stages if name.startswith("generalist")]
    evaluations = {}
    for name in generalists:
        with open(os.path.join(out, name, "eval_id_ood.json")) as f:
            evaluations[name] = json.load(f)
    f1 = [float(r["f1"]) for r in specialists if r["f1"]]
    by_piece = {r["piece"]: float(r["f1"]) for r in specialists if r["f1"]}
    solved = sum(r["status"] == "solved" for r in specialists)
    unfinished = sum(r["status"] in ("queued", "training") for r in specialists)
    spent = _stage_seconds(out)
    lines = ["# Pipeline report", "",
             f"Specialists (`pool/`): {len(f1)} pieces, {solved} reached the target; "
             f"F1 median {_median(f1):.3f}, min {min(f1):.3f}, max {max(f1):.3f}."
             + (f" {unfinished} pieces were not trained (the pool's time budget)."
                if unfinished else ""), "",
             "Wall time: " + ", ".join(f"{stage} {spent[stage] / 60:.1f} min"
                                       for stage in stages if stage in spent) + ".", "",
             "Generalists' mean eval F1 by split (`generalist/`, then each DAgger round's "
             "`generalist_dagger<r>/`), beside the specialists' on the same pieces:", "",
             "| split | pieces | " + " | ".join(f"`{name}`" for name in generalists)
             + " | specialists |", "|---|---|" + "---|" * (len(generalists) + 1)]
    rows = []
    for split, result in evaluations[generalists[0]].items():
        mine = [by_piece[p] for p in result["pieces"] if p in by_piece]
        theirs = sum(mine) / len(mine) if mine else None
        scores = [evaluations[name][split]["means"]["eval/f1"] for name in generalists]
        rows.append((split, scores, theirs))
        lines.append(f"| {split} | {len(result['pieces'])} | "
                     + " | ".join(f"{score:.3f}" for score in scores)
                     + f" | {'-' if theirs is None else f'{theirs:.3f}'} |")
    lines += ["", f"Learning curves: `generalist*/loss.png` (the transformers), {curves}.", ""]
    report = os.path.join(out, "report.md")
    with open(report, "w") as f:
        f.write("\n".join(lines))
    figure = os.path.join(out, "report.png")
    _plot(f1, generalists, rows, figure)
    return [report, figure]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _plot(f1: list[float], generalists: list[str],
          rows: list[tuple[str, list[float], Any]], path: str) -> None:
    """The specialists' F1 histogram beside each generalist's and the specialists' mean F1
    by split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.hist(f1, bins=10, range=(0.0, 1.0), color="tab:blue")
    left.set(xlabel="specialist eval F1", ylabel="pieces", title="specialists")
    bars = [*generalists, "specialists"]
    width = 0.8 / len(bars)
    for b, name in enumerate(bars):
        heights = [(r[1][b] if b < len(generalists) else r[2]) or 0.0 for r in rows]
        right.bar([i - 0.4 + (b + 0.5) * width for i in range(len(rows))], heights, width,
                  label=name)
    right.set(xticks=list(range(len(rows))), xticklabels=[r[0] for r in rows], ylim=(0, 1),
              ylabel="mean eval F1", title="by split")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
