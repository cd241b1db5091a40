"""`mjx-piano bench`: every throughput benchmark in one command, one report.

    python3 -m mjx_piano bench --quick                      # CPU smoke run, under 2 minutes
    python3 -m mjx_piano bench --batch 256 1024 4096 16384 --impl jax warp --out runs/bench
    python3 -m mjx_piano bench gpu --budget-s 480 --out runs/gpu   # the GPU suite (gpu_suite.py)
    python3 -m mjx_piano bench learning --rung R1 --recipe ppo     # the learning ladder
    python3 -m mjx_piano bench bank --pieces 1 100 1000 all        # compile vs bank size

Measures: the full task step and physics alone by batch size, MJX backend and key dynamics,
the fast-path levers at one batch size with their parity checks (`bench/levers.py`),
MuJoCo C on one env (the CPU reference a RoboPianist user has), the OT fingering kernel by batch
size, PPO training env steps/s on the reduced piano scene, the dataset loader's samples/s, and
the flow-matching transformer's training windows/s and evaluation rollout env steps/s per model
size (`--skip` leaves sections out). Every figure keeps compile time apart from run time.
Writes `bench.json`, `bench.md` (device, versions, date, tables) and `scaling.png`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import itertools
import json
import os
import platform
import sys
import tempfile

from bench import bank_scaling, gpu_suite, ilc_parity, learning_ladder, learning_throughput
from bench.lever_table import LEVER_NAMES
from mjx_piano.cli_flags import add_impl, add_key_dynamics, add_out
from mjx_piano.paths import output_folder_problem

QUICK = {"batch": [2], "steps": 2, "repeats": 1, "ppo_envs": 16, "ppo_iterations": 3,
         "loader_batch": [64], "loader_batches": 5, "transformer_sizes": ["tiny"],
         "transformer_batch": 16, "transformer_steps": 3, "rollout_env": "toy", "rollout_envs": 4,
         "levers": []}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `bench` command."""
    parser = subparsers.add_parser(
        "bench", help="throughput benchmarks: env, OT, PPO, dataset loader, transformer")
    parser.add_argument("--quick", action="store_true", help="small CPU run (CI)")
    parser.add_argument("--batch", type=int, nargs="+", default=[256, 1024, 4096])
    add_impl(parser, many=True, default=["jax"])
    add_key_dynamics(parser, many=True, default=["mjx"])
    parser.add_argument("--steps", type=int, default=20, help="control steps per timed rollout")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ppo-envs", type=int, default=1024)
    parser.add_argument("--ppo-iterations", type=int, default=5)
    parser.add_argument("--loader-batch", type=int, nargs="+", default=[256, 1024],
                        help="dataset loader batch sizes")
    parser.add_argument("--loader-batches", type=int, default=50, help="timed loader batches")
    parser.add_argument("--transformer-sizes", nargs="+", default=["tiny", "omnipianist"],
                        choices=["tiny", "small", "base", "omnipianist"])
    parser.add_argument("--transformer-batch", type=int, default=256)
    parser.add_argument("--transformer-steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--rollout-env", default="piano", choices=["toy", "piano", "piano-keys"],
                        help="env of the transformer's evaluation rollout")
    parser.add_argument("--rollout-envs", type=int, default=1024)
    parser.add_argument("--levers", nargs="*", default=list(LEVER_NAMES),
                        choices=LEVER_NAMES, metavar="LEVER",
                        help="fast-path levers to measure, each with its parity check (the first "
                             "is the speed-up's reference; none with --quick); from: "
                             + ", ".join(LEVER_NAMES))
    parser.add_argument("--lever-batch", type=int, default=4096, help="envs for the levers")
    parser.add_argument("--skip", nargs="+", default=[],
                        choices=["env", "ot", "ppo", "loader", "transformer", "levers"],
                        help="sections to leave out")
    add_out(parser, default="runs/bench")
    parser.set_defaults(run=_run)
    suites = parser.add_subparsers(dest="suite", metavar="SUITE",
                                   help="`gpu`: the GPU figures in one budgeted run; `bank`: "
                                        "compile time and memory against the bank size; "
                                        "`learning`: the learning ladder; `ilc-parity`: do replays "
                                        "of one table agree on this device")
    gpu_suite.register(suites)
    learning_ladder.register(suites)
    bank_scaling.register(suites)
    ilc_parity.register(suites)


