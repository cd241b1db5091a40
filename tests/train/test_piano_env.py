"""The same PPO code on the real piano env (reduced scene: self-playing keys of one etude).

Slow on CPU (MJX compiles for ~30 s and runs ~50 env steps/s on 2 cores), so it only checks
that the piano env plugs in: iterations, evaluation, a checkpoint of its MJX state, resume.
"""

from __future__ import annotations

import numpy as np
import pytest

from train.config import SpecialistConfig, apply_overrides
from train.loop import train_specialists

PIECE = "etude/c-major-scale-rh"


@pytest.mark.slow
def test_ppo_runs_checkpoints_and_resumes_on_the_piano_env(tmp_path):
    config = apply_overrides(SpecialistConfig(), {
        "env.name": "piano-keys", "env.pieces": PIECE, "ppo.num_envs": 4,
        "ppo.unroll_length": 8, "ppo.num_minibatches": 2, "ppo.num_epochs": 1,
        "run.iterations": 2, "run.eval_every": 2, "run.checkpoint_every": 1,
        "run.out": str(tmp_path), "run.progress": False})
    first = train_specialists(config)
    assert first.plan.agent_labels == [PIECE]
    assert set(first.final_eval) >= {"eval/f1", "eval/precision", "eval/recall",
                                     "eval/sustain_f1", "eval/reward/key_press"}
    assert first.final_eval["eval/completed"][0] == 1.0
    resumed = train_specialists(apply_overrides(config, {"run.iterations": 3}), resume=True)
    assert resumed.iterations == 3
    assert int(np.asarray(resumed.state.iteration)[0]) == 3
