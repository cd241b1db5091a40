"""The five sections of `mjx-piano bench gpu` (`bench.gpu_suite`), each a function of the suite.

Every measurement goes through `Suite.measure`, which skips results already final in the
report (resume), records 'cut' when the budget is spent and 'error' when a row raises.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import os
from typing import Any

from bench.gpu_suite import GROWTH, TARGET_F1, Suite, missing_impl, remove_tree, tiny_scene


def _scene(suite: Suite):
    from mjx_piano.scene.builder import SceneConfig

    return tiny_scene() if suite.sizes.tiny else SceneConfig()


def _scene_name(suite: Suite) -> str:
    return ("reduced scene: no hands, the etude's 11 self-playing keys" if suite.sizes.tiny
            else "full two-hand scene, 88 hinged keys")


def _lever_env(suite: Suite, lever_name: str, impl: str, batch: int):
    from bench import levers
    from mjx_piano.default_piece import default_piece

    return levers.lever_env(levers.lever_by_name(lever_name), impl, default_piece(),
                            _scene(suite), batch)


def device_section(suite: Suite) -> None:
    """Device, versions, and MuJoCo C on one env of the hinged-key scene."""
    import jax

    from bench.env_throughput import measure_mujoco_c

    devices = jax.devices()
    suite.measure("device", "device/accelerator", lambda: {
        "value": f"{devices[0].device_kind} ({devices[0].platform}) x{len(devices)}"},
        what="device")
    suite.log.add({"section": "device", "id": "device/versions", "status": "ok",
                   "what": "versions (this call)", "value": suite.log.header["versions"]})

    def mujoco_c() -> dict[str, Any]:
        env = _lever_env(suite, suite.sizes.reference_lever, "jax", 1)
        result = measure_mujoco_c(suite.sizes.c_steps, env)
        return {"env_steps_per_s": result.env_steps_per_s,
                "physics_steps_per_s": result.physics_steps_per_s}

    suite.measure("device", "device/mujoco-c", mujoco_c, scene=_scene_name(suite))


def _env_row(suite: Suite, impl: str, lever: str, mode: str, batch: int) -> dict[str, Any]:
    """One timed configuration (`bench.env_throughput.time_rollouts`)."""
    from bench.env_throughput import time_rollouts

    env = _lever_env(suite, lever, impl, batch)
    timing = time_rollouts(env, batch, suite.sizes.steps, suite.sizes.repeats, mode)
    diverged = timing.diverged_random
    status = ("overflow" if timing.overflowed else
              "diverged" if diverged == diverged and diverged > 0 else "ok")
    return {"status": status, "compile_s": timing.compile_s,
            "env_steps_per_s": timing.env_steps_per_s,
            "physics_steps_per_s": timing.env_steps_per_s * env.config.substeps,
            "diverged_random": diverged, "overflowed": timing.overflowed}


def _env_fields(impl: str, lever: str, mode: str, batch: int) -> dict[str, Any]:
    return {"impl": impl, "lever": lever, "mode": mode, "batch": batch}


def env_section(suite: Suite) -> None:
    """Full task step per impl at growing batches; physics alone at the best; hinged once."""
    sizes = suite.sizes
    for impl in suite.impls:
        why = missing_impl(impl)
        best = 0.0
        for batch in sizes.batches:
            fields = _env_fields(impl, sizes.fast_lever, "task", batch)
            record_id = f"env/{impl}/{sizes.fast_lever}/task/{batch}"
            if why:
                suite.skip("env", record_id, why, **fields)
                continue
            row = suite.measure("env", record_id,
                                lambda: _env_row(suite, impl, sizes.fast_lever, "task", batch),
                                **fields)
            if row["status"] == "error":
                break  # a larger batch fails the same way, or runs out of memory
            rate = row.get("env_steps_per_s") or 0.0
            if row["status"] == "ok" and best and rate < GROWTH * best:
                break  # env steps/s stopped rising: the device is full
            best = max(best, rate if row["status"] == "ok" else 0.0)
    for impl in suite.available_impls():
        row = suite.best_task_row(impl)
        if row is not None:
            batch = row["batch"]
            suite.measure("env", f"env/{impl}/{sizes.fast_lever}/physics/{batch}",
                          lambda: _env_row(suite, impl, sizes.fast_lever, "physics", batch),
                          **_env_fields(impl, sizes.fast_lever, "physics", batch))
    impls = suite.available_impls()
    if impls:  # once, whichever backend comes first (its id names no backend)
        batch = sizes.hinged_batch
        suite.measure("env", f"env/{sizes.reference_lever}/task/{batch}",
                      lambda: _env_row(suite, impls[0], sizes.reference_lever, "task", batch),
                      **_env_fields(impls[0], sizes.reference_lever, "task", batch))


def _eval_curve(run_dir: str) -> list[dict[str, float]]:
    """Agent 0's evaluations from the run's eval.csv: [{wall_s, env_steps, f1}]."""
    path = os.path.join(run_dir, "eval.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(float(r["agent"])) == 0]
    return [{"wall_s": float(r["wall_s"]), "env_steps": float(r["env_steps"]),
             "f1": float(r["eval/f1"])} for r in rows]


def specialist_section(suite: Suite) -> None:
    """The specialists on the clip, sharing the section's slice of the budget."""
    sizes = suite.sizes
    best = suite.best_task_row()
    impls = suite.available_impls()
    impl = best["impl"] if best is not None else (impls[0] if impls else suite.impls[0])
    share = suite.budget.slice_s("specialist") / len(sizes.specialists)
    for algo, overrides in sizes.specialists:
        piece = overrides["env.pieces"][0]
        run_impl = "jax" if overrides["env.name"] != "piano" else impl  # --tiny's envs
        time_limit = min(share, suite.budget.slice_s("specialist"))
        run_dir = os.path.join(suite.out, f"specialist-{algo}")
        suite.measure("specialist", f"specialist/{algo}/{piece}",
                      functools.partial(_train_specialist, overrides, run_impl, time_limit,
                                        run_dir),
                      piece=piece, algo=algo, impl=run_impl, time_limit_s=time_limit)