def _label(row: dict) -> str:
    """The impl, with the key dynamics when they are not the default MJX joints."""
    return row["impl"] if row.get("keys", "mjx") == "mjx" else f"{row['impl']}, kernel keys"


def _env_rows(args: argparse.Namespace) -> list[dict]:
    from bench import env_throughput

    rows = [dataclasses.asdict(env_throughput.measure_mujoco_c(max(args.steps * args.repeats, 50)))]
    for impl, keys in itertools.product(args.impl, args.key_dynamics):
        for mode in ("task", "physics"):
            for batch in args.batch:
                result = env_throughput.measure_mjx(impl, batch, args.steps, args.repeats, mode,
                                                    keys)
                rows.append(dataclasses.asdict(result))
                print(f"  env {_label(rows[-1])}/{mode} x{batch}: {result.env_steps_per_s:,.0f} "
                      f"env steps/s (compile {result.compile_s:.1f} s)", flush=True)
    return rows


def _lever_rows(args: argparse.Namespace) -> list[dict]:
    from bench import levers

    chosen = [levers.lever_by_name(name) for name in args.levers]
    return [dataclasses.asdict(result) for impl in args.impl
            for result in levers.measure_levers(chosen, impl, args.lever_batch, args.steps,
                                                args.repeats)]


def _ot_rows(args: argparse.Namespace) -> list[dict]:
    from bench import ot_throughput
    from kernels import fingering

    rows = []
    for batch in args.batch:
        row = ot_throughput.measure(fingering.FingeringConfig(solver="exact"), batch,
                                    max(args.repeats, 3), "hands")
        rows.append(row)
    return rows


def _ppo_row(args: argparse.Namespace) -> dict:
    from train.config import SpecialistConfig, apply_overrides
    from train.loop import train_specialists

    with tempfile.TemporaryDirectory() as out:
        config = apply_overrides(SpecialistConfig(), {
            "env.name": "piano-keys", "env.pieces": ("etude/c-major-scale-rh",),
            "ppo.num_envs": args.ppo_envs, "ppo.unroll_length": 10, "ppo.num_minibatches": 4,
            "ppo.num_epochs": 2, "run.iterations": args.ppo_iterations, "run.eval_every": 0,
            "run.checkpoint_every": 0, "run.out": out, "run.progress": False})
        result = train_specialists(config)
    return {"env": "piano-keys", "agents": 1, "envs": args.ppo_envs,
            "compile_s": result.compile_s, "env_steps_per_s": result.env_steps_per_s}


def _markdown(report: dict) -> str:
    from bench import env_throughput, levers

    lines = [f"# mjx_piano benchmarks, {report['date']}", "",
             f"device: {report['device']}; jax {report['jax']}, mujoco {report['mujoco']}, "
             f"python {report['python']}"]
    if report.get("env"):
        lines += ["", "## Env step", "",
                  "| impl | mode | envs | compile (s) | env steps/s | physics steps/s | "
                  "diverged (random actions) |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {_label(r)} | {r['mode']} | {r['batch']} | {r['compile_s']:.1f} | "
                  f"{r['env_steps_per_s']:,.0f}"
                  f"{' (Warp overflow: invalid)' if r.get('overflowed') else ''} | "
                  f"{r['physics_steps_per_s']:,.0f} | "
                  f"{env_throughput.fraction_text(r.get('diverged_random', float('nan')))} |"
                  for r in report["env"]]
    if report.get("ot"):
        lines += ["", "## OT fingering (exact solver, alone)", "",
                  "| envs | compile (s) | ms / call |", "|---|---|---|"]
        lines += [f"| {r['batch']} | {r['compile_s']:.2f} | {r['call_ms']:.3f} |"
                  for r in report["ot"]]
    if report.get("ppo"):
        ppo = report["ppo"]
        lines += ["", "## PPO training (reduced piano scene)", "",
                  "| agents | envs | compile (s) | env steps/s |", "|---|---|---|---|",
                  f"| {ppo['agents']} | {ppo['envs']} | {ppo['compile_s']:.1f} | "
                  f"{ppo['env_steps_per_s']:,.0f} |"]
    if report.get("levers"):
        lines += ["", "## Fast-path levers (full task step; parity: the scripted player's keys "
                      "and the hand script against the reference; fidelity: against MuJoCo C)", "",
                  levers.markdown_table(report["levers"])]
    if report.get("loader") or report.get("transformer"):
        lines += learning_throughput.markdown(report.get("loader", []),
                                              report.get("transformer", []))
    return "\n".join(lines) + "\n"


