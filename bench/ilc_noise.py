"""F1 of an ILC run's specialists under action noise: do the learned tables hold off their path?

    python3 -m bench.ilc_noise --run runs/ladder/R1/ik-ilc-fingerings/seed1

A table is learned on one deterministic rollout per clip; a dataset collection explores with
noise, and a DAgger learner leaves the specialist's path entirely. This plays each clip of the
run as `dataset collect --run RUN --noise SIGMA` does (the IK pianist with the clip's table
labels and acts; Gaussian noise of std SIGMA per step and action in the policy's [-1, 1]
space, clipped), `--envs` episodes per clip and noise level, in one compiled rollout, and the
same with every table zeroed (the IK pianist alone, the run's first evaluation) as the
baseline: the tables' gain over the IK pianist at each noise level. Writes `noise.json` into
the run folder and prints a markdown table (per clip the mean F1 over its episodes; the median
over clips, and the mean over clips of the table's gain).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

NOISE_FILE = "noise.json"


def noise_f1(run: str, noises: tuple[float, ...], envs: int, seed: int) -> dict:
    """Mean F1 per clip of the run's tables and of zero tables at each noise level.

    Returns:
        {'pieces': [C], 'noise': [N], 'envs': envs, 'seed': seed, 'env_steps': the run's env
        steps per clip, 'table': float [N][C], 'ik_alone': float [N][C], 'seconds': wall
        seconds incl. the compile}.
    """
    from train.dataset.collect import make_rollout
    from train.ilc_specialists import load_ilc_specialists

    began = time.perf_counter()
    specialists = load_ilc_specialists(run)
    rollout = make_rollout(specialists.learner, None, int(specialists.loaded.episode_length))
    pieces = jnp.asarray(np.repeat(specialists.agent_pieces, envs, axis=1), jnp.int32)
    zero = jax.tree_util.tree_map(np.zeros_like, specialists.policy)
    zero["thumb_black_cost"] = specialists.policy["thumb_black_cost"]  # the same fingering
    out = {"table": [], "ik_alone": []}
    for sigma in noises:
        key = jax.random.PRNGKey(seed)
        for name, policy in (("table", specialists.policy), ("ik_alone", zero)):
            _, f1, _, _ = rollout(policy, specialists.normalizer, None, None, None, pieces, key,
                                  jnp.float32(sigma), specialists.loaded.bank)
            out[name].append(np.nanmean(np.asarray(f1), axis=1).tolist())
    return {"pieces": list(specialists.loaded.piece_names), "noise": list(noises),
            "envs": envs, "seed": seed, "env_steps": specialists.step, **out,
            "seconds": time.perf_counter() - began}


def markdown(report: dict) -> str:
    """The report as a markdown table: a row per noise level, per clip 'table / IK alone', the
    medians over clips and the mean over clips of the table's gain over the IK pianist."""
    names = [p.split("/")[-2] + "/" + p.split("/")[-1] if "/" in p else p
             for p in report["pieces"]]
    head = ["noise", *names, "median (table / IK alone)", "mean gain"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, sigma in enumerate(report["noise"]):
        table, alone = report["table"][i], report["ik_alone"][i]
        cells = [f"{a:.3f} / {b:.3f}" for a, b in zip(table, alone)]
        lines.append(f"| {sigma:g} | " + " | ".join(cells)
                     + f" | {np.median(table):.3f} / {np.median(alone):.3f}"
                     + f" | {np.mean(np.subtract(table, alone)):+.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="ILC run folder (train ilc, the ladder)")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.01, 0.03, 0.1],
                        help="action noise std in the policy's [-1, 1] space")
    parser.add_argument("--envs", type=int, default=4, help="episodes per clip and level")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.envs < 1 or min(args.noise) < 0:
        print("error: --envs must be >= 1 and --noise >= 0", file=sys.stderr)
        return 2
    try:
        report = noise_f1(args.run, tuple(args.noise), args.envs, args.seed)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with open(os.path.join(args.run, NOISE_FILE), "w") as f:
        json.dump(report, f, indent=1)
    print(f"{args.run}: {report['env_steps']:,} env steps per clip; {args.envs} episodes per "
          f"clip and level; {report['seconds']:.0f} s\n" + markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
