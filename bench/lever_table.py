"""The fast-path levers' names and settings (data only: the CLI lists them without importing
MJX). `bench/levers.py` measures them."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Lever:
    """One configuration of the fast path.

    Attributes:
        name: short name (the table's row).
        scene: `SceneConfig` fields to change.
        env: `EnvConfig` fields to change (e.g. Warp's `njmax`, constraint rows per env).
        contacts_per_env: Warp's contact capacity per env; the env gets `naconmax` = this
            times the batch (MJX's `naconmax` counts the contacts of all envs together).
        matmul_precision: `jax.default_matmul_precision` while compiling, or None (default).
        impls: the MJX backends the lever applies to.
        note: what it changes.
    """

    name: str
    scene: dict[str, Any] = dataclasses.field(default_factory=dict)
    env: dict[str, Any] = dataclasses.field(default_factory=dict)
    contacts_per_env: int | None = None
    matmul_precision: str | None = None
    impls: tuple[str, ...] = ("jax", "warp")
    note: str = ""


_KERNEL = {"key_dynamics": "kernel"}
LEVERS: tuple[Lever, ...] = (
    Lever("reference", note="88 key joints in the MJX solver; 4 solver / 8 line-search "
                            "iterations; 40 contact pairs; implicitfast"),
    Lever("contact-pairs-20", {"max_contact_pairs": 20},
          note="MJX culling to 20 fingertip-key pairs"),
    Lever("contact-pairs-8", {"max_contact_pairs": 8}, note="MJX culling to 8 fingertip-key pairs"),
    Lever("solver-2", {"solver_iterations": 2, "ls_iterations": 4},
          note="2 solver / 4 line-search iterations"),
    Lever("tolerance-1e-3", {"solver_tolerance": 1e-3},
          note="solver stops early at tolerance 1e-3 (MuJoCo's default: 1e-8)"),
    Lever("euler", {"integrator": "euler"}, note="semi-implicit Euler integrator"),
    Lever("kernel", _KERNEL, note="keys stepped by kernels.piano_keys (nv 134 -> 46)"),
    Lever("kernel+solver-2", {**_KERNEL, "solver_iterations": 2, "ls_iterations": 4},
          note="kernel keys, 2 solver / 4 line-search iterations"),
    Lever("kernel+solver-1", {**_KERNEL, "solver_iterations": 1, "ls_iterations": 2},
          note="kernel keys, 1 solver / 2 line-search iterations"),
    Lever("kernel+tolerance-1e-3", {**_KERNEL, "solver_tolerance": 1e-3},
          note="kernel keys, solver stops early at tolerance 1e-3"),
    Lever("kernel+euler", {**_KERNEL, "integrator": "euler"},
          note="kernel keys, semi-implicit Euler"),
    Lever("kernel+matmul-highest", _KERNEL, matmul_precision="highest",
          note="kernel keys, full-precision float32 matmuls"),
    Lever("kernel+matmul-tf32", _KERNEL, matmul_precision="tensorfloat32",
          note="kernel keys, TF32 matmuls (tensor cores)"),
    # The kernel scene's only MJX contacts are forearm-forearm (box-box: up to 8 points); its
    # constraint rows: 46 joint limits, tendon limits and those contacts (62 in MJX-JAX).
    Lever("kernel+warp-capacity", _KERNEL, env={"njmax": 64}, contacts_per_env=8,
          impls=("warp",),
          note="kernel keys, Warp sized to the kernel scene's contacts and constraint rows"),
    # What MJX-Warp gives without sizes (one `put_data`): 48 contacts for the whole batch and
    # 64 rows per env, fewer than the key limits and contacts need. Kept to show the cost.
    Lever("warp-mjx-defaults", env={"naconmax": 48, "njmax": 64}, impls=("warp",),
          note="MJX-Warp's default capacities: 48 contacts in all, 64 rows per env"),
)
LEVER_NAMES = tuple(lever.name for lever in LEVERS)



def lever_by_name(name: str) -> Lever:
    """The lever called `name`. Raises ValueError naming the known levers."""
    for lever in LEVERS:
        if lever.name == name:
            return lever
    raise ValueError(f"unknown lever {name!r}; choose from {list(LEVER_NAMES)}")
