"""The repertoire file: every clip run-length encoded into one compressed, versioned .npz.

A clip is stored exactly as the runs of its piano roll: per key, each maximal run of steps held
by one hand is a row (start, stop, key, right) of `runs` [R, 4] uint16, and each pedal-down run
a row (start, stop) of `pedal` [P, 2] uint16; `run_offsets` [C + 1] and `pedal_offsets` [C + 1]
delimit the rows of clip c. A 550-step clip takes ~8 bytes per note instead of 6 kB of bits.
The JSON manifest (per clip: name, piece, title, composer, source, steps, duration, notes,
split; per piece; the skipped sources with reasons; the build config) is stored in the same file.
The content hash (sha256 over the arrays and the manifest) identifies a build; writes go to a
temporary file in the same folder and are renamed over the old file (`os.replace`), so a crash
never leaves a half-written repertoire.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from typing import Any, Sequence

import numpy as np

from mjx_piano.music.roll import NUM_KEYS, PianoRoll

FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class EncodedClip:
    """One clip's runs, as produced by `encode_roll` (picklable and small).

    Attributes:
        runs: uint16 [R, 4]: (start, stop, key, right) per run, sorted.
        pedal: uint16 [P, 2]: (start, stop) per pedal-down run.
        steps: control steps of the clip.
        notes: key strikes in the clip.
    """

    runs: np.ndarray
    pedal: np.ndarray
    steps: int
    notes: int

    def key_digest(self) -> str:
        """sha256 of the notes only (keys and pedal, not the hand split): finds duplicate music."""
        h = hashlib.sha256(np.asarray([self.steps], np.int64).tobytes())
        h.update(np.unique(self.runs[:, :3], axis=0).tobytes())
        h.update(self.pedal.tobytes())
        return h.hexdigest()


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of True along axis 0 of bool [T, K]: (starts, stops, columns), sorted by column, start."""
    padded = np.zeros((mask.shape[0] + 2, mask.shape[1]), dtype=np.int8)
    padded[1:-1] = mask
    edges = np.diff(padded, axis=0).T  # [K, T + 1]
    column, start = np.nonzero(edges == 1)
    _, stop = np.nonzero(edges == -1)
    return start, stop, column


def encode_roll(roll: PianoRoll) -> EncodedClip:
    """A piano roll -> its runs (lossless; a roll without hand split counts as all left hand)."""
    if roll.num_steps >= 2**16:
        raise ValueError(f"clip {roll.name!r} has {roll.num_steps} steps; at most 65535 fit")
    right = roll.right_hand if roll.right_hand is not None else np.zeros_like(roll.keys)
    rows = []
    for flag, mask in ((0, roll.keys & ~right), (1, right)):
        start, stop, key = _runs(mask)
        rows.append(np.stack([start, stop, key, np.full_like(start, flag)], axis=1))
    runs = np.concatenate(rows).astype(np.uint16)
    runs = runs[np.lexsort((runs[:, 3], runs[:, 2], runs[:, 0]))]
    start, stop, _ = _runs(roll.sustain[:, None])
    pedal = np.stack([start, stop], axis=1).astype(np.uint16)
    return EncodedClip(runs, pedal, roll.num_steps, roll.num_notes)


def decode_roll(clip: EncodedClip, name: str, **provenance: str) -> PianoRoll:
    """Runs -> PianoRoll with keys [steps, 88], sustain [steps] and right_hand [steps, 88]."""
    keys = np.zeros((clip.steps, NUM_KEYS), dtype=bool)
    right = np.zeros((clip.steps, NUM_KEYS), dtype=bool)
    sustain = np.zeros(clip.steps, dtype=bool)
    for start, stop, key, is_right in clip.runs.astype(np.int64):
        keys[start:stop, key] = True
        if is_right:
            right[start:stop, key] = True
    for start, stop in clip.pedal.astype(np.int64):
        sustain[start:stop] = True
    return PianoRoll(name, keys, sustain, right_hand=right, **provenance)


def _content_hash(arrays: dict[str, np.ndarray], manifest: dict[str, Any]) -> str:
    h = hashlib.sha256(str(FORMAT_VERSION).encode())
    for name in sorted(arrays):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arrays[name]).tobytes())
    h.update(json.dumps(manifest, sort_keys=True).encode())
    return h.hexdigest()


def save_store(path: str | os.PathLike[str], clips: Sequence[EncodedClip], manifest: dict[str, Any]) -> str:
    """Writes clips + manifest atomically to `path` (.npz); returns the content hash.

    Args:
        path: the file to (re)place.
        clips: the clips, in manifest order (`manifest['clips'][i]` describes `clips[i]`).
        manifest: JSON-able; `version` and `hash` are added.
    """
    arrays = {
        "runs": np.concatenate([c.runs for c in clips] or [np.zeros((0, 4), np.uint16)]),
        "run_offsets": np.cumsum([0] + [len(c.runs) for c in clips]).astype(np.int64),
        "pedal": np.concatenate([c.pedal for c in clips] or [np.zeros((0, 2), np.uint16)]),
        "pedal_offsets": np.cumsum([0] + [len(c.pedal) for c in clips]).astype(np.int64),
        "steps": np.asarray([c.steps for c in clips], np.int64),
        "notes": np.asarray([c.notes for c in clips], np.int64),
    }
    manifest = dict(manifest, version=FORMAT_VERSION)
    manifest.pop("hash", None)
    digest = _content_hash(arrays, manifest)
    manifest["hash"] = digest
    arrays["manifest"] = np.asarray(json.dumps(manifest, sort_keys=True))
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=directory, prefix=".repertoire-", suffix=".npz.tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez_compressed(f, **arrays)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a cache is for everyone
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return digest


class StoreError(RuntimeError):
    """The repertoire file is missing, of another format version, or damaged."""


@dataclasses.dataclass(frozen=True)
class Store:
    """A loaded repertoire file: the manifest and the arrays of every clip."""

    path: str
    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]
    index: dict[str, int]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Store":
        """Reads `path`; raises StoreError if it is missing, damaged or of another version."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise StoreError(f"{path}: no repertoire file (build it: python3 -m mjx_piano repertoire build)")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            manifest = json.loads(str(arrays.pop("manifest")))
        except Exception as error:
            raise StoreError(f"{path}: damaged repertoire file ({type(error).__name__}: {error}); "
                             "rebuild it") from error
        if manifest.get("version") != FORMAT_VERSION:
            raise StoreError(f"{path}: repertoire format {manifest.get('version')}, this code reads "
                             f"{FORMAT_VERSION}; rebuild it")
        index = {entry["name"]: i for i, entry in enumerate(manifest["clips"])}
        return cls(path, manifest, arrays, index)

    @property
    def hash(self) -> str:
        """Content hash of the build."""
        return str(self.manifest["hash"])

    def encoded(self, i: int) -> EncodedClip:
        """Clip i's runs."""
        a, b = self.arrays["run_offsets"][i : i + 2]
        p, q = self.arrays["pedal_offsets"][i : i + 2]
        return EncodedClip(self.arrays["runs"][a:b], self.arrays["pedal"][p:q],
                           int(self.arrays["steps"][i]), int(self.arrays["notes"][i]))

    def roll(self, name: str) -> PianoRoll:
        """The named clip as a PianoRoll; KeyError if absent."""
        i = self.index[name]
        entry = self.manifest["clips"][i]
        return decode_roll(self.encoded(i), name, title=entry["title"],
                           composer=entry["composer"], source=entry["source"])
