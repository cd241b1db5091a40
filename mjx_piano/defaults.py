"""The choices and defaults that several layers share, written once (no imports, cheap).

The scene builder, the env, the training configs, the command lines and the benches all read
them from here, so a default cannot drift between two copies.
"""

from __future__ import annotations

# Who moves the keys: 'mjx' (hinge joints in the MJX solver) or 'kernel' (`kernels.piano_keys`).
KEY_DYNAMICS = ("mjx", "kernel")
# MJX backends: 'jax' (any device) or 'warp' (MJX-Warp, NVIDIA GPUs; slowly on CPU).
IMPLS = ("jax", "warp")

# MJX constraint solver per physics step: iterations, line-search iterations, tolerance
# (MuJoCo's `opt.tolerance` default).
SOLVER_ITERATIONS = 4
LS_ITERATIONS = 8
SOLVER_TOLERANCE = 1e-8
# With kernel keys, the fastest (solver, line-search) iterations that keep parity with MuJoCo C
# and stay stable under exploration (`bench/levers.py`, `bench/RESULTS.md`): the setting of the
# learning ladder, the GPU suite and the IK bench.
KERNEL_KEYS_SOLVER = (2, 4)
