"""Training: exact resume from checkpoints, metrics files, schedule, config, sharding."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from tests.generalist.conftest import TINY, mixture_transformer
from train.generalist import config as cfg
from train.generalist.data import MixtureWindows
from train.generalist.training import (FlowTrainer, learning_rate_schedule, resume_step,
                                       GeneralistCheckpointer, train_generalist)

OPTIM = cfg.OptimConfig(batch_size=32, learning_rate=1e-3, warmup_steps=2, decay_steps=10)


def run_config(out: str, steps: int) -> cfg.GeneralistConfig:
    return cfg.GeneralistConfig(
        model=TINY, optim=OPTIM, data=cfg.DataConfig(source="mixture"),
        run=cfg.RunConfig(steps=steps, out=out, log_every=1, checkpoint_every=3,
                          progress=False))


@pytest.fixture(scope="module")
def trainer() -> FlowTrainer:
    return FlowTrainer(mixture_transformer(), OPTIM, MixtureWindows())


def test_resume_is_exact(trainer, tmp_path, capsys):
    straight = train_generalist(run_config(str(tmp_path / "a"), 6), trainer, resume=True)
    assert f"no checkpoint in {tmp_path / 'a'}; starting fresh" in capsys.readouterr().err
    train_generalist(run_config(str(tmp_path / "b"), 3), trainer)  # "killed" after step 3
    resumed = train_generalist(run_config(str(tmp_path / "b"), 6), trainer, resume=True)
    assert (f"resumed at step 3 of 6 from {tmp_path / 'b' / 'checkpoints' / '3'}"
            in capsys.readouterr().err)
    assert int(resumed.state.step) == 6
    assert trainer._step._cache_size() == 1  # fresh and restored states share one program
    jax.tree_util.tree_map(np.testing.assert_array_equal,
                           jax.device_get(straight.state), jax.device_get(resumed.state))
    assert [s for s, _ in resumed.losses] == [4, 5, 6]
    np.testing.assert_array_equal([v for _, v in straight.losses[3:]],
                                  [v for _, v in resumed.losses])
    # The CSV of the resumed run holds each step once, as the uninterrupted one does.
    with open(tmp_path / "b" / "train.csv") as f:
        steps = [line.split(",")[0] for line in f.read().splitlines()[1:]]
    assert steps == ["1", "2", "3", "4", "5", "6"]
    for name in ("loss.png", "tensorboard", "checkpoints"):
        assert os.path.exists(tmp_path / "b" / name)


def test_sigterm_checkpoints_the_step_and_resume_is_exact(trainer, tmp_path):
    straight = train_generalist(run_config(str(tmp_path / "a"), 6), trainer)
    config = dataclasses.replace(run_config(str(tmp_path / "b"), 6), run=dataclasses.replace(
        run_config(str(tmp_path / "b"), 6).run, eval_every=2))

    def preempted(params):  # a signal arriving during step 2's evaluation
        os.kill(os.getpid(), signal.SIGTERM)
        return {}

    stopped = train_generalist(config, trainer, evaluate=preempted)
    assert stopped.stopped_by == "SIGTERM" and int(stopped.state.step) == 2
    assert sorted(os.listdir(tmp_path / "b" / "checkpoints")) == ["2"]
    resumed = train_generalist(run_config(str(tmp_path / "b"), 6), trainer, resume=True)
    assert resumed.stopped_by is None
    jax.tree_util.tree_map(np.testing.assert_array_equal,
                           jax.device_get(straight.state), jax.device_get(resumed.state))


def test_resume_refuses_another_model(trainer, tmp_path):
    train_generalist(run_config(str(tmp_path), 3), trainer)
    other = dataclasses.replace(run_config(str(tmp_path), 6),
                                model=dataclasses.replace(TINY, depth=3))
    with pytest.raises(ValueError, match="model.depth"):
        resume_step(GeneralistCheckpointer(str(tmp_path)), other)


def test_schedule_warms_up_then_decays():
    optim = cfg.OptimConfig(learning_rate=1.0, warmup_steps=10, decay_steps=100,
                            final_lr_fraction=0.1)
    lr = learning_rate_schedule(optim)
    assert float(lr(0)) == 0.0
    np.testing.assert_allclose(float(lr(5)), 0.5, rtol=1e-6)
    np.testing.assert_allclose(float(lr(10)), 1.0, rtol=1e-6)
    np.testing.assert_allclose(float(lr(60)), 0.55, rtol=1e-5)  # half-way down the cosine
    np.testing.assert_allclose(float(lr(110)), 0.1, rtol=1e-5)


def test_config_overrides_and_checks():
    config = cfg.apply_overrides(cfg.with_model_size(cfg.GeneralistConfig(), "omnipianist"),
                                 {"optim.batch_size": "512", "data.pieces": "a,b"})
    assert (config.model.depth, config.model.heads, config.model.width) == (12, 12, 768)
    assert config.optim.batch_size == 512 and config.data.pieces == ("a", "b")
    assert cfg.from_dict(cfg.to_dict(config)) == config
    with pytest.raises(ValueError, match="unknown field"):
        cfg.apply_overrides(config, {"model.colour": "red"})
    with pytest.raises(ValueError, match="must divide"):
        cfg.check(cfg.apply_overrides(config, {"model.heads": "7"}))


SHARDED = """
import jax, numpy as np
from jax.sharding import Mesh
from tests.generalist.conftest import mixture_transformer
from tests.generalist.test_training import OPTIM
from train.generalist.data import MixtureWindows
from train.generalist.training import FlowTrainer
assert len(jax.devices()) == 8
losses = {}
for n in (1, 8):
    trainer = FlowTrainer(mixture_transformer(), OPTIM, MixtureWindows(),
                          Mesh(np.asarray(jax.devices()[:n]), ("data",)))
    state = trainer.init(0)
    for _ in range(3):
        state, metrics = trainer.step(state)
    assert len(state.params["head"]["kernel"].sharding.device_set) == n
    losses[n] = float(metrics.flow)