def _plot(report: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.figure_file import save_figure

    fig, ax = plt.subplots(figsize=(6, 4))
    for impl in sorted({_label(r) for r in report["env"]} - {"mujoco-c"}):
        for mode in ("task", "physics"):
            rows = sorted((r for r in report["env"] if _label(r) == impl and r["mode"] == mode),
                          key=lambda r: r["batch"])
            ax.plot([r["batch"] for r in rows], [r["env_steps_per_s"] for r in rows], "o-",
                    label=f"MJX {impl}, {mode}")
    c = next(r for r in report["env"] if r["impl"] == "mujoco-c")
    ax.axhline(c["env_steps_per_s"], color="grey", linestyle="--", label="MuJoCo C, 1 env")
    ax.set(xscale="log", yscale="log", xlabel="parallel envs", ylabel="env steps / s",
           title=f"Env throughput on {report['device']}")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def _size_problem(args: argparse.Namespace) -> str | None:
    """The first size flag below 1, or an --out that cannot be a folder (None if all fit; a
    given --out is checked at parsing, the default here)."""
    for flag in ("batch", "steps", "repeats", "ppo_envs", "ppo_iterations", "loader_batch",
                 "loader_batches", "transformer_batch", "transformer_steps", "rollout_envs",
                 "lever_batch"):
        values = getattr(args, flag)
        if min(values if isinstance(values, list) else [values]) < 1:
            return f"--{flag.replace('_', '-')} must be >= 1, got {values}"
    problem = output_folder_problem(args.out)
    return f"--out: {problem}" if problem else None


def _run(args: argparse.Namespace) -> int:
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    problem = _size_problem(args)
    if problem:
        print(f"mjx-piano bench: {problem}", file=sys.stderr)
        return 2
    import jax
    import mujoco

    device = jax.devices()[0]
    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "device": f"{device.device_kind} ({device.platform})", "jax": jax.__version__,
              "mujoco": mujoco.__version__, "python": platform.python_version(),
              "args": {k: v for k, v in vars(args).items() if k != "run"}}
    print(f"benchmarks on {report['device']}", flush=True)
    sections = {
        "env": lambda: _env_rows(args), "ot": lambda: _ot_rows(args), "ppo": lambda: _ppo_row(args),
        "loader": lambda: learning_throughput.loader_rows(args.loader_batch, args.loader_batches,
                                                          args.quick),
        "transformer": lambda: learning_throughput.transformer_rows(
            args.transformer_sizes, args.transformer_batch, args.transformer_steps,
            args.rollout_env, args.rollout_envs),
        "levers": lambda: _lever_rows(args)}
    for name, measure in sections.items():
        if name not in args.skip and (name != "levers" or args.levers):
            report[name] = measure()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump(report, f, indent=2)
    markdown = _markdown(report)
    with open(os.path.join(args.out, "bench.md"), "w") as f:
        f.write(markdown)
    if report.get("env"):
        _plot(report, os.path.join(args.out, "scaling.png"))
    print(markdown)
    print(f"wrote {args.out}/bench.json, bench.md" + (", scaling.png" if report.get("env") else ""))
    return 0
