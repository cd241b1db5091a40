"""A generalist trained on a store is evaluated in the env its specialists acted in: the
piano env's physics and action space come from the store's manifest."""

from __future__ import annotations

import os

import pytest

from train.dataset import store
from train.generalist import config as cfg
from train.generalist.pipeline import data_env_spec, split_env_config, store_physics

KERNEL = {"name": "piano", "key_dynamics": "kernel", "solver_iterations": 2,
          "ls_iterations": 4, "solver_tolerance": 1e-8, "residual_scale": 0.0}


def _store(folder, env: dict) -> str:
    os.makedirs(folder)
    store.write_json_atomic(os.path.join(folder, store.MANIFEST),
                            store.new_manifest({"specialist_run": {"env": env}}))
    return str(folder)


def test_the_stores_physics_are_the_env_the_generalist_plays_in(tmp_path):
    kernel = _store(tmp_path / "a", KERNEL)
    physics = store_physics([kernel, _store(tmp_path / "b", KERNEL)])
    assert physics == {k: v for k, v in KERNEL.items() if k != "name"}
    data = cfg.DataConfig(source="dataset", env="piano", pieces=("etude/c-major-chords",),
                          **physics)
    spec = data_env_spec(data, pieces=data.pieces, split="train")
    assert (spec.key_dynamics, spec.solver_iterations, spec.ls_iterations) == ("kernel", 2, 4)
    evaluated = split_env_config(cfg.GeneralistConfig(data=data), "etude")
    assert (evaluated.key_dynamics, evaluated.solver_iterations) == ("kernel", 2)


def test_a_store_from_before_the_fields_gives_the_defaults_and_stores_of_two_envs_are_refused(
        tmp_path):
    old = _store(tmp_path / "old", {"name": "piano"})
    assert store_physics([old]) == {k: getattr(cfg.DataConfig, k) for k in cfg.PHYSICS_FIELDS}
    residual = _store(tmp_path / "residual", {**KERNEL, "residual_scale": 0.2})
    with pytest.raises(ValueError, match="collected in other envs"):
        store_physics([_store(tmp_path / "kernel", KERNEL), residual])
