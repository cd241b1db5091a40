"""F1 of a ladder ILC run's tables across batch shapes: how much of a clip's F1 is float rounding.

    python3 -m bench.ilc_slots --rung R1 --recipe ik-ilc-fingerings --seed 0 --out runs/ladder

A clip's rollout is chaotic at the contacts, and XLA's float rounding depends on the batch
shape most and on the slot a little (on CPU, 2026-12-03: seed 1's madrigal.3.5/05 table scored
0.706 in a batch of 4 and 0.846 in both slots of a batch of 8; seed 0's madrigal.3.5/06 table
differed by up to 0.044 between slots of one batch; limiting XLA to SSE4.2, without FMA,
changed the numbers but not their dependence on the batch). A single evaluation's F1 is one
sample of that. This plays each clip's final table (its chosen fingering variant, as the
run's evaluation does) in every slot of batches of the clips repeated 1, 2, 6, 12 and 14
times (`--copies`: batches of 4, 8, 24, 48 and 56 for four clips, one compile each; 48 is the
search's batch of `ik-ilc-fingerings`), and reports per clip its F1 in each batch (the mean
over its slots there), the largest spread between its slots within one batch, and the mean,
least and most F1 over the batches, each batch weighted equally; and the median over clips of
those means. Writes `slots.json` into the run folder and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable

import jax.numpy as jnp
import numpy as np

from bench.learning_ladder import RECIPES, ilc_config, ilc_env, make_rung, run_folder
from train.ilc import best_variant, make_player
from train.ilc_store import STATE_FILE, played_arrays

SLOTS_FILE = "slots.json"


def slot_f1(play: Callable, tables: np.ndarray, costs: np.ndarray,
            copies: tuple[int, ...]) -> list[np.ndarray]:
    """Each clip's F1 in every slot of batches of the clips repeated `copies` times.

    Args:
        play: `(pieces int32 [B], costs float32 [B], tables float32 [B, T, F, 3]) -> f1 [B]`.
        tables: float32 [C, T, F, 3], each clip's table. costs: float32 [C], each clip's thumb
            black-key cost. copies: repeats of the clips per batch, one batch each.

    Returns:
        C arrays of F1 [sum(copies)], one per clip, in the order of `copies`.
    """
    clips = tables.shape[0]
    per_clip: list[list[float]] = [[] for _ in range(clips)]
    for k in copies:
        index = np.tile(np.arange(clips, dtype=np.int32), k)  # clip-interleaved slots
        f1 = np.asarray(play(index, costs[index], tables[index]))
        for c in range(clips):
            per_clip[c] += f1[index == c].tolist()
    return [np.asarray(f, np.float64) for f in per_clip]


def summary(names: tuple[str, ...], per_clip: list[np.ndarray],
            copies: tuple[int, ...]) -> dict:
    """Per clip: F1 in each batch (mean over its slots there, keyed by the batch size), the
    largest spread between its slots within a batch, and the mean / least / most over the
    batches (equally weighted); the median over clips of the means.

    Args:
        names: the clips. per_clip: `slot_f1`'s arrays [sum(copies)]. copies: as given to it.
    """
    edges = np.cumsum((0,) + tuple(copies))
    sizes = [len(names) * k for k in copies]
    rows = []
    for name, f1 in zip(names, per_clip):
        batches = [f1[a:b] for a, b in zip(edges[:-1], edges[1:])]
        means = np.array([b.mean() for b in batches])
        rows.append({"clip": name, "by_batch": {str(n): float(m) for n, m in zip(sizes, means)},
                     "spread_within": float(max(b.max() - b.min() for b in batches)),
                     "mean": float(means.mean()), "min": float(means.min()),
                     "max": float(means.max())})
    return {"clips": rows, "batch_sizes": sizes,
            "median_of_means": float(np.median([r["mean"] for r in rows]))}


def markdown(report: dict) -> str:
    """The summary as a markdown table."""
    sizes = [str(n) for n in report["batch_sizes"]]
    lines = ["| clip | " + " | ".join(f"batch {n}" for n in sizes)
             + " | mean | least | most | spread within a batch |",
             "|---|" + "---:|" * (len(sizes) + 4)]
    lines += [f"| {r['clip']} | " + " | ".join(f"{r['by_batch'][n]:.3f}" for n in sizes)
              + f" | {r['mean']:.3f} | {r['min']:.3f} | {r['max']:.3f} | "
              f"{r['spread_within']:.3f} |" for r in report["clips"]]
    return "\n".join(lines + [f"\nmedian over clips of the mean F1: "
                              f"{report['median_of_means']:.3f}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rung", default="R1")
    parser.add_argument("--recipe", default="ik-ilc-fingerings",
                        choices=[r.name for r in RECIPES.values() if r.learner == "ilc"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/ladder", help="the ladder folder")
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 2, 6, 12, 14])
    args = parser.parse_args(argv)
    folder = run_folder(args.out, args.rung, args.recipe, args.seed)
    state_path = os.path.join(folder, STATE_FILE)
    if not os.path.exists(state_path):
        print(f"bench.ilc_slots: no {state_path} (run `bench learning` first)", file=sys.stderr)
        return 2
    if min(args.copies) < 1:
        print("bench.ilc_slots: --copies must be >= 1", file=sys.stderr)
        return 2
    rung = make_rung(args.rung)
    costs = np.asarray(ilc_config(RECIPES[args.recipe], args.seed).thumb_black_costs, np.float32)
    with np.load(state_path) as saved:
        tables, step_f1 = played_arrays(saved)
    clips = len(rung.pieces)
    if tables.shape[0] != clips * len(costs):
        print(f"bench.ilc_slots: {state_path} holds {tables.shape[0]} tables, not {clips} clips "
              f"x {len(costs)} variants of {args.recipe}", file=sys.stderr)
        return 2
    variant = best_variant(step_f1, len(costs))
    _, play = make_player(ilc_env(rung))
    per_clip = slot_f1(lambda p, c, t: play(jnp.asarray(p), jnp.asarray(c), jnp.asarray(t)).f1,
                       tables[np.arange(clips) * len(costs) + variant], costs[variant],
                       tuple(args.copies))
    report = summary(rung.pieces, per_clip, tuple(args.copies))
    report["copies"], report["thumb_black_cost"] = args.copies, costs[variant].tolist()
    with open(os.path.join(folder, SLOTS_FILE), "w") as f:
        json.dump(report, f, indent=1)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
