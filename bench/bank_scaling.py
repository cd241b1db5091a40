"""`mjx-piano bench bank`: compile time and memory of the jitted env step against bank size.

    python3 -m mjx_piano bench bank --pieces 1 100 1000 all --out runs/bank

The piece bank is data (`mjx_piano.pieces`): training binds it inside the jitted step from an
argument. This bench measures both ways of giving a step its pieces, on the full two-hand scene
(the same step `train specialists` runs), for banks of the first P clips of the catalogue:

- `constant`: the env bound to the bank outside `jit` (how every step was compiled before the
  bank became an argument): the goals are folded into the executable.
- `argument`: `jit(step)(state, action, bank)`: what training does now.

Each (mode, P) runs in a fresh process (so the host memory figures are its own): it loads the
rolls, builds the bank, then times `lower` + `compile` of one vmapped step of 2 envs and reads
the compiled executable's memory analysis and the process's resident memory before and after.
Writes `bank.json`, `bank.md` and `bank.png` under `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from mjx_piano.cli_flags import add_out

MODES = ("constant", "argument")
ENVS = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `bench bank`."""
    parser = subparsers.add_parser(
        "bank", help="compile time and memory of the env step against the number of pieces")
    parser.add_argument("--pieces", nargs="+", default=["1", "100", "1000", "all"],
                        metavar="P", help="bank sizes: counts or 'all' (every catalogue clip)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--timeout", type=int, default=1800,
                        help="seconds one measurement may take (it is then reported as such)")
    add_out(parser, default="runs/bank")
    parser.set_defaults(run=run)


def _rss_mb() -> float:
    """Resident memory of this process, MB (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def measure(mode: str, count: str) -> dict[str, Any]:
    """One measurement in this process (see the module docstring).

    Args:
        mode: 'constant' or 'argument'.
        count: the number of catalogue pieces, or 'all'.

    Returns:
        A row: pieces, bank MB, compile s (lower + compile), first call s, the executable's
        generated code / argument / temp bytes, and resident MB before and after compiling.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mjx_piano.default_piece import load_piece
    from mjx_piano.env import EnvConfig, PianoEnv
    from train.envs import piece_catalogue

    names = piece_catalogue("piano")
    names = names if count == "all" else names[: int(count)]
    began = time.perf_counter()
    env = PianoEnv(EnvConfig())
    bank = env.make_bank([load_piece(n) for n in names])
    load_s = time.perf_counter() - began
    bank_mb = sum(np.asarray(x).nbytes for x in jax.tree_util.tree_leaves(bank)) / 2**20
    keys = jax.random.split(jax.random.PRNGKey(0), ENVS)
    pieces = jnp.arange(ENVS, dtype=jnp.int32) % len(names)
    if mode == "constant":
        bound = env.bind(bank)
        state = jax.jit(jax.vmap(bound.reset))(keys, pieces)
        step = jax.jit(jax.vmap(bound.step))
        arguments: tuple[Any, ...] = ()
    else:
        bank = jax.device_put(bank)
        state = jax.jit(jax.vmap(lambda k, p, b: env.bind(b).reset(k, p),
                                 in_axes=(0, 0, None)))(keys, pieces, bank)
        step = jax.jit(jax.vmap(lambda s, a, b: env.bind(b).step(s, a), in_axes=(0, 0, None)))
        arguments = (bank,)
    action = jnp.tile(jnp.asarray((env.action_low + env.action_high) / 2), (ENVS, 1))
    jax.block_until_ready(state)
    rss_before = _rss_mb()
    began = time.perf_counter()
    compiled = step.lower(state, action, *arguments).compile()
    compile_s = time.perf_counter() - began
    began = time.perf_counter()
    jax.block_until_ready(compiled(state, action, *arguments))
    call_s = time.perf_counter() - began
    stats = compiled.memory_analysis()

    def size(name: str) -> int:
        return int(getattr(stats, name, -1)) if stats is not None else -1

    return {"mode": mode, "pieces": len(names), "bank_mb": round(bank_mb, 2),
            "load_s": round(load_s, 1), "compile_s": round(compile_s, 2),
            "first_call_s": round(call_s, 3),
            "code_bytes": size("generated_code_size_in_bytes"),
            "argument_bytes": size("argument_size_in_bytes"),
            "temp_bytes": size("temp_size_in_bytes"),
            "rss_before_mb": round(rss_before, 1), "rss_after_mb": round(_rss_mb(), 1),
            "device": jax.devices()[0].device_kind, "backend": jax.default_backend()}