np.testing.assert_allclose(losses[1], losses[8], rtol=2e-2)
try:
    FlowTrainer(mixture_transformer(), OPTIM.__class__(batch_size=12), MixtureWindows())
    raise AssertionError("a batch of 12 cannot split across 8 devices")
except ValueError as error:
    assert "multiple of 8" in str(error)
# Evaluation envs split over the 8 devices, one jitted rollout.
from train.config import EnvSpec
from train.envs import make_env
from train.generalist.model import init_params, make_model, token_segments
from train.generalist.rollout import evaluate_pieces
from tests.generalist.conftest import TINY
loaded = make_env(EnvSpec(name="toy", pieces=("toy-00", "toy-01")))
model = make_model(TINY, token_segments(loaded.env), loaded.env.action_size, 4, 2)
params = init_params(model, jax.random.PRNGKey(0), loaded.env.observation_size)
scores = evaluate_pieces(model, params, loaded.env, loaded.piece_ids, loaded.piece_names,
                         loaded.episode_length, jax.random.PRNGKey(0), execute=2,
                         flow_steps=2, envs_per_piece=4)
assert np.all(scores.completed == 1.0), scores
print("OK", losses)
"""


def test_data_parallel_on_eight_devices_matches_one():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", SHARDED], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout



class HostStream:
    """A host-side loader stand-in: numpy batches of the mixture, batch s from PRNGKey(s)."""

    observation_size, action_size, num_pieces = 3, 2, 2

    def batches(self, start_step: int, batch_size: int):
        sample = jax.jit(MixtureWindows().sample, static_argnums=1)
        step = start_step
        while True:
            yield jax.device_get(sample(jax.random.PRNGKey(step), batch_size))
            step += 1


def test_stream_source_resumes_exactly(tmp_path):
    trainer = FlowTrainer(mixture_transformer(), OPTIM, HostStream())
    straight = train_generalist(run_config(str(tmp_path / "a"), 6), trainer)
    train_generalist(run_config(str(tmp_path / "b"), 3), trainer)
    resumed = train_generalist(run_config(str(tmp_path / "b"), 6), trainer, resume=True)
    jax.tree_util.tree_map(np.testing.assert_array_equal,
                           jax.device_get(straight.state.params),
                           jax.device_get(resumed.state.params))
