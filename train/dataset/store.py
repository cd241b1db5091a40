"""The on-disk trajectory store: zarr v3 shards written with tensorstore, a JSON manifest, a card.

Layout of a store folder::

    manifest.json          what was collected, how, and every committed shard (the truth)
    card.json              counts, sizes, F1 histogram, pieces (rebuilt from the shards)
    shards/shard-000000/   one zarr v3 group per collection chunk (one array folder per field)

A shard holds the trajectories of one chunk, steps concatenated in trajectory order:
per step `observation` f32 [S, O] (the policy input), `action` f32 [S, A] (taken, in [-1, 1]),
`expert_action` f32 [S, A] (the specialist's label), `pressed` bool [S, K] (key states the
observation was made in), `reward` f32 [S], `reward_terms` f32 [S, R]; per trajectory `start`
i64 [N], `length` i32 [N], `piece` i32 [N] (index into the manifest's piece list),
`specialist` i32 [N], `seed` u32 [N, 2] (the env's reset key), `f1` f32 [N], `flagged` bool [N]
(F1 under the collection's threshold).

Crash safety: a shard is written under a hidden temporary name and renamed into place when
complete; the manifest is replaced atomically afterwards. Readers trust only the manifest, so a
killed writer leaves nothing half-written visible; `clean` removes its leftovers.

Integrity: the manifest lists every file of a committed shard with its size and sha256.
`verify_shard` checks them (what `dataset stats --verify` and `collect` do: `collect` recomputes
a damaged or missing shard, which is a pure function of its index); `check_sizes` checks the
sizes alone (cheap: the loader's check before training, which catches truncated files).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from typing import Any

import numpy as np
import tensorstore as ts

FORMAT = "mjx-piano-trajectories/1"
MANIFEST = "manifest.json"
CARD = "card.json"
SHARDS = "shards"
_TMP_PREFIX = ".tmp-"
# Rows per chunk along the step axis: ~1-4 MB per observation chunk at piano sizes.
_STEP_CHUNK_ROWS = 1024
F1_BINS = 10


@dataclasses.dataclass(frozen=True)
class Trajectories:
    """A batch of finished trajectories on the host (numpy), steps concatenated.

    Attributes:
        observation: float32 [S, O].
        action: float32 [S, A], actions taken (policy space [-1, 1]).
        expert_action: float32 [S, A], the specialist's actions (the labels).
        pressed: bool [S, K], key states when the observation was made.
        reward: float32 [S].
        reward_terms: float32 [S, R], named by the manifest's `reward_terms`.
        start: int64 [N], first step of each trajectory.
        length: int32 [N].
        piece: int32 [N], index into the store's piece list.
        specialist: int32 [N], agent index in the training run.
        seed: uint32 [N, 2], the PRNG key the env was reset with.
        f1: float32 [N], mean per-step F1 of the episode.
        flagged: bool [N], F1 under the collection threshold.
    """

    observation: np.ndarray
    action: np.ndarray
    expert_action: np.ndarray
    pressed: np.ndarray
    reward: np.ndarray
    reward_terms: np.ndarray
    start: np.ndarray
    length: np.ndarray
    piece: np.ndarray
    specialist: np.ndarray
    seed: np.ndarray
    f1: np.ndarray
    flagged: np.ndarray

    @property
    def num_trajectories(self) -> int:
        """N."""
        return int(self.length.shape[0])

    @property
    def num_steps(self) -> int:
        """S."""
        return int(self.observation.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """Field name -> array, in declaration order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


STEP_FIELDS = ("observation", "action", "expert_action", "pressed", "reward", "reward_terms")
TRAJECTORY_FIELDS = ("start", "length", "piece", "specialist", "seed", "f1", "flagged")
DTYPES = {"observation": "float32", "action": "float32", "expert_action": "float32",
           "pressed": "bool", "reward": "float32", "reward_terms": "float32", "start": "int64",
           "length": "int32", "piece": "int32", "specialist": "int32", "seed": "uint32",
           "f1": "float32", "flagged": "bool"}


