"""Dataset loader throughput: windows (samples) per second, host-side and on device.

    python3 bench/dataset_throughput.py --batch 256 1024 --out runs/bench/dataset.json
    python3 bench/dataset_throughput.py --store runs/data          # an existing store
    python3 bench/dataset_throughput.py --quick --compare-training  # vs the tiny transformer

Without `--store` it writes a synthetic store with the full task's sizes (observation 1144,
action 39, 88 keys; random values, so it compresses worse than real rollouts) into a temporary
folder. For each batch size it measures `host_batches` (read shards, shuffle, cut windows in
numpy) and `batches` (the same plus the background thread and the copy to device memory),
the first batch (which reads the first shard group) apart from the timed ones. With
`--compare-training` it also measures the training step rate (windows/s) of the smallest
transformer config ('tiny'), the rate the loader must beat not to stall training. Prints a
markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from typing import Any, Iterator

import jax
import numpy as np

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from train.dataset import store  # noqa: E402
from train.dataset.card import build_card  # noqa: E402
from mjx_piano.cli_flags import add_out  # noqa: E402
from train.dataset.loader import WindowLoader  # noqa: E402


def synthetic_store(root: str, shards: int, trajectories: int, length: int,
                    observation: int = 1144, action: int = 39, keys: int = 88) -> None:
    """Writes a store of random trajectories (`shards` x `trajectories` x `length` steps)."""
    rng = np.random.default_rng(0)
    manifest = store.new_manifest({
        "env": "synthetic", "pieces": [f"piece-{i}" for i in range(4)], "bank_ids": [0, 1, 2, 3],
        "observation_size": observation, "action_size": action, "num_keys": keys,
        "reward_terms": ["key_press"], "collection": {}, "specialist_run": {},
        "agent_pieces": []})
    os.makedirs(root, exist_ok=True)
    for s in range(shards):
        steps = trajectories * length
        data = store.Trajectories(
            observation=rng.random((steps, observation), np.float32),
            action=rng.uniform(-1, 1, (steps, action)).astype(np.float32),
            expert_action=rng.uniform(-1, 1, (steps, action)).astype(np.float32),
            pressed=rng.random((steps, keys)) < 0.05, reward=rng.random(steps, np.float32),
            reward_terms=rng.random((steps, 1), np.float32),
            start=np.arange(trajectories, dtype=np.int64) * length,
            length=np.full(trajectories, length, np.int32),
            piece=(np.arange(trajectories) % 4).astype(np.int32),
            specialist=np.zeros(trajectories, np.int32),
            seed=np.zeros((trajectories, 2), np.uint32),
            f1=rng.random(trajectories, np.float32), flagged=np.zeros(trajectories, bool))
        size = store.write_shard(root, s, data)
        manifest = store.commit_shard(root, manifest, s, data, size)


def _time(iterator: Iterator[Any], batches: int, block: bool) -> tuple[float, float]:
    """(first batch seconds, seconds of the next `batches`)."""
    start = time.perf_counter()
    first = next(iterator)
    if block:
        jax.block_until_ready(first)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
        item = next(iterator)
        if block:
            jax.block_until_ready(item)
    return first_s, time.perf_counter() - start


def measure(root: str, batch: int, batches: int, shards_in_memory: int) -> list[dict[str, Any]]:
    """Host and device loader rates at one batch size."""
    rows = []
    for mode in ("host", "device"):
        loader = WindowLoader(root, seed=0, shards_in_memory=shards_in_memory)
        iterator = (loader.host_batches(0, batch) if mode == "host"
                    else loader.batches(0, batch))
        first_s, run_s = _time(iterator, batches, block=mode == "device")
        if hasattr(iterator, "close"):
            iterator.close()
        rows.append({"mode": mode, "batch": batch, "first_batch_s": first_s,
                     "samples_per_s": batch * batches / run_s,
                     "batches_per_s": batches / run_s})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; prints a table and writes JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="an existing store (default: a synthetic one)")
    parser.add_argument("--batch", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--batches", type=int, default=50, help="timed batches per size")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--trajectories", type=int, default=16, help="per synthetic shard")
    parser.add_argument("--length", type=int, default=550, help="steps per trajectory")
    parser.add_argument("--shards-in-memory", type=int, default=2)
    parser.add_argument("--compare-training", action="store_true",
                        help="also measure the tiny transformer's training windows/s")
    parser.add_argument("--quick", action="store_true", help="small sizes (CPU smoke run)")
    add_out(parser, kind="file", default="runs/bench/dataset_throughput.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.batches, args.shards, args.trajectories = [64, 256], 10, 2, 4
        args.length = 128
    with tempfile.TemporaryDirectory() as tmp:
        root = args.store or os.path.join(tmp, "store")
        if not args.store:
            synthetic_store(root, args.shards, args.trajectories, args.length)
        card = build_card(root)
        rows = [r for b in args.batch for r in measure(root, b, args.batches,
                                                       args.shards_in_memory)]
    training = []
    if args.compare_training:
        from train.generalist.bench import bench_training

        training = [bench_training("tiny", b, max(3, args.batches // 10)) for b in args.batch]
    print(f"dataset loader, {jax.devices()[0].platform} ({jax.device_count()} device(s)), "
          f"store: {card['steps']:,} steps, {card['bytes'] / 2**20:.1f} MiB, "
          f"{card['bytes_per_million_steps'] / 2**30:.2f} GiB per million steps")
    print("| mode | batch | first batch s | samples/s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['batch']} | {r['first_batch_s']:.2f} | "
              f"{r['samples_per_s']:,.0f} |")
    for t in training:
        print(f"| training (tiny transformer) | {t['batch']} | {t['compile_s']:.2f} | "
              f"{t['windows_per_s']:,.0f} |")
    result = {"device": str(jax.devices()[0]), "jax": jax.__version__,
              "python": platform.python_version(), "store_steps": card["steps"],
              "store_bytes": card["bytes"],
              "bytes_per_million_steps": card["bytes_per_million_steps"],
              "synthetic": not args.store, "loader": rows, "training": training}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
