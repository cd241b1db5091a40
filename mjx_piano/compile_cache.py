"""A persistent cache of compiled XLA programs, shared by every mjx-piano process.

MJX programs take 15-40 s each to compile on CPU, and every command compiles its env step,
rollout or trainer again. With this cache a program compiled once is read back (in well
under a second) by any later process that builds the same program: the same scene, batch
and settings. An entry's key covers the program, the compile options, the devices and the
jax / jaxlib versions, so an entry is only used where it is valid.

Where: `$JAX_COMPILATION_CACHE_DIR` when set (jax's own variable, which the tests use for
a per-run folder), else `$MJX_PIANO_CACHE/xla` (default `~/.cache/mjx_piano/xla`).
`MJX_PIANO_COMPILE_CACHE=0` turns it off. The folder is capped at `max_bytes` (least
recently used entries go first) under a file lock (the `filelock` package), so parallel
processes share it safely; without `filelock` the cache stays off.
"""

from __future__ import annotations

import os

OFF_ENV = "MJX_PIANO_COMPILE_CACHE"
MAX_BYTES = 4 << 30


def compile_cache_folder() -> str | None:
    """The folder the cache would use, or None when `MJX_PIANO_COMPILE_CACHE=0`."""
    if os.environ.get(OFF_ENV, "1") == "0":
        return None
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return os.environ["JAX_COMPILATION_CACHE_DIR"]
    from mjx_piano.music.repertoire import cache_dir

    return os.path.join(cache_dir(), "xla")


def enable_compile_cache(max_bytes: int = MAX_BYTES) -> str | None:
    """Points jax's persistent compilation cache at `compile_cache_folder()` (programs that
    took at least a second to compile are kept). Call it before the first compilation.

    Returns:
        The folder, or None when the cache is off (`MJX_PIANO_COMPILE_CACHE=0`, or no
        `filelock` to share the folder safely).
    """
    folder = compile_cache_folder()
    if folder is None:
        return None
    import importlib.util

    if importlib.util.find_spec("filelock") is None:  # jax locks the capped cache with it
        return None
    import jax

    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_compilation_cache_max_size", max_bytes)
    return folder
