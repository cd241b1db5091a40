"""A trained specialist's deterministic policy, loaded from a `train` checkpoint.

`load_policy(CHECKPOINT, piece)` is the one entry point `mjx-piano perform --policy CHECKPOINT`
uses. CHECKPOINT is a training run's output folder (`--out` of `mjx-piano train`), its
`checkpoints` folder, or one `checkpoints/<iteration>` folder (default: the newest). It reads the
run's stored `SpecialistConfig`, rebuilds the same env and PPO networks, restores the agent-batched
`TrainState` onto this machine's devices and keeps the agent that trained on `piece`. The action is
the policy's mode (as in `PPO.evaluate`), mapped to physical units.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np

from mjx_piano.perform.rollout import ActionFn


@dataclasses.dataclass(frozen=True)
class LoadedPolicy:
    """A policy ready to roll out.

    Attributes:
        env: the env it was trained in (same scene and piece bank).
        piece: bank index of the requested piece in that env.
        piece_name: the piece's name.
        action_fn: `obs [O] -> action [A]` (physical units; jittable).
        agent: which agent of the run it is.
        iteration: the checkpoint's iteration.
    """

    env: object
    piece: int
    piece_name: str
    action_fn: ActionFn
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
    """Loads the agent of a specialist run that plays `piece_name`.

    Args:
        checkpoint: run folder, its `checkpoints` folder, or one `checkpoints/<iteration>`.
        piece_name: a piece of the run; None = the first agent's first piece.

    Returns:
        The `LoadedPolicy`.

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: the run did not train on `piece_name` (the message lists its pieces).
    """
    from train import envs
    from train.checkpoint import Checkpointer
    from train.loop import assign_pieces
    from train.parallel import get_trainer, make_mesh

    out, iteration = split_checkpoint_path(checkpoint)
    if not os.path.isdir(os.path.join(out, "checkpoints")):
        raise FileNotFoundError(f"no checkpoints folder in {out}")
    checkpointer = Checkpointer(out)
    try:
        iteration = checkpointer.latest_step() if iteration is None else iteration
        if iteration is None:
            raise FileNotFoundError(f"no complete checkpoint in {checkpointer.directory}")
        config = checkpointer.stored_config(iteration)
        loaded = envs.make_env(config.env)
        agents = config.run.agents or len(loaded.piece_ids)
        agent_pieces, _ = assign_pieces(loaded.piece_ids, agents, config.ppo.num_envs)
        # One device of this machine, whatever mesh the run trained on: only one agent plays.
        mesh = make_mesh((1, 1), jax.devices()[:1])
        trainer = get_trainer(loaded.env, config.ppo, mesh,
                              int(agent_pieces.shape[1]), int(loaded.episode_length))
        state = checkpointer.restore(iteration, trainer.abstract_state(agents))
    finally:
        checkpointer.close()
    name = loaded.piece_names[0] if piece_name is None else piece_name
    if name not in loaded.piece_names:
        raise ValueError(f"the run in {out} did not train on {name!r}; its pieces: "
                         f"{list(loaded.piece_names)}")
    piece = loaded.piece_ids[loaded.piece_names.index(name)]
    agent = int(np.flatnonzero((agent_pieces == piece).any(axis=1))[0])
    one = jax.device_get(jax.tree_util.tree_map(lambda x: x[agent], state))
    ppo = trainer.ppo
    policy = ppo.networks.policy_network

    def action_fn(obs: jax.Array) -> jax.Array:
        logits = policy.apply(one.normalizer, one.params.policy, obs)
        return ppo.to_physical(ppo.distribution.mode(logits))

    return LoadedPolicy(env=loaded.env, piece=int(piece), piece_name=name, action_fn=action_fn,
                        agent=agent, iteration=int(iteration))
