"""The IK pianist with no learning: F1 by piece set, and the controller's cost per env step.

    python3 -m bench.ik_pianist --set etudes --out runs/ik          # all 192 etudes
    python3 -m bench.ik_pianist --set test_ood --limit 50 --out runs/ik   # repertoire clips
    python3 -m bench.ik_pianist --cost --batch 16                   # controller vs env step

Full two-hand scene, kernel keys (solver 2 / 4, the fast lever with parity) unless `--keys
mjx`. Every piece is one env of one vmapped, jitted episode; pieces are grouped by length so
that short ones do not idle through long ones. Writes `ik_<set>.json` (per piece F1,
precision, recall) and prints the median, quartiles and a histogram of F1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time

import jax
import jax.numpy as jnp
import numpy as np

from mjx_piano import ik_pianist
from mjx_piano.cli_flags import add_key_dynamics, add_out
from mjx_piano.defaults import KERNEL_KEYS_SOLVER
from mjx_piano.env import EnvConfig, PianoEnv
from mjx_piano.scene.builder import SceneConfig


def _scene(keys: str) -> SceneConfig:
    solver, line_search = KERNEL_KEYS_SOLVER
    return SceneConfig(key_dynamics=keys, solver_iterations=solver, ls_iterations=line_search)


def piece_names(which: str, limit: int) -> list[str]:
    """'etudes' (the 192 generated ones), a repertoire split, 'dev' / 'check' (the IK's tuning
    sets, `tuning_set`), or comma-separated names."""
    from mjx_piano.music import etude_names, list_clips

    if which == "etudes":
        names = list(etude_names())
    elif which in ("train", "test_id", "test_ood"):
        names = list(list_clips(which))
    elif which in ("dev", "check"):
        names = tuning_set(which)
    else:
        names = which.split(",")
    return names[:limit] if limit else names


def tuning_set(which: str) -> list[str]:
    """The IK pianist's tuning sets of `train` clips cut to 100 steps (`bench/RESULTS.md`):
    'dev', 16 clips by `random.Random(0).sample` and R1's 4; 'check', the first 40 of
    `random.Random(1).sample(clips, 80)` not in 'dev' and at least 100 steps long."""
    import random

    from bench.learning_ladder import r1_clips
    from mjx_piano.default_piece import load_piece
    from mjx_piano.music import list_clips

    clips = list(list_clips("train"))
    dev = random.Random(0).sample(clips, 16)
    if which == "dev":
        return [name + "@0:100" for name in dev] + list(r1_clips())
    names = []
    for name in random.Random(1).sample(clips, 80):
        try:
            if name not in dev and len(names) < 40:
                load_piece(name + "@0:100")
                names.append(name + "@0:100")
        except ValueError:  # shorter than 100 steps
            continue
    return names


def score_pieces(names: list[str], keys: str, group: int) -> list[dict]:
    """Plays every piece once with the IK pianist; returns per piece scores."""
    from mjx_piano.default_piece import load_piece

    rolls = sorted((load_piece(n) for n in names), key=lambda r: r.num_steps)
    rows = []
    for start in range(0, len(rolls), group):
        chunk = rolls[start:start + group]
        env = PianoEnv(EnvConfig(scene=_scene(keys)), chunk)
        pianist = ik_pianist.IKPianist(env)
        steps = max(r.num_steps for r in chunk)
        play = jax.jit(jax.vmap(lambda piece: ik_pianist.play_episode(
            pianist, jax.random.PRNGKey(0), piece, steps)[0].last_episode))
        tic = time.perf_counter()
        episode = jax.device_get(play(jnp.arange(len(chunk), dtype=jnp.int32)))
        print(f"  {start + len(chunk)}/{len(rolls)} pieces ({steps} steps, "
              f"{time.perf_counter() - tic:.0f} s)", flush=True)
        rows += [{"piece": r.name, "steps": r.num_steps, "f1": float(episode.f1[i]),
                  "precision": float(episode.precision[i]), "recall": float(episode.recall[i]),
                  "diverged": int(episode.diverged[i])} for i, r in enumerate(chunk)]
    return rows


def summary(rows: list[dict]) -> str:
    """Median, quartiles, mean and a histogram of F1 (markdown)."""
    f1 = np.array([r["f1"] for r in rows])
    p = np.array([r["precision"] for r in rows])
    r_ = np.array([r["recall"] for r in rows])
    q1, med, q3 = np.percentile(f1, [25, 50, 75])
    counts, edges = np.histogram(f1, bins=[0, 0.2, 0.4, 0.6, 0.8, 1.0001])
    hist = ", ".join(f"[{a:.1f}, {min(b, 1):.1f}{']' if b > 1 else ')'}: {c}"
                     for a, b, c in zip(edges[:-1], edges[1:], counts))
    return (f"| pieces | median F1 | F1 quartiles | mean F1 | mean precision | mean recall |\n"
            f"|---|---|---|---|---|---|\n| {len(rows)} | {med:.3f} | {q1:.3f} - {q3:.3f} | "
            f"{f1.mean():.3f} | {p.mean():.3f} | {r_.mean():.3f} |\n\nF1 histogram: {hist}")


def controller_cost(batch: int, steps: int, keys: str) -> str:
    """ms per env step of the env step alone, the controller alone and both (one jit each)."""
    from mjx_piano.default_piece import default_piece
    from mjx_piano.scripted import hold_action

    env = PianoEnv(EnvConfig(scene=_scene(keys)), [default_piece()])
    pianist = ik_pianist.IKPianist(env)
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), batch),
                                          jnp.zeros(batch, jnp.int32))
    hold = hold_action(env, jnp.zeros((), bool))
    fns = {
        "env step (hold action)": lambda s: env.step(s, hold),
        # Its output moves the pose a hair, so XLA cannot hoist it out of the loop.
        "IK controller alone": lambda s: s.replace(data=s.data.replace(
            qpos=s.data.qpos + 1e-9 * jnp.sum(pianist.action(s)))),
        "env step + IK controller": lambda s: env.step(s, pianist.action(s)),
    }
    lines = ["| what | compile (s) | ms per env step (batch %d) |" % batch, "|---|---|---|"]
    timed: dict[str, float] = {}
    for name, fn in fns.items():
        rollout = jax.jit(lambda s, fn=fn: jax.lax.scan(
            lambda c, _: (jax.vmap(fn)(c), None), s, None, length=steps)[0])
        tic = time.perf_counter()
        jax.block_until_ready(rollout(states))
        compile_s = time.perf_counter() - tic
        tic = time.perf_counter()
        jax.block_until_ready(rollout(states))
        per_step = (time.perf_counter() - tic) / (steps * batch) * 1e3
        lines.append(f"| {name} | {compile_s:.1f} | {per_step:.3f} |")
        timed[name] = per_step
    both, alone = timed["env step + IK controller"], timed["env step (hold action)"]
    lines.append(f"\nThe controller's share of the env step with it: {1 - alone / both:.0%}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Scores a piece set (or times the controller); prints markdown, writes JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="etudes",
                        help="etudes, train, test_id, test_ood, dev, check, or comma-separated piece names")
    parser.add_argument("--limit", type=int, default=0, help="first N pieces (0 = all)")
    add_key_dynamics(parser, default="kernel")
    parser.add_argument("--group", type=int, default=64, help="pieces per compiled batch")
    parser.add_argument("--cost", action="store_true", help="time the controller instead")
    parser.add_argument("--batch", type=int, default=16, help="envs for --cost")
    parser.add_argument("--steps", type=int, default=10, help="control steps for --cost")
    add_out(parser, default="runs/ik")
    args = parser.parse_args(argv)
    if args.cost:
        print(controller_cost(args.batch, args.steps, args.key_dynamics))
        return 0
    rows = score_pieces(piece_names(args.set, args.limit), args.key_dynamics, args.group)
    os.makedirs(args.out, exist_ok=True)
    label = re.sub(r"[^\w.+-]", "_", args.set.replace(",", "+"))[:40]
    path = os.path.join(args.out, f"ik_{label}.json")
    with open(path, "w") as f:
        json.dump(rows, f, indent=1)
    print(summary(rows))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
