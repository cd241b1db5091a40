"""Orbax checkpoints of the full agent-batched `TrainState`, with the run's config beside it.

Each checkpoint (folder `<out>/checkpoints/<iteration>`) holds two items: `state` (every
array of the `TrainState`: parameters, optimiser, normaliser, env states, piece table, rng,
iteration; stored flat by leaf position, since env states may hold zero-size arrays that orbax
cannot store) and `config` (the resolved `SpecialistConfig` as JSON). Orbax writes into a temporary
folder and renames it when complete, so a run killed while saving leaves the previous
checkpoint intact. `check_resumable` reads only the JSON, so a checkpoint from another
configuration is refused before anything is traced or compiled.
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from train.config import SpecialistConfig, from_dict, identity_differences, to_dict
from train.ppo import TrainState


class ConfigMismatchError(ValueError):
    """The checkpoint to resume was written by a run with another configuration."""


class Checkpointer:
    """Saves and restores `TrainState`s under `<out>/checkpoints`.

    Args:
        out: the run's output folder.
        keep: checkpoints to keep (the newest).
    """

    def __init__(self, out: str, keep: int = 2):
        self.directory = os.path.join(os.path.abspath(out), "checkpoints")
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, enable_async_checkpointing=False)
        self.manager = ocp.CheckpointManager(self.directory, options=options,
                                             item_names=("state", "config"))

    def latest_step(self) -> int | None:
        """Iteration of the newest complete checkpoint, or None."""
        return self.manager.latest_step()

    def save(self, step: int, state: TrainState, config: SpecialistConfig) -> None:
        """Writes `state` and `config` as checkpoint `step` (blocks until it is on disk)."""
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(_to_items(state)),
            config=ocp.args.JsonSave(to_dict(config))), force=True)
        self.manager.wait_until_finished()

    def stored_config(self, step: int) -> SpecialistConfig:
        """The configuration saved with checkpoint `step`."""
        restored = self.manager.restore(step, args=ocp.args.Composite(
            config=ocp.args.JsonRestore()))
        return from_dict(restored["config"])

    def restore(self, step: int, abstract_state: Any) -> TrainState:
        """Checkpoint `step`'s state, placed like `abstract_state` (ShapeDtypeStructs with
        shardings, e.g. `Trainer.abstract_state`)."""
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(_to_items(abstract_state))))
        return _from_items(restored["state"], abstract_state)

    def close(self) -> None:
        """Finishes pending writes and releases the manager."""
        self.manager.wait_until_finished()
        self.manager.close()


def check_resumable(checkpointer: Checkpointer, config: SpecialistConfig) -> int | None:
    """The iteration to resume from (None when there is no checkpoint).

    Raises:
        ConfigMismatchError: the newest checkpoint's configuration differs from `config` in a
            field that changes what is learned; the message lists those fields.
    """
    step = checkpointer.latest_step()
    if step is None:
        return None
    differences = identity_differences(checkpointer.stored_config(step), config)
    if differences:
        raise ConfigMismatchError(
            f"checkpoint {step} in {checkpointer.directory} was written with another "
            "configuration; refusing to resume. Differences (stored -> now):\n  "
            + "\n  ".join(differences))
    return step


def _to_items(state: Any) -> dict[str, Any]:
    """The state's leaves keyed by position; zero-size leaves (e.g. `mjx.Data.act` without
    activations) are left out, since orbax cannot store them."""
    leaves = jax.tree_util.tree_leaves(state)
    return {f"{i:05d}": leaf for i, leaf in enumerate(leaves) if math.prod(leaf.shape) > 0}


def _from_items(items: dict[str, Any], abstract_state: Any) -> Any:
    """Inverse of `_to_items`, with zero-size leaves recreated from `abstract_state`."""
    leaves, treedef = jax.tree_util.tree_flatten(abstract_state)
    restored = [items[f"{i:05d}"] if math.prod(leaf.shape) > 0
                else jax.device_put(np.zeros(leaf.shape, leaf.dtype), leaf.sharding)
                for i, leaf in enumerate(leaves)]
    return jax.tree_util.tree_unflatten(treedef, restored)
