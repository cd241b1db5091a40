"""Configuration of a generalist run: frozen dataclasses, model sizes and `--set` overrides.

A run is `GeneralistConfig(model, optim, data, run)`. `model`, `optim` and `data` decide what is
learned (the run's identity, stored beside every checkpoint and compared on resume); `run`
says how long, where and how often. Override any field from the command line with
`--set section.field=value` (values parsed by `train.config`'s coercion rules).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

# One override parser and one list of env names across train/ (and cli).
from train.config import ENV_NAMES, SPLITS, EnvSpec, apply_overrides

# Split names of the evaluation command -> `train.envs.split_pieces` names, plus 'id': the run's
# own training pieces. 'ood' = 'test_ood': in the piano envs the built repertoire's held-out
# pieces, in the toy env its held-out quarter. 'test_id': unseen clips of training pieces.
# 'pieces': the pieces named in `run.eval_pieces` (names or music files).
SPLIT_ALIASES = {"id": "id", "ood": "test_ood", "pieces": "pieces",
                 **{name: name for name in SPLITS}}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Flow-matching transformer sizes (all static: they define parameter shapes).

    Attributes:
        width: model width D (residual stream).
        depth: decoder layers (self-attention over action tokens + cross-attention).
        heads: attention heads; must divide `width`.
        encoder_depth: self-attention layers over the observation tokens before decoding.
        mlp_ratio: hidden size of each MLP as a multiple of `width`.
        time_features: sinusoidal features of the flow time before its MLP.
        compute_dtype: dtype of matmuls ('bfloat16' or 'float32'); params, layer norms, the
            residual stream and the loss stay float32.
    """

    width: int = 64
    depth: int = 2
    heads: int = 4
    encoder_depth: int = 1
    mlp_ratio: int = 4
    time_features: int = 64
    compute_dtype: str = "bfloat16"


# Named sizes; 'omnipianist' is the published generalist's size (12 layers, 12 heads, 768 wide).
MODEL_SIZES: dict[str, ModelConfig] = {
    "tiny": ModelConfig(width=32, depth=2, heads=2, encoder_depth=1, time_features=32),
    "small": ModelConfig(width=256, depth=4, heads=4, encoder_depth=2),
    "base": ModelConfig(width=512, depth=8, heads=8, encoder_depth=2),
    "omnipianist": ModelConfig(width=768, depth=12, heads=12, encoder_depth=2, time_features=256),
}


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up then cosine decay, global-norm clipping.

    Attributes:
        batch_size: windows per step (global, over all devices; must divide by them).
        learning_rate: peak learning rate.
        warmup_steps: linear warm-up from 0 to the peak.
        decay_steps: steps of the cosine decay after warm-up (to `final_lr_fraction` x peak).
        final_lr_fraction: end of the cosine, as a fraction of the peak.
        weight_decay: AdamW decoupled weight decay.
        max_grad_norm: global gradient-norm clip.
        b2: Adam second-moment decay.
    """

    batch_size: int = 256
    learning_rate: float = 3e-4
    warmup_steps: int = 100
    decay_steps: int = 10_000
    final_lr_fraction: float = 0.1
    weight_decay: float = 1e-4
    max_grad_norm: float = 1.0
    b2: float = 0.999


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where windows come from and which env evaluates the policy.

    Attributes:
        source: 'scripted' (a scripted expert presses the goal keys: toy and piano-keys
            envs, `train.generalist.data`),
            'mixture' (synthetic 2-D Gaussian mixture, tests only) or 'dataset' (the dataset
            loader of `train.dataset`, reading `path`).
        path: dataset folder for source 'dataset'.
        extra_paths: further dataset folders of the same pieces (e.g. DAgger relabellings),
            sampled together with `path`'s, each window equally likely.
        env: env to evaluate in ('toy', 'piano', 'piano-keys').
        pieces: training pieces (empty = the env's 'train' split).
        key_dynamics, solver_iterations, ls_iterations, solver_tolerance, residual_scale: the
            'piano' env's physics and action space (`train.config.EnvSpec`'s fields of the same
            names); with source 'dataset' they are the store's, those its specialists acted in
            (`train.generalist.pipeline.store_physics`), so the policy is evaluated where its
            labels were made.
    """

    source: str = "scripted"
    path: str = ""
    extra_paths: tuple[str, ...] = ()
    env: str = "toy"
    pieces: tuple[str, ...] = ()
    key_dynamics: str = EnvSpec.key_dynamics
    solver_iterations: int = EnvSpec.solver_iterations
    ls_iterations: int = EnvSpec.ls_iterations
    solver_tolerance: float = EnvSpec.solver_tolerance
    residual_scale: float = EnvSpec.residual_scale


