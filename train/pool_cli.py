"""`mjx-piano train pool`: every piece of a split to its own specialist, K slots at a time.

Examples:
    mjx-piano train pool --env toy --split train --slots 4 --target-f1 0.8 --max-env-steps 200000
    mjx-piano train pool --env piano --split train --slots 64 --preset gpu --out runs/pool
    mjx-piano train pool --env piano --split train --slots 64 --preset gpu --out runs/pool --resume

The library (`OUT/library/<index>/`, one specialists run folder per piece, and
`OUT/pieces.csv`) fills as agents reach --target-f1 or their piece's --max-env-steps; each
finished piece's slot takes the next piece at once. Decisions are made every --eval-every
iterations. Kill it at any point: --resume loses at most the round in flight.

Before it starts, the pool prints the device-hours its pieces take at most (each at its
budget) from the env steps/s last measured on this device with these settings
(`train/pool_rates.py`), or that there is no such measurement yet; round 2 measures it (and
keeps it for the next pool) and prints the time the pieces left take.

--budget-hours H bounds the pool's wall-clock time (its rounds, across resumes): the round
that spends it writes every slot's agent as it stands (status 'time' in pieces.csv) and the
pieces not started stay 'queued'; --resume with a larger budget goes on with them.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from mjx_piano.music.piece_args import add_music_options


def add_pool_command(commands: argparse._SubParsersAction) -> None:
    """Adds `train pool` to the `train` group."""
    from train.cli import add_run_flags

    parser = commands.add_parser(
        "pool", help="a specialist per piece of a split, K slots training at once; slots are "
                     "refilled as pieces finish",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_flags(parser, pool=True)
    parser.add_argument("--slots", type=int, default=8, help="agents training at once "
                                                              "(default 8)")
    parser.add_argument("--max-env-steps", type=int, default=1_000_000, metavar="N",
                        help="a piece's env-step budget (default 1,000,000)")
    parser.add_argument("--budget-hours", type=float, metavar="H",
                        help="the pool's wall-clock budget, across resumes (default: none)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="any config field, e.g. ppo.entropy_cost=0.01 (repeatable)")
    add_music_options(parser)
    parser.set_defaults(run=run_pool_command)


def run_pool_command(args: argparse.Namespace) -> int:
    """Runs `train pool`; returns the exit code (2 on bad input, 143 / 130 when stopped by
    SIGTERM / SIGINT after a round, with its checkpoint)."""
    from tqdm import tqdm

    from train.cli import config_from_args
    from train.config import RunConfig
    from train.pool import plan_pool, run_pool
    from train.pool_rates import estimate_line, rate_key, record_rate

    try:
        config = config_from_args(args)
        if args.out is None and config.run.out == RunConfig.out:
            config = dataclasses.replace(config, run=dataclasses.replace(config.run,
                                                                         out="runs/pool"))
        budget_s = None if args.budget_hours is None else args.budget_hours * 3600
        plan = plan_pool(config, args.slots, args.max_env_steps, args.resume, budget_s)
    except (ValueError, NotImplementedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    queued = len(plan.loaded.piece_ids)
    key, label = rate_key(plan.config, plan.slots)
    print(f"{queued} pieces, {plan.slots} slots, target F1 {plan.config.run.target_f1:g}, "
          f"budget {plan.max_env_steps:,} env steps per piece; library in "
          f"{plan.config.run.out}/library"
          + (f"; wall-clock budget {args.budget_hours:g} h" if budget_s else ""), flush=True)
    print(estimate_line(key, label, queued, plan.max_env_steps), flush=True)
    bar = tqdm(total=queued, disable=not plan.config.run.progress, unit="piece")
    if plan.resume_from is not None:
        print(f"resumed after round {plan.resume_from}", file=sys.stderr, flush=True)

    def finished(result: dict) -> None:
        bar.update(1)
        bar.set_postfix(last=f"{result['piece']} {result['status']} F1 {result['f1']:.2f}")

    rounds_here: list[float] = []

    def measured(slots, env_steps: int, seconds: float) -> None:
        rounds_here.append(seconds)
        bar.set_postfix(sps=f"{env_steps / seconds:,.0f}")
        if len(rounds_here) == 2:  # the first round of a process includes compilation
            record_rate(key, label, env_steps / seconds)
            left = queued - len(slots.results)
            hours = left * plan.max_env_steps / (env_steps / seconds) / 3600
            fits = ""
            if budget_s:
                left_s = max(budget_s - slots.elapsed, 0.0)
                fits = (f"; the budget's {left_s / 3600:,.2f} h left give at least "
                        f"{int(left_s * env_steps / seconds / plan.max_env_steps):,} pieces")
            print(f"\nmeasured {env_steps / seconds:,.0f} env steps/s over {plan.slots} slots "
                  f"(round 2): the {left} pieces left take at most {hours:,.2f} h at their "
                  f"budget, less as they reach the target{fits}", file=sys.stderr, flush=True)

    slots, stopped_by = run_pool(plan, finished, measured)
    bar.close()
    done = len(slots.results)
    print(f"{done} of {queued} pieces finished "
          f"({sum(r['status'] == 'solved' for r in slots.results)} reached the target) in "
          f"{slots.rounds} rounds; table: {plan.config.run.out}/pieces.csv")
    if budget_s and slots.elapsed >= budget_s and not stopped_by:
        print(f"the budget of {args.budget_hours:g} h is spent "
              f"({sum(r['status'] == 'time' for r in slots.results)} pieces written as they "
              f"stood, {queued - slots.next_piece} not started); --resume with a larger "
              "--budget-hours continues")
    if stopped_by:
        print(f"stopped by {stopped_by} after round {slots.rounds}, with a checkpoint there; "
              "--resume continues")
        return 143 if stopped_by == "SIGTERM" else 130
    return 0
