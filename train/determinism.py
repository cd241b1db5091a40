"""Deterministic XLA:GPU programs for the ILC search, which compares replays of one table.

The segment search (`train/ilc_segments.py`) keeps a candidate when its replay from an anchor
beats the current table's, and moves the anchors along the evaluation's path; that holds only
if a program gives the same result for the same input. On the CPU it does (`bench
ilc-parity`, `tests/train/test_ilc.py`). On an H200 (2026-12-04, `bench/RESULTS.md`) it did
not: the IK pianist's whole-clip rollout of the same zero tables, the same compiled program,
scored F1 0.712 to 0.752 on one clip from one evaluation to the next. The likely cause:
XLA:GPU's scatters (MJX sums forces and contacts with them) add in the order their atomics
land.
`--xla_gpu_exclude_nondeterministic_ops` makes XLA pick deterministic implementations
(XLA's determinism notes: scatters, GEMMs, convolutions; slower, and it refuses
select-and-scatter, which MJX does not use). XLA reads XLA_FLAGS when its first backend
starts, so `deterministic_gpu()` must run before any computation of the process; the CPU
ignores the flag.
"""

from __future__ import annotations

import os

DETERMINISM_FLAG = "xla_gpu_exclude_nondeterministic_ops"


def deterministic_gpu() -> str:
    """Adds `--xla_gpu_exclude_nondeterministic_ops=true` to XLA_FLAGS unless the user's
    XLA_FLAGS already sets that flag (either way: theirs wins); returns XLA_FLAGS."""
    flags = os.environ.get("XLA_FLAGS", "")
    if DETERMINISM_FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --{DETERMINISM_FLAG}=true".strip()
    return os.environ["XLA_FLAGS"]
