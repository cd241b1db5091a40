"""`pipeline --specialists ilc`: the pool stage as one `train ilc` run over the pieces.

The learning ladder's best recipe (`bench learning`, R1: the segment search on the IK pianist,
median F1 0.85 at 100k env steps per clip against 0.0 for PPO, `bench/RESULTS.md`) trains
every clip's specialist in one run, so its clips must be equally long: `--clip-steps L` cuts
each to its first L control steps (`NAME@0:L`) and leaves out the clips shorter than L. The
run's folder (`pool/`) is what `dataset collect --run` reads as an ILC run; its last
evaluation gives the report's specialist F1 per clip.
"""

from __future__ import annotations

import argparse

# Flags of the RL pool that an ILC pool has no use for: refused when given.
RL_ONLY_FLAGS = {"preset": "--preset", "slots": "--slots", "eval_every": "--eval-every"}


def clip_names(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The ILC pool's clips (all equally long) and the pieces left out for being shorter than
    `--clip-steps`.

    Args:
        args: `pipeline`'s arguments (`--pieces` or `--split` / `--limit` / `--repertoire`,
            `--clip-steps`).

    Raises:
        ValueError: an RL-only flag, unknown pieces, `--clip-steps` < 1, no clip as long as
            `--clip-steps`, or clips of unequal length without `--clip-steps`.
    """
    from mjx_piano.default_piece import load_piece
    from train.config import EnvSpec
    from train.envs import resolve_pieces

    given = [flag for name, flag in RL_ONLY_FLAGS.items() if getattr(args, name) is not None]
    if given:
        raise ValueError(f"{', '.join(given)}: settings of the RL pool (--specialists rl), "
                         "not of --specialists ilc")
    if args.env != "piano":
        raise ValueError("--specialists ilc plays the IK pianist: it needs --env piano")
    spec = EnvSpec(name="piano", pieces=tuple(args.pieces or ()), split=args.split or "train",
                   limit=args.limit or 0, repertoire=args.repertoire or "")
    names = resolve_pieces(spec)
    lengths = {name: load_piece(name).num_steps for name in names}
    if args.clip_steps is None:
        if len(set(lengths.values())) > 1:
            raise ValueError(f"--specialists ilc trains its clips in one run, so they must be "
                             f"equally long; these are {sorted(set(lengths.values()))} control "
                             f"steps: give --clip-steps L (each clip's first L steps; shorter "
                             f"ones are left out)")
        return list(names), []
    if args.clip_steps < 1:
        raise ValueError(f"--clip-steps must be >= 1, got {args.clip_steps}")
    kept = [n for n in names if lengths[n] >= args.clip_steps]
    if not kept:
        raise ValueError(f"--clip-steps {args.clip_steps}: no piece is that long (the longest "
                         f"has {max(lengths.values())} control steps)")
    windowed = [n for n in kept if "@" in n and lengths[n] > args.clip_steps]
    if windowed:
        raise ValueError(f"--clip-steps {args.clip_steps}: {windowed[0]!r} is already a window "
                         f"of {lengths[windowed[0]]} steps; cut it to {args.clip_steps} yourself")
    left_out = [n for n in names if lengths[n] < args.clip_steps]
    return [f"{n}@0:{args.clip_steps}" if lengths[n] > args.clip_steps else n
            for n in kept], left_out


def pool_command(args: argparse.Namespace, clips: list[str], out: str,
                 quiet: list[str], physics: list[str]) -> list[str]:
    """`train ilc`'s argv for the pool stage: the clips, `--max-env-steps` per clip, the
    pool's share of `--budget-hours` as its time limit (seconds of that command)."""
    limit = []
    if args.budget_hours is not None:
        limit = ["--time-limit", repr(args.budget_hours * args.pool_share * 3600)]
    return ["train", "ilc", "--pieces", *clips, "--env-steps", str(args.max_env_steps),
            "--target-f1", str(args.target_f1), *physics, *limit, "--out", out, *quiet]


def specialist_rows(pool: str, target_f1: float) -> list[dict[str, str]]:
    """The report's specialist rows from an ILC pool: each clip's F1 at the run's last
    evaluation, 'solved' when it reached `target_f1` ('trained' otherwise), as the RL pool's
    `pieces.csv` gives them ({'piece', 'f1', 'status'})."""
    from train.ilc_store import eval_rows

    rows = eval_rows(pool)
    last = max(int(r["env_steps"]) for r in rows)
    return [{"piece": r["pieces"], "f1": r["eval/f1"],
             "status": "solved" if float(r["eval/f1"]) >= target_f1 else "trained"}
            for r in rows if int(r["env_steps"]) == last]
