"""`mjx-piano generalist train|eval`: the flow-matching transformer from the command line.

Examples:
    mjx-piano generalist train --env toy --size tiny --steps 300 --out runs/gen-toy
    mjx-piano generalist train --source dataset --data runs/dataset --env piano \\
        --size omnipianist --batch 1024 --steps 200000 --out runs/gen --resume
    mjx-piano generalist eval --policy runs/gen-toy --split ood
    mjx-piano generalist eval --policy runs/gen --split train test_id test_ood --limit 256
    mjx-piano generalist miniature --out runs/miniature    # specialists -> dataset -> report
    mjx-piano generalist train --set optim.warmup_steps=500 --set run.execute=4

Configuration = dataclass defaults, then --size, then the flags, then --set (later wins).
Bad input is reported before anything compiles, with exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mjx_piano.cli_flags import add_out
from mjx_piano.music.piece_args import add_music_options, piece_names
from mjx_piano.paths import check_output_folder, check_run_folder
from train.config import parse_set_items
from train.generalist import config as cfg

_FLAG_FIELDS = {
    "env": "data.env", "source": "data.source", "data": "data.path", "steps": "run.steps",
    "batch": "optim.batch_size", "lr": "optim.learning_rate", "seed": "run.seed",
    "out": "run.out", "execute": "run.execute", "flow_steps": "run.flow_steps",
    "eval_every": "run.eval_every", "checkpoint_every": "run.checkpoint_every",
    "log_every": "run.log_every", "eval_limit": "run.eval_limit",
    "repertoire": "run.eval_repertoire",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `generalist` command group (`generalist train`, `generalist eval`)."""
    group = subparsers.add_parser("generalist", help="flow-matching transformer over many pieces")
    group.set_defaults(run=lambda args: (group.print_help(), 2)[1])
    commands = group.add_subparsers(dest="generalist_command", metavar="WHAT")
    train = commands.add_parser("train", help="train (or resume) a generalist",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--env", choices=cfg.ENV_NAMES, help="env to evaluate in (default toy)")
    train.add_argument("--pieces", nargs="+", metavar="NAME",
                       help="training pieces (names or music files)")
    train.add_argument("--source", choices=("scripted", "dataset", "mixture"),
                       help="where windows come from (default scripted)")
    train.add_argument("--data", nargs="+", metavar="STORE",
                       help="dataset folder(s) of the same pieces (for --source dataset), "
                            "sampled together")
    train.add_argument("--size", choices=sorted(cfg.MODEL_SIZES), default="tiny",
                       help="model size (default tiny)")
    train.add_argument("--steps", type=int, help="optimiser steps")
    train.add_argument("--batch", type=int, help="windows per step (all devices)")
    train.add_argument("--lr", type=float, help="peak learning rate")
    train.add_argument("--seed", type=int)
    add_out(train, help="output folder (default runs/generalist)")
    train.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    train.add_argument("--execute", type=int, help="actions executed per chunk (1..4)")
    train.add_argument("--flow-steps", type=int, help="Euler steps per chunk (default 10)")
    train.add_argument("--eval-every", type=int, help="steps between env evaluations")
    train.add_argument("--checkpoint-every", type=int)
    train.add_argument("--log-every", type=int)
    train.add_argument("--eval-splits", nargs="+", default=["id", "ood"],
                       choices=sorted(cfg.SPLIT_ALIASES),
                       help="splits evaluated at the end (default: id ood)")
    train.add_argument("--eval-limit", type=int,
                       help="evaluate the first K pieces of each named split (default: all)")
    train.add_argument("--repertoire", metavar="NAME",
                       help="evaluation splits of a repertoire built with `repertoire build "
                            "--from DIR --name NAME` (default: the corpus one)")
    train.add_argument("--no-progress", action="store_true")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                       help="any config field, e.g. optim.warmup_steps=500 (repeatable)")
    add_music_options(train)
    train.set_defaults(run=run_train)
    evaluate = commands.add_parser("eval", help="evaluate a trained generalist on splits")
    evaluate.add_argument("--policy", required=True,
                          help="run folder (newest checkpoint) or <run>/checkpoints/<step>")
    evaluate.add_argument("--split", nargs="+", default=None,
                          choices=sorted(cfg.SPLIT_ALIASES),
                          help="splits (default ood, or pieces with --pieces): id = the run's "
                               "training pieces; train, test_id, test_ood (= ood) of the built "
                               "repertoire; etude-test...; pieces = those named with --pieces")
    evaluate.add_argument("--pieces", nargs="+", metavar="NAME",
                          help="evaluate these pieces or music files (the 'pieces' split)")
    evaluate.add_argument("--repertoire", metavar="NAME",
                          help="named splits of a repertoire built with `repertoire build "
                               "--from DIR --name NAME` (default: the corpus one)")
    evaluate.add_argument("--limit", type=int, metavar="K",
                          help="only the first K pieces of each named split (default: all)")
    add_music_options(evaluate)
    evaluate.add_argument("--envs-per-piece", type=int)
    evaluate.add_argument("--execute", type=int)
    evaluate.add_argument("--flow-steps", type=int)
    evaluate.add_argument("--seed", type=int)
    add_out(evaluate, help="report folder (default: the policy's run folder)")
    evaluate.set_defaults(run=run_eval)
    mini = commands.add_parser(
        "miniature", help="tiny specialists -> dataset -> tiny transformer -> report (CPU, CI)")
    add_out(mini, default="runs/miniature")
    mini.add_argument("--steps", type=int, default=300, help="transformer training steps")
    mini.add_argument("--resume", action="store_true", help="continue each stage")
    mini.set_defaults(run=_run_miniature)
    bench = commands.add_parser("bench", help="training windows/s and rollout env steps/s")
    bench.add_argument("--sizes", nargs="+", default=["tiny", "small"],
                       choices=sorted(cfg.MODEL_SIZES))
    bench.add_argument("--batch", type=int, default=64, help="windows per training step")
    bench.add_argument("--steps", type=int, default=10, help="timed training steps")
    bench.add_argument("--env", default="toy", choices=cfg.ENV_NAMES, help="rollout env")
    bench.add_argument("--envs", type=int, default=64, help="rollout envs")
    bench.add_argument("--execute", type=int, default=2)
    bench.add_argument("--flow-steps", type=int, default=10)
    bench.add_argument("--json", help="also write the results to this file")
    bench.set_defaults(run=_run_bench)


