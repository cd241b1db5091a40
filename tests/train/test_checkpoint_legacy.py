"""Checkpoints from before states held their piece bank restore with the run's bank put back;
a checkpoint of any other layout is refused with a readable `CheckpointLayoutError`.

A legacy checkpoint is written by saving the state with `bank=None`: leaves are stored by
position, so that is exactly the old on-disk layout.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import jax
import numpy as np
import pytest

from mjx_piano.cli import main
from tests.train.conftest import smoke
from train.checkpoint import Checkpointer, CheckpointLayoutError
from train.loop import RunResult, build_trainer, train_specialists
from train.restore import load_specialists

ITERATIONS = 2


def _leaves(state) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(jax.device_get(state))]


def _assert_equal(a, b) -> None:
    for x, y in zip(_leaves(a), _leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def _copy_run(run: RunResult, out: str, state) -> str:
    """A copy of `run`'s folder whose one checkpoint holds `state` (any layout)."""
    shutil.copytree(run.plan.config.run.out, out, ignore=shutil.ignore_patterns("checkpoints"))
    config = run.plan.config
    config = dataclasses.replace(config, run=dataclasses.replace(config.run, out=out))
    checkpointer = Checkpointer(out)
    checkpointer.save(ITERATIONS, state, config)
    checkpointer.close()
    return out


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> RunResult:
    """Two toy agents trained for ITERATIONS iterations, checkpointed at the end."""
    out = str(tmp_path_factory.mktemp("original"))
    return train_specialists(smoke(out, run__iterations=ITERATIONS, run__eval_every=0,
                                   run__checkpoint_every=0))


def test_legacy_checkpoint_restores_with_the_runs_bank(original, tmp_path, capsys):
    legacy = _copy_run(original, str(tmp_path / "legacy"), original.state.replace(bank=None))
    abstract = build_trainer(original.plan).abstract_state(len(original.plan.seeds))
    checkpointer = Checkpointer(legacy)
    try:
        restored = checkpointer.restore(ITERATIONS, abstract, original.plan.agent_bank)
        assert "predates stored piece banks; the bank was rebuilt" in capsys.readouterr().err
        _assert_equal(restored, original.state)
        with pytest.raises(CheckpointLayoutError, match=rf"checkpoint {ITERATIONS} in "
                           rf"{legacy}/checkpoints predates stored piece banks \(\d+ stored "
                           r"arrays, \d+ expected\): restoring it needs the run's bank"):
            checkpointer.restore(ITERATIONS, abstract)
    finally:
        checkpointer.close()
    # perform's and collect's loader puts the bank back too.
    run = load_specialists(legacy)
    trained = build_trainer(original.plan).learner
    _assert_equal(run.policy, trained.policy_params(original.state.params))


def test_other_layouts_are_refused_readably(original, tmp_path, capsys):
    other = _copy_run(original, str(tmp_path / "other"), original.state.replace(rng=None))
    abstract = build_trainer(original.plan).abstract_state(len(original.plan.seeds))
    checkpointer = Checkpointer(other)
    try:
        with pytest.raises(CheckpointLayoutError, match=rf"checkpoint {ITERATIONS} in {other}/"
                           r"checkpoints does not fit this code's learner state \(\d+ stored "
                           r"arrays, \d+ expected; \d+ in the layout .*Retrain the run"):
            checkpointer.restore(ITERATIONS, abstract, original.plan.agent_bank)
    finally:
        checkpointer.close()
    with pytest.raises(CheckpointLayoutError, match="does not fit"):
        load_specialists(other)
    # The CLI reports it as bad input: exit 2, one line, no traceback.
    code = main(["train", "specialists", "--env", "toy", "--preset", "cpu-smoke", "--pieces",
                 "toy-00,toy-01", "--iterations", str(ITERATIONS + 1), "--eval-every", "0",
                 "--checkpoint-every", "0", "--out", other, "--no-progress", "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and "error: checkpoint" in err and "Traceback" not in err


def test_resume_continues_a_legacy_checkpoint(original, tmp_path, capsys):
    legacy = _copy_run(original, str(tmp_path / "legacy"), original.state.replace(bank=None))
    more = dict(run__iterations=ITERATIONS + 1, run__eval_every=0, run__checkpoint_every=0)
    resumed = train_specialists(smoke(legacy, **more), resume=True)
    assert "predates stored piece banks" in capsys.readouterr().err
    assert resumed.iterations == ITERATIONS + 1
    assert os.path.isdir(os.path.join(legacy, "checkpoints", str(ITERATIONS + 1)))
    # ...exactly as the same run resumed from its own (current-layout) checkpoint.
    current = _copy_run(original, str(tmp_path / "current"), original.state)
    _assert_equal(resumed.state, train_specialists(smoke(current, **more), resume=True).state)
