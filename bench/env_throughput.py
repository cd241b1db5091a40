"""Env throughput: compile time and physics / env steps per second by batch size and impl.

    python3 bench/env_throughput.py --batch 1 4 16 --impl jax --keys mjx kernel --out runs/bench/env.json

Each configuration jits `--steps` control steps of a batch inside `lax.scan` (random actions
around the rest pose) in one of two modes: `task`, the full task step of `vmap(env.step)`
(10 physics substeps, rewards incl. OT fingering, metrics, observation, auto-reset), or
`physics`, the 10 physics substeps alone (`env.simulate`), and with either key dynamics
(`--keys`: 'mjx' hinge joints in the solver, 'kernel' the keys stepped by
`kernels.piano_keys`). It reports the first call (compile + run) apart from the
timed calls and `block_until_ready`s every result. Also measures MuJoCo C on one env for
reference. Prints a markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from mjx_piano import warp_buffers
from mjx_piano.cli_flags import add_impl, add_key_dynamics, add_out
from mjx_piano.default_piece import default_piece
from mjx_piano.env import EnvConfig, PianoEnv
from mjx_piano.scene.builder import SceneConfig


@dataclasses.dataclass(frozen=True)
class Result:
    """One measured configuration."""

    impl: str
    mode: str
    batch: int
    compile_s: float
    env_steps_per_s: float
    physics_steps_per_s: float
    keys: str = "mjx"
    overflowed: bool = False
    diverged_random: float = float("nan")


@dataclasses.dataclass(frozen=True)
class Timing:
    """What `time_rollouts` measured.

    Attributes:
        compile_s: seconds of the first call (compile + run).
        env_steps_per_s: over the timed calls.
        overflowed: Warp dropped contacts or constraint rows (the figures are then not valid).
        diverged_random: fraction of the envs that diverged under full-range random actions
            (mode 'task'; NaN for 'physics', which does not check).
    """

    compile_s: float
    env_steps_per_s: float
    overflowed: bool
    diverged_random: float


def rollout_fn(env: PianoEnv, steps: int, mode: str = "task"):
    """jit((states [B], rng, spread=0.1) -> states): `steps` control steps of a batch of envs.

    Actions are random around the rest pose, uniform within `spread` of each range on either
    side (0.1: gentle, for timing; 1.0: anywhere in the range, for the stability check), then
    clipped to it; `mode` is 'task' (the full `env.step`) or 'physics' (the physics substeps
    alone, `env.simulate`).
    """
    low, high = jnp.asarray(env.action_low), jnp.asarray(env.action_high)
    rest = jnp.clip(0.0, low, high)

    def physics_step(state, action):
        data, keys = env.simulate(state.data.replace(ctrl=action[:-1]), state.keys)
        return state.replace(data=data, keys=keys)

    step = env.step if mode == "task" else physics_step

    def rollout(states, rng, spread=0.1):
        def body(carry, key):
            noise = spread * jax.random.uniform(key, carry.obs.shape[:1] + low.shape,
                                                minval=-1.0, maxval=1.0)
            actions = jnp.clip(rest + noise * (high - low), low, high)
            return jax.vmap(step)(carry, actions), None

        return jax.lax.scan(body, states, jax.random.split(rng, steps))[0]

    return jax.jit(rollout)


def measure_mjx(impl: str, batch: int, steps: int, repeats: int, mode: str = "task",
                keys: str = "mjx") -> Result:
    """Times `repeats` rollouts of `steps` control steps on `batch` envs.

    Args:
        impl: MJX backend. batch: envs. steps: control steps per rollout. repeats: timed calls.
        mode: 'task' (the full env step) or 'physics' (the physics substeps alone).
        keys: key dynamics, 'mjx' or 'kernel' (`SceneConfig.key_dynamics`).
    """
    config = EnvConfig(scene=SceneConfig(key_dynamics=keys), impl=impl).for_batch(batch)
    env = PianoEnv(config, [default_piece()])
    timing = time_rollouts(env, batch, steps, repeats, mode)
    return Result(impl, mode, batch, timing.compile_s, timing.env_steps_per_s,
                  timing.env_steps_per_s * env.config.substeps, keys, timing.overflowed,
                  timing.diverged_random)


def time_rollouts(env: PianoEnv, batch: int, steps: int, repeats: int,
                  mode: str = "task") -> Timing:
    """Times `repeats` jitted rollouts of `steps` control steps of `batch` envs (`rollout_fn`,
    gentle actions) after a first, compiling call; then, with the same compiled rollout, runs
    fresh envs under full-range random actions and counts the envs that diverged.
    """
    if mode not in ("task", "physics"):
        raise ValueError(f"mode must be 'task' or 'physics', got {mode!r}")
    # Reset under jit too: its output then has exactly the types the rollout returns.
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), batch),
                                          jnp.zeros(batch, jnp.int32))
    fresh = states
    rollout = rollout_fn(env, steps, mode)
    start = time.perf_counter()
    # The spread goes in as an array every time, so the stability run reuses this compile.
    gentle = jnp.float32(0.1)
    states = jax.block_until_ready(rollout(states, jax.random.PRNGKey(1), gentle))
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(repeats):
        states = jax.block_until_ready(rollout(states, jax.random.PRNGKey(2 + i), gentle))
    elapsed = time.perf_counter() - start
    overflowed = bool(jnp.any(jax.jit(jax.vmap(warp_buffers.overflowed))(states.data)))
    if overflowed:
        print(f"WARNING: Warp's buffers overflowed (naconmax {env.config.naconmax}, njmax "
              f"{env.config.njmax}): contacts or constraint rows were dropped", flush=True)
    diverged = float("nan")
    if mode == "task":
        shaken = jax.block_until_ready(rollout(fresh, jax.random.PRNGKey(99), jnp.float32(1.0)))
        diverged = float(np.mean(np.asarray(shaken.num_diverged) > 0))
    return Timing(compile_s, batch * steps * repeats / elapsed, overflowed, diverged)


def measure_mujoco_c(steps: int, env: PianoEnv | None = None) -> Result:
    """MuJoCo C, one env, same scene and substeps: what a RoboPianist-style user has per core.

    Args:
        steps: control steps to time. env: whose compiled MuJoCo model to step (hinged keys;
            default: the full two-hand scene).
    """
    env = PianoEnv(EnvConfig(), [default_piece()]) if env is None else env
    model, data = env.mj_model, mujoco.MjData(env.mj_model)
    rng = np.random.default_rng(0)
    rest = np.clip(0.0, env.action_low, env.action_high)
    start = time.perf_counter()
    for _ in range(steps):
        action = rest + rng.uniform(-0.1, 0.1, env.action_size) * (env.action_high - env.action_low)
        data.ctrl[:] = np.clip(action, env.action_low, env.action_high)[:-1]
        for _ in range(env.config.substeps):
            mujoco.mj_step(model, data)
    elapsed = time.perf_counter() - start
    return Result("mujoco-c", "physics", 1, 0.0, steps / elapsed,
                  steps * env.config.substeps / elapsed)


def fraction_text(fraction: float) -> str:
    """A fraction as a percentage for the tables; '-' for NaN (not measured)."""
    return "-" if fraction != fraction else f"{fraction:.0%}"


def markdown_table(results: list[Result]) -> str:
    """The results as a markdown table."""
    lines = ["| impl | keys | mode | envs | compile (s) | env steps/s | physics steps/s | "
             "diverged (random actions) |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.impl} | {r.keys} | {r.mode} | {r.batch} | {r.compile_s:.1f} | "
              f"{r.env_steps_per_s:,.0f}{' (Warp OVERFLOW: invalid)' if r.overflowed else ''} | "
              f"{r.physics_steps_per_s:,.0f} | {fraction_text(r.diverged_random)} |"
              for r in results]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Runs the sweep; prints the table and writes JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    add_impl(parser, many=True, default=["jax"])
    parser.add_argument("--mode", nargs="+", default=["task"], choices=["task", "physics"])
    add_key_dynamics(parser, many=True, default=["mjx"])
    parser.add_argument("--steps", type=int, default=10, help="control steps per timed rollout")
    parser.add_argument("--repeats", type=int, default=2)
    add_out(parser, kind="file", default="runs/bench/env_throughput.json")
    args = parser.parse_args(argv)
    results = [measure_mujoco_c(max(args.steps * args.repeats, 50))]
    for impl in args.impl:
        for keys in args.key_dynamics:
            for mode in args.mode:
                for batch in args.batch:
                    results.append(measure_mjx(impl, batch, args.steps, args.repeats, mode, keys))
                    print(markdown_table(results[-1:]).splitlines()[-1], flush=True)
    header = (f"device: {jax.devices()[0].device_kind} ({jax.devices()[0].platform}); "
              f"jax {jax.__version__}, mujoco {mujoco.__version__}, python {platform.python_version()}")
    print(header)
    print(markdown_table(results))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"device": jax.devices()[0].device_kind, "platform": jax.devices()[0].platform,
                   "jax": jax.__version__, "mujoco": mujoco.__version__, "steps": args.steps,
                   "repeats": args.repeats, "results": [dataclasses.asdict(r) for r in results]},
                  f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