PHYSICS_FIELDS = ("key_dynamics", "solver_iterations", "ls_iterations", "solver_tolerance",
                  "residual_scale")  # `DataConfig` fields that are `EnvSpec`'s


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """How the run is driven (may change between a run and its resumption).

    Attributes:
        steps: total optimiser steps.
        seed: PRNG seed of parameters, noise and batch order.
        out: output folder (checkpoints/, train.csv, tensorboard/, loss.png).
        log_every: steps between metric rows.
        checkpoint_every: steps between checkpoints (and one at the end).
        eval_every: steps between evaluations in the env (0 = only at the end).
        eval_envs_per_piece: evaluation envs per piece.
        eval_limit: evaluate only the first this many pieces of each named split (0 = all;
            'id' is never cut).
        eval_pieces: the pieces of the 'pieces' split (names, full music file names).
        eval_repertoire: piano envs: named splits come from this repertoire (built from a
            folder; '' = the corpus one).
        flow_steps: Euler steps when sampling.
        execute: actions of each chunk executed before re-planning (1..horizon).
        progress: show a progress bar.
    """

    steps: int = 1000
    seed: int = 0
    out: str = "runs/generalist"
    log_every: int = 50
    checkpoint_every: int = 500
    eval_every: int = 0
    eval_envs_per_piece: int = 1
    eval_limit: int = 0
    eval_pieces: tuple[str, ...] = ()
    eval_repertoire: str = ""
    flow_steps: int = 10
    execute: int = 2
    progress: bool = True


@dataclasses.dataclass(frozen=True)
class GeneralistConfig:
    """A whole generalist run."""

    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    data: DataConfig = DataConfig()
    run: RunConfig = RunConfig()


_IDENTITY_SECTIONS = ("model", "optim", "data")


def with_model_size(config: GeneralistConfig, size: str) -> GeneralistConfig:
    """`config` with the named model size (see `MODEL_SIZES`)."""
    if size not in MODEL_SIZES:
        raise ValueError(f"unknown model size {size!r}; choose from {sorted(MODEL_SIZES)}")
    return dataclasses.replace(config, model=MODEL_SIZES[size])


def check(config: GeneralistConfig) -> None:
    """Raises ValueError for inconsistent settings (before anything compiles)."""
    model = config.model
    if model.width % model.heads:
        raise ValueError(f"model.heads={model.heads} must divide model.width={model.width}")
    if model.compute_dtype not in ("bfloat16", "float32"):
        raise ValueError("model.compute_dtype must be bfloat16 or float32, "
                         f"not {model.compute_dtype!r}")
    if config.data.source not in ("scripted", "mixture", "dataset"):
        raise ValueError(f"unknown data.source {config.data.source!r}")
    if config.data.env not in ENV_NAMES:
        raise ValueError(f"unknown data.env {config.data.env!r}; choose from {ENV_NAMES}")
    if config.run.flow_steps < 1:
        raise ValueError("run.flow_steps must be >= 1")
    if not 1 <= config.run.execute <= 4:  # train.windows.ACTION_HORIZON
        raise ValueError(f"run.execute={config.run.execute} must be in 1..4 (the chunk length)")
    if config.optim.batch_size < 1 or config.run.steps < 0:
        raise ValueError("optim.batch_size must be >= 1 and run.steps >= 0")
    if config.run.eval_limit < 0 or config.run.eval_envs_per_piece < 1:
        raise ValueError("run.eval_limit must be >= 0 and run.eval_envs_per_piece >= 1")


def to_dict(config: GeneralistConfig) -> dict[str, Any]:
    """JSON-ready nested dicts (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(data: dict[str, Any]) -> GeneralistConfig:
    """Inverse of `to_dict`."""
    flat = {f"{section}.{k}": v for section, fields in data.items() for k, v in fields.items()}
    return apply_overrides(GeneralistConfig(), flat)


def identity_differences(stored: GeneralistConfig, current: GeneralistConfig) -> list[str]:
    """'field: stored -> current' for each field that decides what is learned and differs."""
    a, b = to_dict(stored), to_dict(current)
    return [f"{s}.{k}: {a[s][k]!r} -> {b[s][k]!r}" for s in _IDENTITY_SECTIONS
            for k in sorted(a[s]) if a[s][k] != b[s][k]]
