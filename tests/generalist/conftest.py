"""Shared, session-scoped trained models for the generalist tests (each trained once).

`mixture_model`: the tiny transformer fitted to `MixtureWindows` (2-D bimodal chunks).
`toy_policy`: the tiny transformer trained on the scripted toy expert (toy env, train split).
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from train.generalist import config as cfg
from train.generalist.data import MixtureWindows, scripted_expert_trajectories
from train.generalist.model import FlowTransformer, TokenSegment, make_model, token_segments
from train.generalist.training import FlowTrainer, GeneralistState
from train.config import EnvSpec
from train.envs import LoadedEnv, make_env
from train.windows import ACTION_HORIZON, OBS_HISTORY

TINY = cfg.MODEL_SIZES["tiny"]
FIT_STEPS = 300
FIT_OPTIM = cfg.OptimConfig(batch_size=128, learning_rate=3e-3, warmup_steps=20,
                            decay_steps=FIT_STEPS)


def mixture_transformer() -> FlowTransformer:
    """The tiny model on the mixture's sizes (3 observation features, 2-D actions)."""
    return make_model(TINY, (TokenSegment(0, 1, 3),), 2, ACTION_HORIZON, OBS_HISTORY)


def fit(model: FlowTransformer, source, steps: int = FIT_STEPS,
        optim: cfg.OptimConfig = FIT_OPTIM) -> tuple[GeneralistState, list[float]]:
    """Trains `model` on `source` for `steps`; returns the state and every step's loss."""
    trainer = FlowTrainer(model, optim, source)
    state, losses = trainer.init(0), []
    for _ in range(steps):
        state, metrics = trainer.step(state)
        losses.append(metrics.flow)
    return state, [float(x) for x in jax.device_get(losses)]


@dataclasses.dataclass
class Fitted:
    model: FlowTransformer
    state: GeneralistState
    losses: list[float]


@dataclasses.dataclass
class ToyPolicy(Fitted):
    loaded: LoadedEnv


@pytest.fixture(scope="session")
def mixture_model() -> Fitted:
    model = mixture_transformer()
    state, losses = fit(model, MixtureWindows())
    return Fitted(model, state, losses)


@pytest.fixture(scope="session")
def toy_policy() -> ToyPolicy:
    loaded = make_env(EnvSpec(name="toy", split="train"))
    env = loaded.env
    model = make_model(TINY, token_segments(env), env.action_size, ACTION_HORIZON, OBS_HISTORY)
    source = scripted_expert_trajectories(env, loaded.piece_ids, loaded.episode_length)
    state, losses = fit(model, source)
    return ToyPolicy(model, state, losses, loaded)


def smoothed(losses: list[float], window: int = 25) -> np.ndarray:
    """Moving means of `losses` over non-overlapping windows."""
    x = np.asarray(losses[: len(losses) // window * window])
    return x.reshape(-1, window).mean(1)
