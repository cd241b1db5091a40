"""`mjx-piano dataset collect|stats`: build a trajectory store from specialists, describe it.

Examples:
    mjx-piano dataset collect --run runs/specialists --rollouts 256 --noise 0.1 --out runs/data
    mjx-piano dataset collect --run runs/specialists --relabel-learner runs/learner --out d2
    mjx-piano dataset stats runs/data

A killed `collect` is resumed by running the same command again (the same settings are
required; other settings are refused with exit code 2).
"""

from __future__ import annotations

import argparse
import json
import sys

from mjx_piano.cli_flags import add_out


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `dataset` command group."""
    group = subparsers.add_parser("dataset", help="collect and inspect trajectory datasets")
    group.set_defaults(run=lambda args: _print_help(group))
    commands = group.add_subparsers(dest="dataset_command", metavar="COMMAND")

    collect = commands.add_parser(
        "collect", help="roll out trained specialists into a store (resumable)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    collect.add_argument("--run", required=True, dest="run_dir", metavar="RUN_DIR",
                         help="specialists run folder (checkpoints/), a pool's library, "
                              "or an ILC run (`train ilc`: each clip an agent)")
    add_out(collect, required=True, help="store folder")
    collect.add_argument("--rollouts", type=int, default=64, help="trajectories per specialist")
    collect.add_argument("--chunk-envs", type=int, default=64,
                         help="envs per specialist per chunk (one shard per chunk)")
    collect.add_argument("--noise", type=float, default=0.0,
                         help="std of Gaussian action noise in the policy's [-1, 1] space")
    collect.add_argument("--seed", type=int, default=0)
    collect.add_argument("--min-f1", type=float, default=0.0,
                         help="drop trajectories with a lower F1")
    collect.add_argument("--keep-flagged", action="store_true",
                         help="keep trajectories under --min-f1, flagged, instead of dropping")
    collect.add_argument("--relabel-learner", metavar="RUN",
                         help="training run whose policy acts; the specialists only label")
    collect.add_argument("--no-progress", action="store_true")
    collect.set_defaults(run=run_collect)

    stats = commands.add_parser("stats", help="print a store's dataset card")
    stats.add_argument("store", help="store folder")
    stats.add_argument("--json", action="store_true", help="print the card as JSON")
    stats.add_argument("--verify", action="store_true",
                       help="also check every shard file's sha256 against the manifest (sizes "
                            "are always checked); exit 1 if a shard is damaged")
    stats.set_defaults(run=run_stats)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_collect(args: argparse.Namespace) -> int:
    """Runs `dataset collect`; prints the card and the collection rate."""
    from train.dataset.collect import CollectConfig, collect
    from train.dataset.card import format_card

    config = CollectConfig(
        run=args.run_dir, out=args.out, rollouts=args.rollouts, chunk_envs=args.chunk_envs,
        noise=args.noise, seed=args.seed, min_f1=args.min_f1, keep_flagged=args.keep_flagged,
        relabel_learner=args.relabel_learner, progress=not args.no_progress)
    try:
        result = collect(config)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_card(result.card))
    if result.stopped_by:
        print(f"stopped by {result.stopped_by} after {result.chunks_written} chunk(s), each "
              "committed; the same command again continues")
        return 143 if result.stopped_by == "SIGTERM" else 130
    print(f"collected {result.chunks_written} chunk(s) ({result.chunks_skipped} already there, "
          f"{result.chunks_repaired} repaired), "
          f"{result.env_steps:,} env steps; first chunk (compile + run) {result.compile_s:.1f} s"
          + (f", then {result.env_steps_per_s:,.0f} env steps/s"
             if result.chunks_written > 1 else ""))
    return 0


def run_stats(args: argparse.Namespace) -> int:
    """Runs `dataset stats`: rebuilds the card from the store and prints it."""
    from train.dataset.card import build_card, format_card
    from train.dataset.store import damaged_shards, shard_name

    try:
        damaged = damaged_shards(args.store, checksums=args.verify)
        if damaged:
            for index, problems in damaged.items():
                print(f"{args.store}: {shard_name(index)} is damaged: " + "; ".join(problems),
                      file=sys.stderr)
            print("run `mjx-piano dataset collect` with the same arguments again to recompute "
                  "the damaged shards", file=sys.stderr)
            return 1
        card = build_card(args.store)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(card, indent=1) if args.json else format_card(card))
    if args.verify:
        print(f"verified {card['shards']} shard(s): every file's size and sha256 as committed")
    return 0
