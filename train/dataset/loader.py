"""Streams shuffled `WindowBatch`es from a trajectory store to device memory.

The sample order is a pure function of (seed, manifest): epoch e visits the shards in a
permutation drawn from (seed, e), `shards_in_memory` at a time; within such a group every window
(trajectory n, step t) appears once, in a permutation drawn from (seed, e, group). The stream
is the concatenation of all groups of all epochs, cut into batches; batch s is therefore known
without reading anything before it, which gives exact resume (`batches(start_step, ...)`) at
the cost of reading only the groups it touches. A background thread reads shards, cuts windows
(numpy gathers) and places them on device (split over the batch axis across devices when
there are several), `prefetch` batches ahead of the consumer.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from typing import Any, Iterator, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from train.dataset import store
from train.windows import ACTION_HORIZON, OBS_HISTORY, WindowBatch


@dataclasses.dataclass(frozen=True)
class Group:
    """A set of shards in memory with its window index.

    Attributes:
        observation: float32 [S, O].
        expert_action: float32 [S, A].
        window_start: int64 [W], first step of the window's trajectory.
        window_length: int32 [W], its length.
        window_t: int32 [W], the window's step within the trajectory.
        window_piece: int32 [W].
    """

    observation: np.ndarray
    expert_action: np.ndarray
    window_start: np.ndarray
    window_length: np.ndarray
    window_t: np.ndarray
    window_piece: np.ndarray


def cut_windows(observation: np.ndarray, actions: np.ndarray, start: np.ndarray,
                length: np.ndarray, t: np.ndarray, piece: np.ndarray,
                obs_history: int = OBS_HISTORY, horizon: int = ACTION_HORIZON
                ) -> dict[str, np.ndarray]:
    """Windows at steps `t` of trajectories (`start`, `length`) of flat step arrays.

    Observations of steps t - obs_history + 1 .. t (clamped at the trajectory's first step:
    the first observation repeated), actions of steps t .. t + horizon - 1 (clamped at its last
    step and masked there).

    Args:
        observation: [S, O]; actions: [S, A]; start, length, t, piece: [B].

    Returns:
        observations [B, obs_history, O], actions [B, horizon, A], action_mask bool
        [B, horizon], piece int32 [B].
    """
    obs_t = t[:, None] + np.arange(1 - obs_history, 1)[None, :]
    act_t = t[:, None] + np.arange(horizon)[None, :]
    mask = act_t < length[:, None]
    obs_rows = start[:, None] + np.maximum(obs_t, 0)
    act_rows = start[:, None] + np.minimum(act_t, length[:, None] - 1)
    return {"observations": observation[obs_rows], "actions": actions[act_rows],
            "action_mask": mask, "piece": piece.astype(np.int32)}


class WindowLoader:
    """A `StreamSource` over one store, or several of the same pieces sampled as one (see
    `train.generalist.training.StreamSource`).

    Args:
        root: store folder, or a sequence of them (their shards are pooled; one store gives
            the order it always gave).
        seed: shuffling seed.
        shards_in_memory: shards shuffled together (the shuffle's reach, and host memory).
        prefetch: batches prepared ahead by the background thread.
        include_flagged: also train on trajectories flagged under the collection's min F1.
        devices: devices to place batches on (default all); the batch is split over them.
    """

    def __init__(self, root: str | Sequence[str], seed: int = 0, shards_in_memory: int = 4,
                 prefetch: int = 4, include_flagged: bool = False,
                 devices: list[jax.Device] | None = None):
        self.roots = (root,) if isinstance(root, str) else tuple(root)
        self.root = self.roots[0]
        manifests = [store.load_manifest(r) for r in self.roots]
        for r in self.roots:
            store.check_sizes(r)  # a truncated or missing shard file, named before training
        self.manifest = manifests[0]
        for other, manifest in zip(self.roots[1:], manifests[1:]):
            for field in ("pieces", "observation_size", "action_size"):
                if manifest[field] != self.manifest[field]:
                    raise ValueError(f"{other} holds other {field} than {self.root}: the "
                                     "stores sampled together must share their pieces and sizes")
        self.seed = seed
        self.shards_in_memory = max(1, shards_in_memory)
        self.prefetch = max(1, prefetch)
        self.include_flagged = include_flagged
        self.observation_size = int(self.manifest["observation_size"])
        self.action_size = int(self.manifest["action_size"])
        self.num_pieces = len(self.manifest["pieces"])
        self.pieces = tuple(self.manifest["pieces"])
        key = "steps" if include_flagged else "kept_steps"
        # A shard is (store number, index in its store).
        self._shards = [(r, s["index"]) for r, manifest in enumerate(manifests)
                        for s in manifest["shards"] if s[key] > 0]
        self._shard_windows = {(r, s["index"]): s[key] for r, manifest in enumerate(manifests)
                               for s in manifest["shards"]}
        self.windows_per_epoch = sum(self._shard_windows[i] for i in self._shards)
        if self.windows_per_epoch == 0:
            raise ValueError(f"{', '.join(self.roots)}: no trajectories to train on")
        devices = devices or jax.devices()
        self._sharding = NamedSharding(Mesh(np.asarray(devices), ("batch",)), P("batch"))
        self._num_devices = len(devices)

    def _rng(self, *path: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *path])

    def _epoch_groups(self, epoch: int) -> list[list[tuple[int, int]]]:
        order = self._rng(epoch).permutation(len(self._shards))
        shards = [self._shards[i] for i in order]
        step = self.shards_in_memory
        return [shards[i: i + step] for i in range(0, len(shards), step)]

    def load_group(self, shards: list[tuple[int, int]]) -> Group:
        """Reads `shards` ((store number, index) pairs) and indexes their windows (every step
        of every used trajectory)."""
        obs, act, starts, lengths, pieces, offset = [], [], [], [], [], 0
        for number, index in shards:
            data = store.read_shard(self.roots[number], index, (
                "observation", "expert_action", "start", "length", "piece", "flagged"))
            use = np.ones_like(data["flagged"]) if self.include_flagged else ~data["flagged"]
            obs.append(data["observation"])
            act.append(data["expert_action"])
            starts.append(data["start"][use] + offset)
            lengths.append(data["length"][use])
            pieces.append(data["piece"][use])
            offset += data["observation"].shape[0]
        start, length = np.concatenate(starts), np.concatenate(lengths)
        owner = np.repeat(np.arange(start.shape[0]), length)
        first = np.concatenate([[0], np.cumsum(length)[:-1]])
        t = (np.arange(owner.shape[0]) - first[owner]).astype(np.int32)
        return Group(observation=np.concatenate(obs), expert_action=np.concatenate(act),
                     window_start=start[owner], window_length=length[owner], window_t=t,
                     window_piece=np.concatenate(pieces)[owner])

    def _positions(self, start_sample: int) -> Iterator[tuple[Group, np.ndarray]]:
        """(group, permuted window indices from the stream position on), forever."""
        epoch, skip = divmod(start_sample, self.windows_per_epoch)
        while True:
            for g, shards in enumerate(self._epoch_groups(epoch)):
                size = sum(self._shard_windows[i] for i in shards)
                if skip >= size:
                    skip -= size
                    continue
                group = self.load_group(shards)
                order = self._rng(epoch, g + 1).permutation(size)
                yield group, order[skip:]
                skip = 0
            epoch += 1

    def host_batches(self, start_step: int, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
        """Numpy batches for steps start_step, start_step + 1, ... (deterministic)."""
        parts: list[dict[str, np.ndarray]] = []
        have = 0
        for group, order in self._positions(start_step * batch_size):
            pos = 0
            while pos < order.shape[0]:
                take = order[pos: pos + batch_size - have]
                pos += take.shape[0]
                parts.append(cut_windows(group.observation, group.expert_action,
                                         group.window_start[take], group.window_length[take],
                                         group.window_t[take], group.window_piece[take]))
                have += take.shape[0]
                if have == batch_size:
                    yield {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
                    parts, have = [], 0

    def to_device(self, batch: dict[str, np.ndarray]) -> WindowBatch:
        """A host batch placed on the devices (batch axis split across them)."""
        if self._num_devices > 1:
            placed = {k: jax.device_put(v, self._sharding) for k, v in batch.items()}
        else:
            placed = jax.device_put(batch, self._sharding.mesh.devices.flat[0])
        return WindowBatch(**placed)

    def batches(self, start_step: int, batch_size: int) -> Iterator[WindowBatch]:
        """Device batches for steps start_step, ... prepared by a background thread.

        Raises:
            ValueError: `batch_size` is not a multiple of the number of devices.
        """
        if batch_size % self._num_devices:
            raise ValueError(f"batch size {batch_size} is not a multiple of the "
                             f"{self._num_devices} devices")
        return _Prefetcher(self, start_step, batch_size, self.prefetch)


class _Prefetcher:
    """Iterator over device batches filled by a daemon thread; stops it when closed or lost."""

    _END = object()

    def __init__(self, loader: WindowLoader, start_step: int, batch_size: int, depth: int):
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._fill, args=(loader, start_step, batch_size), daemon=True)
        self._thread.start()

    def _fill(self, loader: WindowLoader, start_step: int, batch_size: int) -> None:
        try:
            for batch in loader.host_batches(start_step, batch_size):
                item = loader.to_device(batch)
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
        except BaseException as error:  # handed to the consumer, raised there
            self._queue.put(error)

    def __iter__(self) -> "_Prefetcher":
        return self

    def __next__(self) -> WindowBatch:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        """Stops the background thread."""
        self._stop.set()
        self._thread.join(timeout=5)

    def __del__(self) -> None:
        self._stop.set()


def load_windows(path: str | Sequence[str], seed: int = 0, **kwargs: Any) -> WindowLoader:
    """The streaming loader of the store at `path`, or of several stores of the same pieces
    sampled as one (what `data.source=dataset` uses)."""
    return WindowLoader(path, seed=seed, **kwargs)
