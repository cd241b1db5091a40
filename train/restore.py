"""The one way to bring a specialists run back from its folder: `load_specialists` (every agent,
for dataset collection) and `load_policy` (one agent's policy, for `perform`).

Neither builds a `Trainer` nor compiles anything: the run's stored configuration rebuilds its
env and learner, the learner's `init` traced abstractly gives the state's shapes, and the newest
(or a chosen) checkpoint is restored onto one local device, whatever mesh the run trained on.
A run whose pieces' goal rolls changed since it trained (a rebuilt repertoire) is refused.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import SingleDeviceSharding

from train import envs
from train.checkpoint import Checkpointer
from train.config import SpecialistConfig, learner_config
from train.plan import assign_pieces
from train.parallel import Learner, abstract_agents, make_learner


@dataclasses.dataclass(frozen=True)
class Specialists:
    """Policies restored from a training run.

    Attributes:
        learner: the run's learner (PPO or SAC: networks, action scaling, `mode_action`).
        policy: the acting part of the parameters (`learner.policy_params`), leaves
            [agents, ...] (host arrays).
        normalizer: observation statistics, leaves [agents, ...].
        agent_pieces: int [agents, k], indices into `loaded.bank` of each agent's pieces.
        loaded: env and its pieces.
        config: the run's configuration.
        step: iteration of the checkpoint.
    """

    learner: Learner
    policy: Any
    normalizer: Any
    agent_pieces: np.ndarray
    loaded: envs.LoadedEnv
    config: SpecialistConfig
    step: int

    @property
    def agents(self) -> int:
        """Number of specialists."""
        return int(self.agent_pieces.shape[0])


def load_specialists(run_dir: str, step: int | None = None) -> Specialists:
    """Restores checkpoint `step` (default: the newest) of the training run in `run_dir`.

    Raises:
        FileNotFoundError: the run has no (such) checkpoint.
        ValueError: the pieces' goal rolls differ from those the run trained on, or
            (`CheckpointLayoutError`) the checkpoint's arrays do not fit the run's state.
    """
    if not os.path.isdir(os.path.join(run_dir, "checkpoints")):
        raise FileNotFoundError(f"no checkpoints folder in {run_dir}")
    checkpointer = Checkpointer(run_dir)
    try:
        step = checkpointer.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no complete checkpoint in {checkpointer.directory}")
        config = checkpointer.stored_config(step)
        loaded = envs.make_env(config.env, config.reward)
        stored, now = config.env.pieces_sha256, envs.pieces_sha256(loaded)
        if stored and stored != now:
            raise ValueError(f"the run in {run_dir} trained on other goal rolls of its pieces "
                             f"(env.pieces_sha256: {stored!r} -> {now!r}; the repertoire was "
                             "rebuilt under other rules?)")
        settings = learner_config(config)
        agents = config.run.agents or len(loaded.piece_ids)
        agent_pieces, _ = assign_pieces(loaded.piece_ids, agents, settings.num_envs)
        learner = make_learner(loaded.base, settings)
        device = SingleDeviceSharding(jax.local_devices()[0])
        abstract = jax.tree_util.tree_map(
            lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device),
            abstract_agents(learner, agents, int(agent_pieces.shape[1]),
                            int(loaded.episode_length)))
        state = checkpointer.restore(step, abstract, loaded.bank.take(agent_pieces))
    finally:
        checkpointer.close()
    policy, normalizer = jax.device_get((learner.policy_params(state.params), state.normalizer))
    return Specialists(learner=learner, policy=policy, normalizer=normalizer,
                       agent_pieces=np.asarray(agent_pieces), loaded=loaded, config=config,
                       step=int(step))


@dataclasses.dataclass(frozen=True)
class LoadedPolicy:
    """One specialist, ready to roll out.

    Attributes:
        env: the env it was trained in, bound to the run's pieces.
        piece: bank index of the requested piece in that env.
        piece_name: the piece's name.
        action_fn: `obs [O] -> action [A]` (physical units; jittable).
        agent: which agent of the run it is.
        iteration: the checkpoint's iteration.
    """

    env: Any
    piece: int
    piece_name: str
    action_fn: Callable[[jax.Array], jax.Array]
    agent: int
    iteration: int


def split_checkpoint_path(path: str) -> tuple[str, int | None]:
    """(run output folder, iteration or None for the newest) of a CHECKPOINT argument."""
    path = os.path.abspath(path.rstrip("/"))
    base, parent = os.path.basename(path), os.path.dirname(path)
    if base.isdigit() and os.path.basename(parent) == "checkpoints":
        return os.path.dirname(parent), int(base)
    if base == "checkpoints":
        return parent, None
    return path, None


def load_policy(checkpoint: str, piece_name: str | None) -> LoadedPolicy:
    """The agent of a specialist run that plays `piece_name`: its deterministic (mode) action,
    as in the learners' evaluation, in physical units.

    Args:
        checkpoint: run folder, its `checkpoints` folder, or one `checkpoints/<iteration>`.
        piece_name: a piece of the run; None = the first agent's first piece.

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: a 'toy' run, or one that did not train on `piece_name` (the message lists
            its pieces).
    """
    out, iteration = split_checkpoint_path(checkpoint)
    run = load_specialists(out, iteration)
    if run.config.env.name == "toy":
        raise ValueError(f"the run in {out} trained on the 'toy' env; perform and play take runs "
                         "of the piano envs (piano, piano-keys)")
    loaded = run.loaded
    name = loaded.piece_names[0] if piece_name is None else piece_name
    if name not in loaded.piece_names:
        raise ValueError(f"the run in {out} did not train on {name!r}; its pieces: "
                         f"{list(loaded.piece_names)}")
    piece = loaded.piece_ids[loaded.piece_names.index(name)]
    agent = int(np.flatnonzero((run.agent_pieces == piece).any(axis=1))[0])
    params, normalizer = jax.tree_util.tree_map(lambda x: x[agent],
                                                (run.policy, run.normalizer))
    action_fn = functools.partial(run.learner.act, params, normalizer)
    return LoadedPolicy(env=loaded.env, piece=int(piece), piece_name=name, action_fn=action_fn,
                        agent=agent, iteration=run.step)