def run(args: argparse.Namespace) -> int:
    """Runs every (mode, P) in its own process; writes the report; exit 2 on bad input."""
    from mjx_piano.paths import output_folder_problem

    problem = output_folder_problem(args.out)
    bad = [p for p in args.pieces if p != "all" and not (p.isdigit() and int(p) >= 1)]
    if problem or bad:
        print(f"mjx-piano bench bank: {problem or f'--pieces: {bad} are not counts >= 1 or all'}",
              file=sys.stderr)
        return 2
    rows = []
    for count in args.pieces:
        for mode in args.modes:
            rows.append(_measure_apart(mode, count, args.timeout))
            print(_line(rows[-1]), flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bank.json"), "w") as f:
        json.dump(rows, f, indent=1)
    with open(os.path.join(args.out, "bank.md"), "w") as f:
        f.write(markdown(rows))
    plot(rows, os.path.join(args.out, "bank.png"))
    print(markdown(rows))
    return 0


def _measure_apart(mode: str, count: str, timeout: int) -> dict[str, Any]:
    """`measure(mode, count)` in a fresh python process; a row saying why when it fails."""
    code = ("import json, sys; from bench.bank_scaling import measure; "
            f"print('ROW ' + json.dumps(measure({mode!r}, {count!r})))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"mode": mode, "pieces": count, "error": f"over {timeout} s"}
    for line in done.stdout.splitlines():
        if line.startswith("ROW "):
            return json.loads(line[4:])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"mode": mode, "pieces": count, "error": f"exit {done.returncode}: {tail}"}


def _line(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"{row['mode']:9s} P={row['pieces']}: {row['error']}"
    return (f"{row['mode']:9s} P={row['pieces']:5d} bank {row['bank_mb']:8.2f} MB  compile "
            f"{row['compile_s']:6.1f} s  code {row['code_bytes'] / 2**20:8.2f} MB  rss "
            f"{row['rss_before_mb']:7.0f} -> {row['rss_after_mb']:7.0f} MB")


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table of `bench bank`."""
    head = ("| mode | pieces | bank (MB) | compile (s) | first call (s) | executable code (MB) "
            "| arguments (MB) | temp (MB) | host RSS before -> after compile (MB) |\n"
            "|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['mode']} | {r['pieces']} | {r['error']} |  |  |  |  |  |  |")
            continue
        mb = {k: r[k] / 2**20 for k in ("code_bytes", "argument_bytes", "temp_bytes")}
        lines.append(f"| {r['mode']} | {r['pieces']} | {r['bank_mb']:.2f} | {r['compile_s']:.1f} "
                     f"| {r['first_call_s']:.3f} | {mb['code_bytes']:.2f} "
                     f"| {mb['argument_bytes']:.2f} | {mb['temp_bytes']:.2f} "
                     f"| {r['rss_before_mb']:.0f} -> {r['rss_after_mb']:.0f} |")
    return head + "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: str) -> None:
    """Compile seconds and compile-time host memory growth against pieces, one line per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.figure_file import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for mode in MODES:
        mine = [r for r in rows if r["mode"] == mode and "error" not in r]
        if not mine:
            continue
        x = [r["pieces"] for r in mine]
        axes[0].plot(x, [r["compile_s"] for r in mine], "o-", label=mode)
        axes[1].plot(x, [r["rss_after_mb"] - r["rss_before_mb"] for r in mine], "o-", label=mode)
    for ax, label in zip(axes, ("compile (s)", "host memory added by compiling (MB)")):
        ax.set_xscale("log")
        ax.set_xlabel("pieces in the bank")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("jitted env step (full two-hand scene, 2 envs)")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
