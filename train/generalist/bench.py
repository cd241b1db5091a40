"""`mjx-piano generalist bench`: training windows/s per model size, rollout env steps/s.

Arguments are defined in `train.generalist.cli` (so that `--help` imports no JAX).

Training runs on random windows of the full task's sizes (observation 1144 = RP1M layout,
39 actions, tokenised as the piano env's would be: 11 goal rows + key state + body = 13 tokens
per observation), so it measures the model and optimiser, not a dataset. The rollout part
plays the toy env (or 'piano-keys' / 'piano') with a freshly initialised model: env steps/s
of the whole jitted chunked rollout (Euler sampling included). Compile time is reported apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import types

import jax
import jax.numpy as jnp

from mjx_piano.observation import ObservationLayout
from train.generalist import config as cfg
from train.generalist.data import TrajectoryWindows
from train.generalist.model import init_params, make_model, parameter_count, token_segments
from train.generalist.training import FlowTrainer
from train.windows import ACTION_HORIZON, OBS_HISTORY

PIANO_LAYOUT = ObservationLayout(num_keys=88, num_fingertips=10, num_hand_joints=46,
                                 lookahead=10)
PIANO_ACTIONS = 39


def random_piano_windows(trajectories: int = 8, length: int = 64) -> TrajectoryWindows:
    """Random trajectories with the full task's observation and action sizes."""
    obs_key, act_key = jax.random.split(jax.random.PRNGKey(0))
    obs = jax.random.uniform(obs_key, (trajectories, length, PIANO_LAYOUT.size))
    actions = jax.random.uniform(act_key, (trajectories, length, PIANO_ACTIONS), minval=-1.0)
    return TrajectoryWindows(obs, actions, jnp.full((trajectories,), length, jnp.int32),
                             jnp.arange(trajectories, dtype=jnp.int32))


def bench_training(size: str, batch: int, steps: int) -> dict[str, float]:
    """Windows/s of `steps` optimiser steps of model `size` at `batch` windows per step."""
    segments = token_segments(types.SimpleNamespace(layout=PIANO_LAYOUT))
    model = make_model(cfg.MODEL_SIZES[size], segments, PIANO_ACTIONS, ACTION_HORIZON,
                       OBS_HISTORY)
    trainer = FlowTrainer(model, dataclasses.replace(cfg.OptimConfig(), batch_size=batch),
                          random_piano_windows())
    state = trainer.init(0)
    start = time.perf_counter()
    state, _ = trainer.step(state)
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        state, metrics = trainer.step(state)
    jax.block_until_ready(metrics)
    run_s = time.perf_counter() - start
    return {"size": size, "parameters": parameter_count(state.params), "batch": batch,
            "compile_s": compile_s, "step_s": run_s / steps,
            "windows_per_s": batch * steps / run_s}


def bench_rollout(size: str, env_name: str, envs: int, execute: int,
                  flow_steps: int) -> dict[str, float]:
    """Env steps/s of one evaluation rollout (`envs` envs, one episode each)."""
    from train.config import EnvSpec
    from train.envs import make_env, piece_catalogue
    from train.generalist.rollout import compiled_rollout

    loaded = make_env(EnvSpec(name=env_name, pieces=(piece_catalogue(env_name)[0],)))
    env = loaded.env
    model = make_model(cfg.MODEL_SIZES[size], token_segments(env), env.action_size,
                       ACTION_HORIZON, OBS_HISTORY)
    params = init_params(model, jax.random.PRNGKey(0), env.observation_size)
    steps = loaded.episode_length
    fn = compiled_rollout(model, env, steps, execute, flow_steps)
    pieces = jnp.zeros((envs,), jnp.int32)
    times = []
    for seed in range(2):
        start = time.perf_counter()
        jax.block_until_ready(fn(params, pieces=pieces, key=jax.random.PRNGKey(seed)))
        times.append(time.perf_counter() - start)
    return {"size": size, "env": env_name, "envs": envs, "steps": steps, "execute": execute,
            "flow_steps": flow_steps, "compile_s": times[0] - times[1],
            "env_steps_per_s": envs * steps / times[1]}


def run_bench(args: argparse.Namespace) -> int:
    """Runs the benchmark; prints one line per measurement."""
    device = jax.devices()[0]
    results = {"device": f"{device.platform}:{device.device_kind} x{len(jax.devices())}",
               "jax": jax.__version__, "training": [], "rollout": []}
    print(results["device"], "jax", jax.__version__)
    for size in args.sizes:
        r = bench_training(size, args.batch, args.steps)
        results["training"].append(r)
        print(f"train {size:12s} {r['parameters']:>12,} params  batch {args.batch:5d}  "
              f"compile {r['compile_s']:6.1f} s  {r['windows_per_s']:10,.0f} windows/s")
        r = bench_rollout(size, args.env, args.envs, args.execute, args.flow_steps)
        results["rollout"].append(r)
        print(f"rollout {size:10s} {args.env} x{args.envs}  compile {r['compile_s']:6.1f} s  "
              f"{r['env_steps_per_s']:10,.0f} env steps/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0
