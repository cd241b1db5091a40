"""Throughput of the OT fingering kernel (`kernels.fingering`) by batch size and solver.

For every (solver, max_keys, batch) it jits `vmap(fingering_reward)`, reports the compile
time apart (lower + compile), then times `--repeats` calls on fresh-looking data already on
the device (`block_until_ready`) and reports the median per call and per env. Prints the
device, versions and a markdown table; writes JSON to `--out`.

    python3 bench/ot_throughput.py --quick            # CPU smoke run, < 1 min
    python3 bench/ot_throughput.py --out bench/results/ot_throughput.json

With `--with-env` it also times the full env step (`mjx_piano.env.PianoEnv`, default piece,
random actions near the rest pose, `--env-steps` control steps per jitted rollout) with
`fingering='none'` and with each solver at the same batch sizes, and reports the fingering
share of the step, (t_solver - t_none) / t_solver. Each env configuration compiles the full
scene: minutes on CPU, so keep the batch sizes small there (the target, <= 10% at 4,096 envs,
is a GPU measurement).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kernels import fingering  # noqa: E402
from kernels.fingering_instances import make_instances  # noqa: E402
from mjx_piano.cli_flags import add_impl, add_out  # noqa: E402


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What to measure.

    Attributes:
        batch_sizes: env batch sizes.
        solvers: fingering solvers ('exact', 'sinkhorn').
        max_keys: key-slot counts S to try.
        repeats: timed calls per point (median reported).
        kind: instance set ('hands' or 'anywhere').
        out: JSON path ('' = none).
        with_env: also time the full env step with and without fingering.
        env_steps: control steps per timed env rollout.
        impl: MJX backend for the env ('jax' or 'warp').
    """

    batch_sizes: tuple[int, ...] = (1, 64, 1024, 4096)
    solvers: tuple[str, ...] = ("exact", "sinkhorn")
    max_keys: tuple[int, ...] = (10,)
    repeats: int = 20
    kind: str = "hands"
    out: str = ""
    with_env: bool = False
    env_steps: int = 5
    impl: str = "jax"


def environment() -> dict:
    """Device and versions."""
    import jaxlib
    import ott

    device = jax.devices()[0]
    return {
        "device": f"{device.platform}:{device.device_kind}",
        "num_devices": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "ott": ott.__version__,
        "numpy": np.__version__,
    }


def measure(config: fingering.FingeringConfig, batch: int, repeats: int, kind: str) -> dict:
    """Compile and run times of jit(vmap(fingering_reward)) at one batch size."""
    fn = jax.jit(jax.vmap(lambda t, k, a: fingering.fingering_reward(t, k, a, config)))
    # A few different problem batches, cycled, so no call sees the previous call's data.
    datasets = []
    for seed in range(3):
        inst = make_instances(kind, batch, seed=seed)
        datasets.append(jax.device_put((inst.fingertips, inst.key_points, inst.active)))
    start = time.perf_counter()
    compiled = fn.lower(*datasets[0]).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(*datasets[0]))  # warm-up
    times = []
    for i in range(repeats):
        args = datasets[i % len(datasets)]
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    call_s = statistics.median(times)
    return {
        "solver": config.solver,
        "max_keys": config.max_keys,
        "batch": batch,
        "compile_s": compile_s,
        "call_ms": 1e3 * call_s,
        "call_ms_min": 1e3 * min(times),
        "us_per_env": 1e6 * call_s / batch,
        "envs_per_s": batch / call_s,
        "config": dataclasses.asdict(config),
    }


def env_rollout(fingering_solver: str, batch: int, bench: BenchConfig):
    """A compiled rollout of `env_steps` control steps of `batch` envs, and its start state."""
    from bench.env_throughput import rollout_fn
    from mjx_piano.default_piece import default_piece
    from mjx_piano.env import EnvConfig, PianoEnv

    config = EnvConfig(impl=bench.impl, fingering=fingering_solver).for_batch(batch)
    env = PianoEnv(config, [default_piece()])
    rollout = rollout_fn(env, bench.env_steps)
    states = jax.jit(jax.vmap(env.reset))(
        jax.random.split(jax.random.PRNGKey(0), batch), jnp.zeros(batch, jnp.int32)
    )
    start = time.perf_counter()
    states = jax.block_until_ready(rollout(states, jax.random.PRNGKey(1)))
    return rollout, states, time.perf_counter() - start


