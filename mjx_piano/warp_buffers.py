"""Buffer sizes for MJX's Warp backend (`impl='warp'`), and a check that they held.

MJX-Warp preallocates two buffers that MJX-JAX does not have, and drops what does not fit:
- contacts: `naconmax` slots shared by every env of a batch (the number of worlds is not known
  when the data is made). MJX's default for one `put_data` is 48 slots in all, which a batch of
  two-hand piano envs overflows at once.
- constraint rows: `njmax` per env. MJX's default for this scene is 64 rows; the hinged-key scene
  needs up to ~160 (88 key limits, hand limits, 4 rows per pyramidal contact) under the hand
  script in MuJoCo C, so the default silently drops key limits and contacts.

A dropped contact or row is not an error in MJX-Warp: it prints a warning and steps on with
wrong physics. `constraint_rows` sizes the rows for every limit active at once; `overflowed` reads
the flags that say whether a step dropped anything, so benches can refuse figures from such runs.
This module imports nothing from Warp: it works on machines without it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
from mujoco import mjx

# Contact slots per env when `EnvConfig.naconmax` is left to `EnvConfig.for_batch`. Hinged keys:
# MuJoCo C peaks at 20 contacts under the hand script and random actions (`bench/levers.py`);
# Warp does not cull fingertip-key pairs as MJX-JAX does. Kernel keys: the MJX model's only
# contacts are between the two forearms (box-box, 4 seen in C, 8 at most).
CONTACTS_PER_ENV = {"mjx": 48, "kernel": 16}

# MuJoCo Warp's `OverflowType` bits for full buffers (NEFC, NJMAX_NNZ, BROADPHASE, NARROWPHASE,
# CCD, NVMAX, EPA_HORIZON), written out so that this module needs no Warp. The solver's
# iteration-limit bits are left out: hitting the limit is what a short solver budget means.
CAPACITY_OVERFLOW_BITS = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 7) | (1 << 8)


def contact_slots(key_dynamics: str, envs: int) -> int:
    """`naconmax` for `envs` envs stepped in one call: `CONTACTS_PER_ENV[key_dynamics]` each.

    Args:
        key_dynamics: 'mjx' (hinged keys) or 'kernel' (`SceneConfig.key_dynamics`).
        envs: envs that share the buffer (every env of the batch, over all agents).
    """
    return CONTACTS_PER_ENV[key_dynamics] * envs


def constraint_rows(model: mujoco.MjModel, contacts_per_env: int) -> int:
    """Constraint rows per env (`njmax`) that hold every limit and `contacts_per_env` contacts.

    Rows: one per limited joint and limited tendon, the rows of each equality constraint (6 at
    most), and per contact 2 (condim - 1) rows under the pyramidal cone (condim under the
    elliptic one), for the largest condim of the model. Rounded up to a multiple of 16.
    """
    limits = int(model.jnt_limited.sum()) + int(model.tendon_limited.sum()) + 6 * model.neq
    condim = int(model.geom_condim.max()) if model.ngeom else 1
    pyramidal = model.opt.cone == mujoco.mjtCone.mjCONE_PYRAMIDAL
    per_contact = 2 * (condim - 1) if pyramidal and condim > 1 else condim
    rows = limits + per_contact * contacts_per_env
    return -(-rows // 16) * 16


def quiet_model(model: mjx.Model) -> mjx.Model:
    """`model` (impl='warp') printing only capacity overflows, not solver iteration limits.

    MJX-Warp prints a line from every env at every physics step that ends on the iteration
    limit; with 1-4 solver iterations that is most steps, and the printing floods the log and
    slows the step. Other backends are returned unchanged.
    """
    options = getattr(model.opt, "_impl", None)
    if options is None or not hasattr(options, "warn_overflow"):
        return model
    return model.replace(opt=model.opt.replace(
        _impl=options.replace(warn_overflow=CAPACITY_OVERFLOW_BITS)))


def overflowed(data: mjx.Data) -> jax.Array:
    """bool [] per env: Warp dropped contacts or constraint rows (always False for impl='jax').

    The capacity flags stay set until the env resets (its data is then the fresh initial data);
    the contact count is that of the last physics step (Warp counts every contact it finds,
    kept or not, so a count above `naconmax` means some were dropped).
    """
    impl = getattr(data, "_impl", None)
    if impl is None or not hasattr(impl, "overflow"):
        return jnp.zeros((), bool)
    flags = (jnp.asarray(impl.overflow) & CAPACITY_OVERFLOW_BITS) != 0
    return jnp.any(flags) | jnp.any(jnp.asarray(impl.nacon) > impl.naconmax)
