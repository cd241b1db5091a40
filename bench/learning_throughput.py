"""The learning side of `mjx-piano bench`: dataset loader samples/s, flow-transformer training
windows/s and its evaluation rollout env steps/s (each with compile / first-batch time apart).

The loader reads a synthetic store of the full task's sizes (`bench.dataset_throughput`);
training runs on random windows of the full task's sizes (`train.generalist.bench`), so it
measures the model and optimiser alone; the rollout plays `rollout_env` with a freshly
initialised model (Euler sampling included).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Sequence


def loader_rows(batches: Sequence[int], timed_batches: int, quick: bool) -> list[dict[str, Any]]:
    """Host and device loader rates per batch size, on a synthetic store.

    Returns:
        rows {'mode': 'host'|'device', 'batch', 'first_batch_s', 'samples_per_s', ...}.
    """
    from bench.dataset_throughput import measure, synthetic_store

    shards, trajectories, length = (2, 4, 128) if quick else (4, 16, 550)
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "store")
        synthetic_store(root, shards, trajectories, length)
        return [row for batch in batches for row in measure(root, batch, timed_batches, 2)]


def transformer_rows(sizes: Sequence[str], batch: int, steps: int, rollout_env: str,
                     rollout_envs: int, execute: int = 2, flow_steps: int = 10,
                     ) -> list[dict[str, Any]]:
    """Per model size: training windows/s and evaluation rollout env steps/s.

    Returns:
        rows {'size', 'parameters', 'batch', 'train_compile_s', 'windows_per_s', 'env',
        'envs', 'rollout_compile_s', 'env_steps_per_s'}.
    """
    from train.generalist.bench import bench_rollout, bench_training

    rows = []
    for size in sizes:
        training = bench_training(size, batch, steps)
        rollout = bench_rollout(size, rollout_env, rollout_envs, execute, flow_steps)
        rows.append({"size": size, "parameters": training["parameters"], "batch": batch,
                     "train_compile_s": training["compile_s"],
                     "windows_per_s": training["windows_per_s"], "env": rollout_env,
                     "envs": rollout_envs, "rollout_compile_s": rollout["compile_s"],
                     "env_steps_per_s": rollout["env_steps_per_s"]})
        print(f"  transformer {size}: {training['windows_per_s']:,.0f} windows/s (batch "
              f"{batch}), rollout {rollout['env_steps_per_s']:,.0f} env steps/s "
              f"({rollout_env} x{rollout_envs})", flush=True)
    return rows


def markdown(loader: list[dict[str, Any]], transformer: list[dict[str, Any]]) -> list[str]:
    """The two markdown sections of the report."""
    lines = ["", "## Dataset loader (synthetic store, full-task sizes)", "",
             "| mode | batch | first batch (s) | samples/s |", "|---|---|---|---|"]
    lines += [f"| {r['mode']} | {r['batch']} | {r['first_batch_s']:.2f} | "
              f"{r['samples_per_s']:,.0f} |" for r in loader]
    lines += ["", "## Flow-matching transformer", "",
              "| size | parameters | batch | compile (s) | training windows/s | rollout env | envs "
              "| compile (s) | rollout env steps/s |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['size']} | {r['parameters']:,} | {r['batch']} | {r['train_compile_s']:.1f} "
              f"| {r['windows_per_s']:,.0f} | {r['env']} | {r['envs']} | "
              f"{r['rollout_compile_s']:.1f} | {r['env_steps_per_s']:,.0f} |" for r in transformer]
    return lines