def _train_specialist(overrides: dict[str, Any], impl: str, time_limit: float,
                      run_dir: str) -> dict[str, Any]:
    """One specialist run for `time_limit` seconds; its F1 curve and time to `TARGET_F1`."""
    from train.config import SpecialistConfig, apply_overrides, learner_config
    from train.loop import train_specialists

    remove_tree(run_dir)  # a run cut before its record: start it again
    config = apply_overrides(SpecialistConfig(), {
        **overrides, "env.impl": impl, "run.time_limit_s": time_limit,
        "run.checkpoint_every": 0, "run.progress": False, "run.target_f1": TARGET_F1,
        "run.out": run_dir})
    result = train_specialists(config)
    curve = _eval_curve(run_dir)
    learner = learner_config(result.plan.config)
    reached = [p["wall_s"] for p in curve if p["f1"] >= TARGET_F1]
    return {"envs": learner.num_envs, "compile_s": result.compile_s, "wall_s": result.wall_s,
            "env_steps": result.iterations * learner.num_envs * learner.unroll_length,
            "env_steps_per_s": result.env_steps_per_s,
            "start_f1": curve[0]["f1"] if curve else None,
            "best_f1": max((p["f1"] for p in curve), default=None),
            f"time_to_f1_{TARGET_F1:g}_s": reached[0] if reached else None,
            "curve": curve, "note": "" if reached else f"F1 {TARGET_F1:g} not reached"}


def transformer_section(suite: Suite) -> None:
    """Training windows/s and the batched generalist rollout's env steps/s."""
    from bench.learning_throughput import transformer_rows

    sizes = suite.sizes
    fields = {"size": sizes.transformer_size, "batch": sizes.transformer_batch,
              "env": sizes.rollout_env, "envs": sizes.rollout_envs}

    def measure() -> dict[str, Any]:
        (row,) = transformer_rows([sizes.transformer_size], sizes.transformer_batch,
                                  sizes.transformer_steps, sizes.rollout_env, sizes.rollout_envs)
        return row

    suite.measure("transformer", f"transformer/{sizes.transformer_size}/"
                  f"{sizes.transformer_batch}", measure, **fields)


def levers_section(suite: Suite) -> None:
    """The levers at the best impl and batch of section 2, reference first."""
    from bench import levers
    from mjx_piano.default_piece import default_piece

    best = suite.best_task_row()
    if best is None:
        suite.skip("levers", "levers/no-best-batch", "section 2 measured no valid task row")
        return
    impl, batch = best["impl"], best["batch"]
    chosen = [levers.lever_by_name(name) for name in suite.sizes.levers]
    chosen = [lever for lever in chosen if impl in lever.impls]

    def record_id(lever_name: str) -> str:
        return f"levers/{impl}/{batch}/{lever_name}"

    if all(suite.log.final(record_id(lever.name)) for lever in chosen):
        return
    if not suite.budget.may_start("levers", first="levers" not in suite.started):
        for lever in chosen:
            suite.measure("levers", record_id(lever.name), dict, name=lever.name, impl=impl,
                          batch=batch)
        return
    suite.started.add("levers")

    def wanted(lever: levers.Lever) -> bool:
        if suite.log.final(record_id(lever.name)):
            return False
        if suite.budget.may_start("levers", first=False):
            return True
        suite.measure("levers", record_id(lever.name), dict, name=lever.name, impl=impl,
                      batch=batch)  # records 'cut'
        return False

    def on_result(result: levers.LeverResult) -> None:
        if suite.log.final(record_id(result.name)):
            return  # the reference, measured again only to compare the others with
        row = dataclasses.asdict(result)
        row["what"] = row.pop("note")
        lost = [why for why, lost in (("Warp overflow", result.overflowed),
                                      ("keys differ", not result.same_keys),
                                      ("diverged", result.diverged_random > 0)) if lost]
        suite.log.add({"section": "levers", "id": record_id(result.name),
                       "status": "ok" if result.parity else "no parity",
                       "note": ", ".join(lost), **row})

    try:
        levers.measure_levers(chosen, impl, batch, suite.sizes.steps, suite.sizes.repeats,
                              default_piece(), _scene(suite), wanted=wanted, on_result=on_result)
    except Exception as error:  # noqa: BLE001 - recorded; the report stays valid
        suite.log.add({"section": "levers", "id": f"levers/{impl}/{batch}/error",
                       "status": "error", "note": f"{type(error).__name__}: {error}"[:400]})