def shard_name(index: int) -> str:
    """Folder name of shard `index`."""
    return f"shard-{index:06d}"


def _spec(path: str, array: np.ndarray | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"driver": "zarr3", "kvstore": {"driver": "file", "path": path}}
    if array is not None:
        rows = max(1, min(_STEP_CHUNK_ROWS, array.shape[0]))
        spec["metadata"] = {
            "shape": list(array.shape), "data_type": str(array.dtype),
            "chunk_grid": {"name": "regular",
                           "configuration": {"chunk_shape": [rows, *array.shape[1:]]}},
            # Byte shuffle then zstd: float observations compress ~2-4x, booleans ~50x.
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                       {"name": "blosc", "configuration": {
                           "cname": "zstd", "clevel": 5, "shuffle": "shuffle",
                           "typesize": array.dtype.itemsize}}]}
    return spec


def _write_array(path: str, array: np.ndarray) -> None:
    """Writes one zarr v3 array (blocking)."""
    if array.size == 0:
        # zarr chunks must be non-empty: store the shape only, in a sidecar.
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "empty.json"), "w") as f:
            json.dump({"shape": list(array.shape), "dtype": str(array.dtype)}, f)
        return
    store = ts.open(_spec(path, array), create=True, delete_existing=True).result()
    store.write(array).result()


