"""GPU programs the ILC search can trust: it compares replays of one table and keeps the best.

The segment search (`train/ilc_segments.py`) keeps a candidate when its replay from an anchor
beats the current table's, and moves the anchors along the evaluation's path; that holds only
if a program gives the same result for the same input, and a close one in another batch
shape or slot. On the CPU the first holds bit for bit and the second up to float32 rounding,
which the contacts grow (`bench ilc-parity`, `tests/train/test_ilc.py`). On an H200
(`bench/RESULTS.md`, "GPU") it held less, in two ways:

- From one call to the next (2026-12-04, default XLA flags): the IK pianist's whole-clip
  rollout of the same zero tables, the same compiled program, scored F1 0.712 to 0.752 on one
  clip. XLA:GPU's scatters (MJX sums forces and contacts with them) add in the order their
  atomics land. `--xla_gpu_exclude_nondeterministic_ops` makes XLA pick deterministic
  implementations (scatters, GEMMs; slower: a round took 1.8 s instead of 1.0) and with it the
  evaluations repeated bit for bit (2026-12-04, second session). `deterministic_gpu()`.
- From one slot of a batch to the next (2026-12-04, with the flag, R2's first window):
  replays of the same table from the same state parted by up to 8.5 cm and 2.2 summed step F1
  within 26 steps. On the CPU they part too, from a 1e-8 m rounding seed, but less (4.1 cm,
  0.13), and the search learns there. JAX computes float32 matrix products in TensorFloat32 on
  recent NVIDIA GPUs by default (10-bit mantissa, ~1e-3 relative), and MJX's dots ask for the
  default. `float32_matmuls()` asks for full float32 (`jax_default_matmul_precision`
  "highest"); on the CPU it changes no bit (the IK pianist's rollout, 2026-12-04).

Both must be set before the first computation (XLA reads XLA_FLAGS when its first backend
starts; the precision is read when a function is traced). A user's own setting wins.
"""

from __future__ import annotations

import os

import jax

DETERMINISM_FLAG = "xla_gpu_exclude_nondeterministic_ops"


def deterministic_gpu() -> str:
    """Adds `--xla_gpu_exclude_nondeterministic_ops=true` to XLA_FLAGS unless the user's
    XLA_FLAGS already sets that flag (either way: theirs wins); returns XLA_FLAGS."""
    flags = os.environ.get("XLA_FLAGS", "")
    if DETERMINISM_FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --{DETERMINISM_FLAG}=true".strip()
    return os.environ["XLA_FLAGS"]


def float32_matmuls() -> str:
    """Sets `jax_default_matmul_precision` to "highest" (float32 products on every device)
    unless it is set already (JAX_DEFAULT_MATMUL_PRECISION or the config: theirs wins);
    returns the precision in force."""
    if jax.config.jax_default_matmul_precision is None:
        jax.config.update("jax_default_matmul_precision", "highest")
    return str(jax.config.jax_default_matmul_precision)
