"""Where a dataset store's content comes from, and the check that an append keeps it so.

A store's identity is its collection settings, its pieces, digests of the restored
parameters of the specialists and of the relabelling learner (`parameters_sha256`) and the
code's versions (`train.code_versions`); the run folders' paths are recorded, not compared. `open_store` makes a fresh manifest or checks an
existing one against the collection at hand.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from train.code_versions import installed_versions
from train.config import to_dict
from train.dataset import store
from train.restore import Specialists

if TYPE_CHECKING:
    from train.dataset.collect import CollectConfig


def _settings(config: "CollectConfig") -> dict[str, Any]:
    """The settings that decide the store's content (compared on resume)."""
    data = dataclasses.asdict(config)
    data.pop("out"), data.pop("progress")
    data["run"] = os.path.abspath(data["run"])
    if data["relabel_learner"]:
        data["relabel_learner"] = os.path.abspath(data["relabel_learner"])
    return data


def parameters_sha256(tree: Any) -> str:
    """A digest of a pytree of arrays (dtypes, shapes and bytes): first 16 hex of sha256."""
    digest = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(tree):
        array = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


# Recorded in the manifest, not part of what decides the store's content.
_PATH_SETTINGS = ("run", "relabel_learner")
# Recorded since stores were first written: a store from before is not compared on them.
_RECORDED_LATER = ("code",)


def identity_differences(stored: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """'field: stored -> now' for every content-deciding collection setting that differs."""
    fields = sorted((set(stored) | set(now)) - set(_PATH_SETTINGS))
    return [f"{k}: {stored.get(k)!r} -> {now.get(k)!r}" for k in fields
            if stored.get(k) != now.get(k) and (k in stored or k not in _RECORDED_LATER)]


def open_store(config: "CollectConfig", specialists: Specialists, learner: Specialists | None,
                names: tuple[str, ...], num_keys: int) -> dict[str, Any]:
    """The store's manifest: a fresh one, or the existing one after checking that its content
    identity (settings, pieces, the specialists' and learner's parameters) matches."""
    loaded = specialists.loaded
    settings = {**_settings(config), "checkpoint_step": specialists.step,
                "pieces": list(loaded.piece_names),
                "specialists_sha256": parameters_sha256((specialists.policy,
                                                         specialists.normalizer)),
                "learner_sha256": learner and parameters_sha256((learner.policy,
                                                                 learner.normalizer)),
                "code": dataclasses.asdict(installed_versions())}
    if store.has_manifest(config.out):
        manifest = store.load_manifest(config.out)
        differences = identity_differences(manifest["collection"], settings)
        if differences:
            raise ValueError(f"{config.out} was collected from other specialists or with other "
                             "settings; refusing to append. Differences (stored -> now):\n  "
                             + "\n  ".join(differences))
        store.clean(config.out)
        return manifest
    os.makedirs(config.out, exist_ok=True)
    store.clean(config.out)
    manifest = store.new_manifest({
        "env": specialists.config.env.name, "pieces": list(loaded.piece_names),
        "bank_ids": list(loaded.piece_ids), "observation_size": int(loaded.env.observation_size),
        "action_size": int(loaded.env.action_size), "num_keys": num_keys,
        "reward_terms": list(names), "collection": settings,
        "specialist_run": to_dict(specialists.config),
        "agent_pieces": np.asarray(specialists.agent_pieces).tolist()})
    store.write_json_atomic(os.path.join(config.out, store.MANIFEST), manifest)
    return manifest
