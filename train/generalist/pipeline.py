"""Glue between configuration, env, data, model, trainer and evaluation (used by the CLI).

`train_run(config)` builds everything a `GeneralistConfig` names, trains (or resumes) and
writes the evaluation report; `load_generalist(path)` restores a trained policy and its config;
`evaluate_splits` plays the pieces of named splits and writes `eval_<splits>.txt/.png`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Sequence

import jax
import numpy as np

from train.config import EnvSpec
from train.envs import LoadedEnv, make_env, resolve_pieces
from train.generalist import config as cfg
from train.generalist.data import (MixtureWindows, WindowSource,
                                   scripted_expert_trajectories)
from train.generalist.model import (FlowTransformer, TokenSegment, init_params, make_model,
                                    token_segments)
from train.generalist.rollout import PieceScores, evaluate_pieces, format_table, plot_scores
from train.generalist.training import (FlowTrainer, GeneralistCheckpointer, StreamSource,
                                       GeneralistState, TrainResult, make_optimizer,
                                       train_generalist)
from train.windows import ACTION_HORIZON, OBS_HISTORY


def data_env_spec(data: cfg.DataConfig, **selection: Any) -> EnvSpec:
    """The `EnvSpec` of `data.env` with the data's physics and action space, over `selection`
    (EnvSpec's pieces / split / limit / repertoire)."""
    return EnvSpec(name=data.env, **selection,
                   **{k: getattr(data, k) for k in cfg.PHYSICS_FIELDS})


def store_physics(paths: Sequence[str]) -> dict[str, Any]:
    """The physics and action space (`cfg.PHYSICS_FIELDS`) of the env the stores' specialists
    acted in (their manifests' `specialist_run.env`; a field a store does not record: the
    default).

    Raises:
        ValueError: the stores disagree.
    """
    from train.dataset.store import load_manifest

    found = {}
    for path in paths:
        env = load_manifest(path).get("specialist_run", {}).get("env", {})
        found[path] = {k: env.get(k, getattr(cfg.DataConfig, k)) for k in cfg.PHYSICS_FIELDS}
    first = found[paths[0]]
    for path, physics in found.items():
        if physics != first:
            raise ValueError(f"the stores were collected in other envs: {paths[0]} {first}, "
                             f"{path} {physics}; train on stores of one env")
    return first


def training_env(config: cfg.GeneralistConfig) -> LoadedEnv:
    """The env over the training pieces (`data.pieces`, else the env's 'train' split)."""
    return make_env(data_env_spec(config.data, pieces=config.data.pieces, split="train"))


def split_env(config: cfg.GeneralistConfig, split: str) -> LoadedEnv:
    """The env over the pieces of a named split (see `cfg.SPLIT_ALIASES`).

    'id' means the run's training pieces; other splits are the env's named splits (e.g. 'ood'
    = 'test_ood'), cut to their first `run.eval_limit` pieces. The toy env shares one bank for
    every split, the piano envs are built over exactly the split's pieces.

    Raises:
        ValueError: an unknown split, or one the env cannot give (e.g. a repertoire split
            before the repertoire was built).
    """
    return make_env(split_env_config(config, split))


def split_env_config(config: cfg.GeneralistConfig, split: str) -> EnvSpec:
    """The `EnvSpec` of `split_env`, with its pieces resolved (cheap: no env is built)."""
    if split not in cfg.SPLIT_ALIASES:
        raise ValueError(f"unknown split {split!r}; choose from {sorted(cfg.SPLIT_ALIASES)}")
    name = cfg.SPLIT_ALIASES[split]
    if name == "id":
        env = data_env_spec(config.data, pieces=config.data.pieces, split="train")
    elif name == "pieces":
        if not config.run.eval_pieces:
            raise ValueError("the 'pieces' split evaluates the pieces named with --pieces")
        env = data_env_spec(config.data, pieces=config.run.eval_pieces)
    else:
        env = data_env_spec(config.data, split=name, limit=config.run.eval_limit,
                            repertoire=config.run.eval_repertoire)
    return dataclasses.replace(env, pieces=resolve_pieces(env))


def build_model(config: cfg.GeneralistConfig, env: Any) -> FlowTransformer:
    """The transformer for `env`'s observations and actions."""
    segments = (TokenSegment(0, 1, 3),) if config.data.source == "mixture" \
        else token_segments(env)
    action_size = 2 if config.data.source == "mixture" else int(env.action_size)
    return make_model(config.model, segments, action_size, ACTION_HORIZON, OBS_HISTORY)


def build_source(config: cfg.GeneralistConfig,
                 loaded: LoadedEnv | None) -> WindowSource | StreamSource:
    """The window source `data.source` names (a `StreamSource` for a streaming loader).

    Raises:
        ValueError: 'scripted' in the hands env, or 'dataset' while no loader exists.
    """
    if config.data.source == "mixture":
        return MixtureWindows()
    if config.data.source == "scripted":
        if config.data.env == "piano":
            raise ValueError("data.source=scripted needs an env with actuated keys "
                             "(toy or piano-keys)")
        return scripted_expert_trajectories(loaded.env, loaded.piece_ids, loaded.episode_length)
    try:
        from train.dataset import load_windows  # issue 7's loader
    except ImportError:
        raise ValueError("data.source=dataset needs the dataset loader (train.dataset, "
                         "issue 7), which is not available yet") from None
    return load_windows((config.data.path, *config.data.extra_paths), seed=config.run.seed)


def evaluate_splits(config: cfg.GeneralistConfig, model: FlowTransformer, params: Any,
                    splits: Sequence[str], out: str, key: jax.Array | None = None,
                    ) -> dict[str, PieceScores]:
    """Plays every piece of each split; writes eval_<splits>.txt/.json/.png under `out`."""
    run = config.run
    results = {}
    trained_on = training_env(config).env
    for split in splits:
        loaded = split_env(config, split)
        if (loaded.env.observation_size, loaded.env.action_size) != (
                trained_on.observation_size, trained_on.action_size):
            # 'piano-keys' builds only the keys its pieces use: other pieces, another scene.
            raise ValueError(
                f"split {split!r} builds a {config.data.env} env with observation/action sizes "
                f"{loaded.env.observation_size}/{loaded.env.action_size}, the policy was "
                f"trained on {trained_on.observation_size}/{trained_on.action_size}")
        results[split] = evaluate_pieces(
            model, params, loaded.env, loaded.piece_ids, loaded.piece_names,
            loaded.episode_length, key if key is not None else jax.random.PRNGKey(run.seed),
            execute=run.execute, flow_steps=run.flow_steps,
            envs_per_piece=run.eval_envs_per_piece)
    os.makedirs(out, exist_ok=True)
    stem = os.path.join(out, "eval_" + "_".join(splits))
    with open(stem + ".txt", "w") as f:
        f.write(format_table(results) + "\n")
    with open(stem + ".json", "w") as f:
        json.dump({s: {"pieces": list(r.names), **{m: v.tolist() for m, v in r.scores.items()},
                       "means": r.means()} for s, r in results.items()}, f, indent=1)
    plot_scores(results, stem + ".png", title=f"{config.data.env}: {os.path.basename(out)}")
    return results


@dataclasses.dataclass
class RunOutput:
    """A finished `train_run`: the training result, the model and its evaluation."""

    result: TrainResult
    model: FlowTransformer
    evaluation: dict[str, PieceScores]


def train_run(config: cfg.GeneralistConfig, resume: bool = False,
              eval_splits: Sequence[str] = ("id", "ood")) -> RunOutput:
    """Trains per `config` (evaluating on the training pieces every `run.eval_every` steps)
    and evaluates the final policy on `eval_splits` (none for the 'mixture' source, which has
    no env; only the training pieces for 'piano-keys')."""
    cfg.check(config)
    if config.data.env == "piano-keys":
        # Its scene holds only the training pieces' keys: other pieces cannot be played.
        eval_splits = tuple(s for s in eval_splits if cfg.SPLIT_ALIASES[s] == "id")
    for split in eval_splits if config.data.source != "mixture" else ():
        if cfg.SPLIT_ALIASES.get(split) != "id":  # 'id' may wait for the dataset's pieces
            split_env_config(config, split)  # a bad or unbuilt split fails now, not at the end
    source = None
    if config.data.source == "dataset":
        source = build_source(config, None)
        # The policy is evaluated in the env the stores' specialists acted in (physics and
        # action space), on the dataset's pieces unless others are named.
        data = dataclasses.replace(config.data, **store_physics(
            (config.data.path, *config.data.extra_paths)))
        config = dataclasses.replace(config, data=dataclasses.replace(
            data, pieces=config.data.pieces or tuple(source.pieces)))
    loaded = training_env(config)
    model = build_model(config, loaded.env)
    source = source or build_source(config, loaded)
    if (source.observation_size, source.action_size) != (
            loaded.env.observation_size, loaded.env.action_size) and \
            config.data.source != "mixture":
        raise ValueError(f"the data have observation/action sizes {source.observation_size}/"
                         f"{source.action_size}, the {config.data.env} env over the training "
                         f"pieces {loaded.env.observation_size}/{loaded.env.action_size}")
    trainer = FlowTrainer(model, config.optim, source)
    def evaluate_training_pieces(params: Any) -> dict[str, float]:
        return evaluate_pieces(model, params, loaded.env, loaded.piece_ids,
                               loaded.piece_names, loaded.episode_length,
                               jax.random.PRNGKey(config.run.seed), config.run.execute,
                               config.run.flow_steps).means()

    evaluate = evaluate_training_pieces if config.data.source != "mixture" else None
    result = train_generalist(config, trainer, resume, evaluate)
    # A run stopped by a signal (preemption) leaves the final evaluation to its resume.
    evaluation = {}
    if evaluate is not None and eval_splits and not result.stopped_by:
        evaluation = evaluate_splits(config, model, result.state.params, eval_splits,
                                     config.run.out)
    return RunOutput(result=result, model=model, evaluation=evaluation)


def load_generalist(path: str) -> tuple[cfg.GeneralistConfig, FlowTransformer, Any, int]:
    """A trained policy from a run folder (newest checkpoint) or `<run>/checkpoints/<step>`.

    Returns:
        (config, model, params, step).

    Raises:
        ValueError: no checkpoint there.
    """
    path = os.path.abspath(path)
    step = None
    if os.path.basename(path).isdigit() and os.path.basename(os.path.dirname(path)) \
            == "checkpoints":
        step, path = int(os.path.basename(path)), os.path.dirname(os.path.dirname(path))
    checkpointer = GeneralistCheckpointer(path)
    step = checkpointer.latest_step() if step is None else step
    if step is None:
        raise ValueError(f"no generalist checkpoint under {path}")
    config = checkpointer.stored_config(step)
    loaded = training_env(config)
    model = build_model(config, loaded.env)
    observation_size = 3 if config.data.source == "mixture" else loaded.env.observation_size
    abstract = _abstract_state(model, config.optim, observation_size)
    state = checkpointer.restore(step, abstract)
    checkpointer.close()
    return config, model, state.params, step


def _abstract_state(model: FlowTransformer, optim: cfg.OptimConfig,
                    observation_size: int) -> GeneralistState:
    def init() -> GeneralistState:
        params = init_params(model, jax.random.PRNGKey(0), observation_size)
        return GeneralistState(params=params, opt_state=make_optimizer(optim).init(params),
                          rng=jax.random.PRNGKey(0), step=np.zeros((), np.int32))

    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.tree_util.tree_map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), jax.eval_shape(init))