def _run_miniature(args: argparse.Namespace) -> int:
    from train.generalist.miniature import run_miniature

    return run_miniature(args.out, args.steps, args.resume)


def _run_bench(args: argparse.Namespace) -> int:
    from train.generalist.bench import run_bench

    return run_bench(args)


def config_from_args(args: argparse.Namespace) -> cfg.GeneralistConfig:
    """defaults < --size < flags < --set.

    Raises:
        ValueError: unknown fields or values that do not parse or do not fit together.
    """
    config = cfg.with_model_size(cfg.GeneralistConfig(), args.size)
    overrides: dict[str, Any] = {}
    for flag, field in _FLAG_FIELDS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[field] = value
    if getattr(args, "data", None):  # the first store is data.path, any more extra_paths
        overrides["data.path"], overrides["data.extra_paths"] = args.data[0], tuple(args.data[1:])
    names = piece_names([n for text in args.pieces or () for n in text.split(",") if n], args)
    if args.pieces:
        overrides["data.pieces"] = tuple(names)  # not a string: names may hold spaces
    if args.no_progress:
        overrides["run.progress"] = False
    overrides.update(parse_set_items(args.set))
    config = cfg.apply_overrides(config, overrides)
    cfg.check(config)
    return config


def run_train(args: argparse.Namespace) -> int:
    """Runs `generalist train`; returns the exit code."""
    from train.generalist.model import parameter_count
    from train.generalist.pipeline import train_run
    from train.generalist.rollout import format_table

    try:
        config = config_from_args(args)
        check_output_folder(config.run.out)
        output = train_run(config, resume=args.resume, eval_splits=args.eval_splits)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = output.result
    if result.stopped_by:
        print(f"stopped by {result.stopped_by} at step {int(result.state.step)}, with a "
              "checkpoint there; --resume continues")
        return 143 if result.stopped_by == "SIGTERM" else 130
    print(format_table(output.evaluation) if output.evaluation else "(no env evaluation)")
    print(f"model {args.size}: {parameter_count(result.state.params):,} parameters; first step "
          f"(compile) {result.compile_s:.1f} s, then {result.samples_per_s:,.0f} windows/s; "
          f"final loss {result.losses[-1][1]:.4f}" if result.losses else "nothing to do")
    report = "eval_" + "_".join(output.evaluation) if output.evaluation else "(no eval)"
    print(f"wrote {config.run.out}/: checkpoints/ train.csv eval.csv tensorboard/ loss.png "
          f"{report}.txt/.json/.png")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    """Runs `generalist eval`; returns the exit code."""
    import dataclasses
    import os

    from train.generalist.pipeline import evaluate_splits, load_generalist
    from train.generalist.rollout import format_table

    splits = args.split or (["pieces"] if args.pieces else ["ood"])
    try:
        pieces = piece_names([n for text in args.pieces or () for n in text.split(",") if n],
                             args)
        check_run_folder(args.policy, "generalist", "--policy")
        config, model, params, step = load_generalist(args.policy)
        changes = {k: v for k, v in (("eval_envs_per_piece", args.envs_per_piece),
                                     ("eval_limit", args.limit),
                                     ("eval_pieces", tuple(pieces) or None),
                                     ("eval_repertoire", args.repertoire),
                                     ("execute", args.execute), ("flow_steps", args.flow_steps),
                                     ("seed", args.seed)) if v is not None}
        config = dataclasses.replace(config, run=dataclasses.replace(config.run, **changes))
        cfg.check(config)
        out = args.out or config.run.out
        if config.data.source == "mixture":
            raise ValueError("this policy was trained on the synthetic mixture: no env to play")
        results = evaluate_splits(config, model, params, splits, out)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_table(results))
    print(f"checkpoint step {step}; wrote {os.path.join(out, 'eval_' + '_'.join(splits))}"
          ".txt/.json/.png")
    return 0
