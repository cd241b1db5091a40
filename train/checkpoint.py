"""Orbax checkpoints of the full agent-batched `TrainState`, with the run's config beside it.

Each checkpoint (folder `<out>/checkpoints/<iteration>`) holds two items: `state` (every
array of the `TrainState`: parameters, optimiser, normaliser, env states, piece table, rng,
iteration; stored flat by leaf position, since env states may hold zero-size arrays that orbax
cannot store) and `config` (the resolved `SpecialistConfig` as JSON). Orbax writes into a temporary
folder and renames it when complete, so a run killed while saving leaves the previous
checkpoint intact. `check_resumable` reads only the JSON, so a checkpoint from another
configuration is refused before anything is traced or compiled. A checkpoint written before
states held their piece bank (`bank`) lacks the bank's arrays: `restore` recognises that layout
from the stored array names and puts back the bank its caller rebuilt from the run's pieces.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shlex
import sys
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from train.config import (SpecialistConfig, from_dict, identity, identity_differences,
                          to_dict)
from train.ppo import TrainState


class ConfigMismatchError(ValueError):
    """The checkpoint to resume was written by a run with another configuration."""


class CheckpointLayoutError(ValueError):
    """A checkpoint's stored arrays fit neither the state this code builds nor the layout from
    before states held their bank, or such a legacy checkpoint came without a bank to put back."""


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
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_handlers={
            "state": ocp.StandardCheckpointHandler(), "config": ocp.JsonCheckpointHandler()})

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

    def stored_layout(self, step: int) -> dict[str, tuple[int, ...]]:
        """Name -> shape of every array stored in checkpoint `step`'s state (read from orbax's
        metadata; nothing is loaded)."""
        metadata = self.manager.item_metadata(step)["state"]
        return {} if metadata is None else {name: tuple(leaf.shape)
                                            for name, leaf in metadata.items()}

    def restore(self, step: int, abstract_state: Any, bank: Any = None) -> TrainState:
        """Checkpoint `step`'s state, placed like `abstract_state` (ShapeDtypeStructs with
        shardings, e.g. `Trainer.abstract_state`).

        A checkpoint from before states held their bank (its arrays are those of
        `abstract_state` without `bank`) is restored with `bank` put back.

        Args:
            step: the checkpoint's iteration.
            abstract_state: the state's shapes, dtypes and shardings.
            bank: the run's pieces (`PieceBank`, host leaves [agents, k, ...], e.g.
                `RunPlan.agent_bank`); needed only for such legacy checkpoints.

        Raises:
            CheckpointLayoutError: the stored arrays fit neither layout, or a legacy checkpoint
                and no `bank`.
        """
        stored = self.stored_layout(step)
        if stored == _layout(abstract_state):
            return self._restore_items(step, abstract_state)
        legacy = _without_bank(abstract_state)
        where = f"checkpoint {step} in {self.directory}"
        counts = f"{len(stored)} stored arrays, {len(_layout(abstract_state))} expected"
        if legacy is None or stored != _layout(legacy):
            raise CheckpointLayoutError(
                f"{where} does not fit this code's learner state ({counts}; "
                f"{0 if legacy is None else len(_layout(legacy))} in the layout from before banks "
                "were stored): it was written by another version of the learner or env. "
                "Retrain the run into a new --out, or restore it with the version that wrote it")
        if bank is None:
            raise CheckpointLayoutError(
                f"{where} predates stored piece banks ({counts}): restoring it needs the run's "
                "bank (Checkpointer.restore(..., bank=RunPlan.agent_bank)); or retrain the run")
        state = self._restore_items(step, legacy)
        if jax.process_index() == 0:
            print(f"{where} predates stored piece banks; the bank was rebuilt from the run's "
                  "pieces", file=sys.stderr, flush=True)
        return state.replace(bank=_place(bank, abstract_state.bank))

    def _restore_items(self, step: int, abstract_state: Any) -> Any:
        """Checkpoint `step`'s state, restored as laid out by `abstract_state`."""
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
    stored = checkpointer.stored_config(step)
    differences = identity_differences(stored, config)
    if differences:
        sets = restoring_sets(stored, config)
        raise ConfigMismatchError(
            f"checkpoint {step} in {checkpointer.directory} was written with another "
            "configuration; refusing to resume. Differences (stored -> now):\n  "
            + "\n  ".join(differences)
            + (f"\nTo resume it as it was stored, add: {' '.join(sets)}" if sets else "")
            + ("\n(code.*: the run was trained under other library versions, and a resume "
               "would not continue bit-exactly; install those versions to resume it, or train "
               "into a new --out)" if any(d.startswith("code.") for d in differences) else ""))
    return step


def restoring_sets(stored: SpecialistConfig, current: SpecialistConfig) -> list[str]:
    """`--set FIELD=VALUE` arguments (shell-quoted) that give `current` the stored run's value
    of each setting of its identity that differs: numbers, flags and names; not the code's
    versions, the pieces or their rolls' digest, which no flag restores."""
    a, b = identity(stored), identity(current)
    unset = ("code.", "env.pieces")
    return [f"--set {shlex.quote(f'{k}={_set_value(a[k])}')}" for k in sorted(a)
            if a[k] != b.get(k) and not k.startswith(unset)]


def _set_value(value: Any) -> str:
    """A stored config value as `--set` reads it back (`train.config.apply_overrides`)."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _to_items(state: Any) -> dict[str, Any]:
    """The state's leaves keyed by position; zero-size leaves (e.g. `mjx.Data.act` without
    activations) are left out, since orbax cannot store them."""
    leaves = jax.tree_util.tree_leaves(state)
    return {f"{i:05d}": leaf for i, leaf in enumerate(leaves) if math.prod(leaf.shape) > 0}


def _layout(state: Any) -> dict[str, tuple[int, ...]]:
    """Name -> shape of the arrays `_to_items` stores for `state`."""
    return {name: tuple(leaf.shape) for name, leaf in _to_items(state).items()}


def _without_bank(state: Any) -> Any:
    """`state` as written before states held their bank (`bank=None`, an empty node, so the
    later leaves shift down), or None for a state without a bank."""
    if not dataclasses.is_dataclass(state) or getattr(state, "bank", None) is None:
        return None
    return state.replace(bank=None)


def _place(bank: Any, abstract_bank: Any) -> Any:
    """The host `bank` as arrays laid out like `abstract_bank` (ShapeDtypeStructs with
    shardings; every process holds the whole bank).

    Raises:
        ValueError: a leaf's shape differs from the abstract's.
    """
    def put(value: Any, abstract: jax.ShapeDtypeStruct) -> jax.Array:
        value = np.asarray(value, abstract.dtype)
        if value.shape != abstract.shape:
            raise ValueError(f"the bank's arrays have shape {value.shape}, the state's "
                             f"{abstract.shape}")
        return jax.make_array_from_callback(value.shape, abstract.sharding,
                                            lambda index: value[index])

    return jax.tree_util.tree_map(put, bank, abstract_bank)


def _from_items(items: dict[str, Any], abstract_state: Any) -> Any:
    """Inverse of `_to_items`, with zero-size leaves recreated from `abstract_state`."""
    leaves, treedef = jax.tree_util.tree_flatten(abstract_state)
    restored = [items[f"{i:05d}"] if math.prod(leaf.shape) > 0
                else jax.device_put(np.zeros(leaf.shape, leaf.dtype), leaf.sharding)
                for i, leaf in enumerate(leaves)]
    return jax.tree_util.tree_unflatten(treedef, restored)