def _read_array(path: str) -> np.ndarray:
    empty = os.path.join(path, "empty.json")
    if os.path.exists(empty):
        with open(empty) as f:
            meta = json.load(f)
        return np.zeros(meta["shape"], meta["dtype"])
    return np.asarray(ts.open(_spec(path)).result().read().result())


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_shard(root: str, index: int, data: Trajectories) -> int:
    """Writes shard `index` atomically (temp folder, then rename); returns its size in bytes.

    An existing folder of the same name (a shard renamed into place whose manifest update
    never happened) is replaced: shards are deterministic in their index.
    """
    shards = os.path.join(root, SHARDS)
    os.makedirs(shards, exist_ok=True)
    final = os.path.join(shards, shard_name(index))
    tmp = os.path.join(shards, f"{_TMP_PREFIX}{shard_name(index)}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for name, array in data.arrays().items():
        if str(array.dtype) != DTYPES[name]:
            raise TypeError(f"{name}: dtype {array.dtype}, expected {DTYPES[name]}")
        _write_array(os.path.join(tmp, name), np.ascontiguousarray(array))
    size = folder_bytes(tmp)
    if os.path.exists(final):
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(shards)
    return size


def read_shard(root: str, index: int, fields: tuple[str, ...] | None = None
               ) -> dict[str, np.ndarray]:
    """Reads the named fields (default all) of shard `index` as numpy arrays."""
    folder = os.path.join(root, SHARDS, shard_name(index))
    return {name: _read_array(os.path.join(folder, name))
            for name in (fields or STEP_FIELDS + TRAJECTORY_FIELDS)}


def read_trajectories(root: str, index: int) -> Trajectories:
    """Shard `index` as `Trajectories`."""
    return Trajectories(**read_shard(root, index))


def folder_bytes(path: str) -> int:
    """Bytes of all files under `path`."""
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def clean(root: str) -> list[str]:
    """Removes leftovers of killed writers (temporary shards, shards not in the manifest).

    Returns:
        The removed folder names.
    """
    shards = os.path.join(root, SHARDS)
    if not os.path.isdir(shards):
        return []
    committed = {s["name"] for s in load_manifest(root)["shards"]} if has_manifest(root) else set()
    removed = []
    for name in sorted(os.listdir(shards)):
        if name not in committed:
            shutil.rmtree(os.path.join(shards, name), ignore_errors=True)
            removed.append(name)
    return removed


def has_manifest(root: str) -> bool:
    """Whether `root` holds a manifest."""
    return os.path.exists(os.path.join(root, MANIFEST))


def load_manifest(root: str) -> dict[str, Any]:
    """The manifest of the store at `root`.

    Raises:
        FileNotFoundError: no manifest (not a store, or nothing committed yet).
        ValueError: a manifest of another format.
    """
    with open(os.path.join(root, MANIFEST)) as f:
        manifest = json.load(f)
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{root}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def write_json_atomic(path: str, data: Any) -> None:
    """Writes JSON to `path` via a temporary file and `os.replace` (readers see old or new)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def new_manifest(meta: dict[str, Any]) -> dict[str, Any]:
    """An empty manifest carrying `meta` (env, pieces, sizes, collection settings)."""
    return {"format": FORMAT, **meta, "shards": [], "totals": _totals([])}


def file_sha256(path: str) -> str:
    """The sha256 of one file (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(folder: str) -> dict[str, dict[str, Any]]:
    """Every file under `folder` (relative path) with its size and sha256."""
    digests = {}
    for directory, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            path = os.path.join(directory, name)
            digests[os.path.relpath(path, folder)] = {"bytes": os.path.getsize(path),
                                                      "sha256": file_sha256(path)}
    return digests


def verify_shard(root: str, entry: dict[str, Any], checksums: bool = True) -> list[str]:
    """What is wrong with a committed shard's files (empty if nothing; also empty for a shard
    committed before the manifest listed files).

    Args:
        root: the store. entry: the shard's manifest entry.
        checksums: also compare each file's sha256 (else sizes only).

    Returns:
        One line per problem: 'data/c/0/0: 812 bytes, 1024 when committed'.
    """
    listed = entry.get("files")
    if listed is None:
        return []
    folder = os.path.join(root, SHARDS, entry["name"])
    if not os.path.isdir(folder):
        return ["the shard's folder is missing"]
    problems = []
    for name, want in listed.items():
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            problems.append(f"{name}: missing")
        elif os.path.getsize(path) != want["bytes"]:
            problems.append(f"{name}: {os.path.getsize(path)} bytes, {want['bytes']} when "
                            "committed")
        elif checksums and file_sha256(path) != want["sha256"]:
            problems.append(f"{name}: sha256 differs from the committed one")
    return problems


def damaged_shards(root: str, checksums: bool = True) -> dict[int, list[str]]:
    """{shard index: its problems} over the manifest's shards (`verify_shard`)."""
    found = {}
    for entry in load_manifest(root)["shards"]:
        problems = verify_shard(root, entry, checksums)
        if problems:
            found[entry["index"]] = problems
    return found


def check_sizes(root: str) -> None:
    """Raises ValueError naming the first shard whose files are missing or of another size
    than when committed (the loader's check before training)."""
    damaged = damaged_shards(root, checksums=False)
    if damaged:
        index, problems = next(iter(damaged.items()))
        raise ValueError(f"{root}: shard {shard_name(index)} is damaged ({problems[0]}"
                         f"{'; ...' if len(problems) > 1 else ''}); run `mjx-piano dataset "
                         "collect` with the same arguments again to recompute it")


def commit_shard(root: str, manifest: dict[str, Any], index: int, data: Trajectories,
                 size: int) -> dict[str, Any]:
    """Records a written shard in the manifest (atomically, on disk), with its files' sizes
    and sha256; returns the new manifest."""
    kept = ~data.flagged
    entry = {"name": shard_name(index), "index": index, "trajectories": data.num_trajectories,
             "steps": data.num_steps, "kept_trajectories": int(kept.sum()),
             "kept_steps": int(data.length[kept].sum()), "bytes": size,
             "files": file_digests(os.path.join(root, SHARDS, shard_name(index)))}
    shards = [s for s in manifest["shards"] if s["index"] != index] + [entry]
    shards.sort(key=lambda s: s["index"])
    manifest = {**manifest, "shards": shards, "totals": _totals(shards)}
    write_json_atomic(os.path.join(root, MANIFEST), manifest)
    return manifest


def _totals(shards: list[dict[str, Any]]) -> dict[str, int]:
    keys = ("trajectories", "steps", "kept_trajectories", "kept_steps", "bytes")
    return {k: int(sum(s[k] for s in shards)) for k in keys}
