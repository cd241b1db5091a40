"""Training on MJX-Warp (`--impl warp`): its contact slots sized for the run, one device, and a
run that checkpoints and resumes (Warp's CPU device stands in for the GPU)."""

from __future__ import annotations

import importlib.util

import jax
import numpy as np
import pytest

from mjx_piano import warp_buffers
from train.loop import train_specialists
from train.plan import _size_warp_contacts

from tests.train.conftest import smoke

PIECE = "etude/c-major-scale-rh"


def _warp_run(out: str, **overrides):
    fields = dict(env__name="piano-keys", env__pieces=PIECE, env__impl="warp", ppo__num_envs=2,
                  ppo__unroll_length=4, ppo__num_minibatches=2, ppo__num_epochs=1,
                  run__eval_every=1, run__checkpoint_every=1)
    return smoke(out, **{**fields, **overrides})


def test_warp_contacts_are_sized_for_every_env_of_the_run(tmp_path):
    config = _warp_run(str(tmp_path), run__agents=3, env__key_dynamics="kernel", env__name="piano")
    sized = _size_warp_contacts(config, (1, 1))
    assert sized.env.naconmax == 3 * 2 * warp_buffers.CONTACTS_PER_ENV["kernel"]
    assert _size_warp_contacts(sized, (1, 1)) == sized
    with pytest.raises(ValueError, match="one device"):
        _size_warp_contacts(config, (2, 1))


@pytest.mark.skipif(importlib.util.find_spec("warp") is None,
                    reason="MJX's Warp backend needs the warp-lang package")
@pytest.mark.slow
def test_warp_run_trains_checkpoints_and_resumes(tmp_path):
    out = str(tmp_path / "run")
    first = train_specialists(_warp_run(out, run__iterations=1))
    assert first.plan.config.env.naconmax == 2 * warp_buffers.CONTACTS_PER_ENV["mjx"]
    assert first.final_eval["eval/completed"][0] == 1.0  # the evaluation played the piece
    before = [np.asarray(x) for x in jax.tree_util.tree_leaves(first.state.params)]
    resumed = train_specialists(_warp_run(out, run__iterations=2), resume=True)
    assert resumed.iterations == 2 and int(np.asarray(resumed.state.iteration)[0]) == 2
    # The agent went on from its checkpoint: same shapes, parameters moved.
    after = [np.asarray(x) for x in jax.tree_util.tree_leaves(resumed.state.params)]
    assert [a.shape for a in after] == [b.shape for b in before]
    assert any(not np.allclose(a, b) for a, b in zip(after, before))
