"""Shared fixtures for the training tests: one small configuration, compiled once per session.

`train.parallel.get_trainer` caches compiled trainers by (env, PPO config, mesh, eval sizes),
so every test that uses `smoke_config` (two agents on toy-00 and toy-01, preset cpu-smoke)
shares one compilation of each function.
"""

from __future__ import annotations

import pytest

from train.config import PRESETS, SpecialistConfig, apply_overrides
from train.loop import RunResult, train_specialists

LEARN_ITERATIONS = 40


def smoke(out: str, **overrides) -> SpecialistConfig:
    """The tests' base run: preset cpu-smoke, toy-00 + toy-01, no progress bar."""
    fields = {**PRESETS["cpu-smoke"], "env.name": "toy", "env.pieces": "toy-00,toy-01",
              "run.out": out, "run.progress": False}
    fields.update({k.replace("__", "."): v for k, v in overrides.items()})
    return apply_overrides(SpecialistConfig(), fields)


@pytest.fixture(scope="session")
def learned_run(tmp_path_factory) -> RunResult:
    """Two agents trained for LEARN_ITERATIONS iterations (evaluated every 10)."""
    out = str(tmp_path_factory.mktemp("learned"))
    return train_specialists(smoke(out, run__iterations=LEARN_ITERATIONS, run__eval_every=10,
                                   run__checkpoint_every=0))
