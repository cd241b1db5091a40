"""Trajectory dataset: collect specialists' rollouts into a store, stream training windows.

`collect` (train.dataset.collect) rolls PPO specialists out on device and appends shards;
`store` is the on-disk format (zarr v3 via tensorstore, manifest, card); `loader` streams
shuffled `WindowBatch`es to device memory.
"""

from train.dataset.loader import WindowLoader, load_windows

__all__ = ["WindowLoader", "load_windows"]