def env_rows(bench: BenchConfig) -> list[dict]:
    """Env step time without and with each fingering solver, and the fingering share.

    The configurations are timed in interleaved rounds and the minimum per configuration is
    used, so load drifting on a shared machine biases none of them.
    """
    rows = []
    for batch in bench.batch_sizes:
        names = ("none",) + bench.solvers
        compiled = {name: env_rollout(name, batch, bench) for name in names}
        times = {name: [] for name in names}
        for i in range(max(bench.repeats // 2, 3)):
            for name in names:
                rollout, states, _ = compiled[name]
                start = time.perf_counter()
                states = jax.block_until_ready(rollout(states, jax.random.PRNGKey(2 + i)))
                times[name].append((time.perf_counter() - start) / bench.env_steps)
                compiled[name] = (rollout, states, compiled[name][2])
        base = 1e3 * min(times["none"])
        for solver in bench.solvers:
            step = 1e3 * min(times[solver])
            rows.append({"fingering": solver, "batch": batch, "none_step_ms": base,
                         "step_ms": step, "step_ms_median": 1e3 * statistics.median(times[solver]),
                         "none_step_ms_median": 1e3 * statistics.median(times["none"]),
                         "compile_s": compiled[solver][2], "share": (step - base) / step})
            print(f"  env batch={batch}: none {base:.2f} ms/step, {solver} {step:.2f} ms/step, "
                  f"share {rows[-1]['share']:.1%}", flush=True)
    return rows


def env_table(rows: list[dict]) -> str:
    """Markdown table of the env-step shares."""
    lines = ["| fingering | batch | env step ms, none (min) | env step ms (min) | share |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['fingering']} | {r['batch']} | {r['none_step_ms']:.2f} | "
              f"{r['step_ms']:.2f} | {r['share']:.1%} |" for r in rows]
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    """Markdown table of the measurements."""
    lines = [
        "| solver | max_keys | batch | compile s | ms / call (median) | us / env | env steps/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['solver']} | {r['max_keys']} | {r['batch']} | {r['compile_s']:.2f} | "
            f"{r['call_ms']:.3f} | {r['us_per_env']:.2f} | {r['envs_per_s']:,.0f} |"
        )
    return "\n".join(lines)


def run(bench: BenchConfig) -> dict:
    """All measurements; prints as it goes."""
    env = environment()
    print(" ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    rows = []
    for solver in bench.solvers:
        for max_keys in bench.max_keys:
            config = fingering.FingeringConfig(solver=solver, max_keys=max_keys)
            for batch in bench.batch_sizes:
                row = measure(config, batch, bench.repeats, bench.kind)
                rows.append(row)
                print(
                    f"  {solver:8s} S={max_keys:<3d} batch={batch:<6d} "
                    f"compile {row['compile_s']:.2f}s  call {row['call_ms']:.3f} ms",
                    flush=True,
                )
    result = {"environment": env, "bench": dataclasses.asdict(bench), "rows": rows}
    if bench.with_env:
        result["env_rows"] = env_rows(bench)
    print()
    print(table(rows))
    if bench.with_env:
        print()
        print(env_table(result["env_rows"]))
    if bench.out:
        Path(bench.out).parent.mkdir(parents=True, exist_ok=True)
        Path(bench.out).write_text(json.dumps(result, indent=2))
        print(f"\nwrote {bench.out}")
    return result


def parse_args(argv: list[str] | None = None) -> BenchConfig:
    """Command line -> BenchConfig."""
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(defaults.batch_sizes))
    parser.add_argument("--solvers", nargs="+", default=list(defaults.solvers),
                        choices=["exact", "sinkhorn"])
    parser.add_argument("--max-keys", type=int, nargs="+", default=list(defaults.max_keys))
    parser.add_argument("--repeats", type=int, default=defaults.repeats)
    parser.add_argument("--kind", default=defaults.kind, choices=["hands", "anywhere"])
    add_out(parser, kind="file", default=defaults.out, help="JSON output path")
    parser.add_argument("--with-env", action="store_true",
                        help="also time the full env step with and without fingering")
    parser.add_argument("--env-steps", type=int, default=defaults.env_steps)
    add_impl(parser, default=defaults.impl)
    parser.add_argument("--quick", action="store_true",
                        help="CPU smoke run: batches 1, 64, 1024, 5 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_sizes, args.repeats = [1, 64, 1024], min(args.repeats, 5)
    return BenchConfig(
        batch_sizes=tuple(args.batch_sizes),
        solvers=tuple(args.solvers),
        max_keys=tuple(args.max_keys),
        repeats=args.repeats,
        kind=args.kind,
        out=args.out,
        with_env=args.with_env,
        env_steps=args.env_steps,
        impl=args.impl,
    )


if __name__ == "__main__":
    run(parse_args())
