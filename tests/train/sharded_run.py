"""Run in a subprocess by test_sharding.py, with 8 fake CPU devices; prints one JSON line.

XLA_FLAGS=--xla_force_host_platform_device_count=8 must be set before jax is imported, which is
why this is a separate process.
"""

from __future__ import annotations

import json
import sys

import jax
import numpy as np

from train.config import PRESETS, SpecialistConfig, apply_overrides
from train.loop import build_trainer, train_specialists
from train.plan import plan_run
from train.parallel import get_trainer, make_mesh


def config(out: str, **fields) -> SpecialistConfig:
    base = {**PRESETS["cpu-smoke"], "env.pieces": "toy-00,toy-01,toy-02,toy-03",
            "run.out": out, "run.progress": False}
    return apply_overrides(SpecialistConfig(), {**base, **fields})


def errors(out: str) -> list[str]:
    messages = []
    for fields in ({"run.agents": 2, "run.mesh": (8, 1)}, {"run.agents": 1, "ppo.num_envs": 12}):
        try:
            plan_run(config(out, **fields))
            messages.append("")
        except ValueError as error:
            messages.append(str(error))
    return messages


def main(out: str) -> None:
    results = {"devices": len(jax.devices())}
    # Eight agents (four pieces x two seeds), automatic mesh: one agent per device.
    run = train_specialists(config(f"{out}/agents", **{
        "run.agents": 8, "run.iterations": 3, "run.eval_every": 3, "run.checkpoint_every": 3}))
    leaf = jax.tree_util.tree_leaves(run.state.params)[0]
    results.update(mesh=run.plan.mesh_shape, params_devices=len(leaf.sharding.device_set),
                   params_spec=str(leaf.sharding.spec), iterations=run.iterations,
                   eval_f1=run.final_eval["eval/f1"].tolist(),
                   finite=all(bool(np.isfinite(x).all()) for x in
                              jax.tree_util.tree_leaves(jax.device_get(run.state.params))))
    # Agents and envs both split (mesh 4 x 2) equal one device, up to reduction order.
    plan = plan_run(config(f"{out}/mesh", **{"run.mesh": (4, 2)}))
    sharded = build_trainer(plan)
    single = get_trainer(plan.loaded.base, plan.config.ppo, make_mesh((1, 1), jax.devices()[:1]),
                         sharded.eval_pieces, sharded.eval_steps)
    states = [t.init(plan.seeds, plan.piece_table, plan.agent_bank) for t in (sharded, single)]
    results["obs_spec"] = str(states[0].env_state.obs.sharding.spec)
    results["obs_devices"] = len(states[0].env_state.obs.sharding.device_set)
    for _ in range(2):
        states = [t.iteration(s)[0] for t, s in zip((sharded, single), states)]
    a, b = (jax.tree_util.tree_leaves(jax.device_get(s.params)) for s in states)
    results["max_param_difference"] = max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))
    results["errors"] = errors(f"{out}/errors")
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1])
