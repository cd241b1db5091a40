"""Which fingertip holds which pressed key: the IK pianist keeps a held key on its finger.

A key is held by the lowest fingertip resting on it: within a box around the key's target
point (along the key and along the keyboard) while the key is down. Only one fingertip holds
a key. In the IK pianist's wide pose (an octave) the ring and little fingertips lie ~1.5 cm
apart, both within the little finger's key's box; with both counted as holders the fingering
tied between them, gave the key to the ring finger every few steps and lifted the little
finger off it (it held G5 in 29% of the steps of `tests/sim/test_ik_pianist.py`'s octaves,
against all of them with one holder). The lowest fingertip is the one pushing the key down;
the nearest along the keyboard scored about the same (`bench/RESULTS.md`, 2026-12-06).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def key_holders(key_points: jax.Array, tips: jax.Array, pressed: jax.Array,
                box: tuple[float, float]) -> jax.Array:
    """bool [K, F]: fingertip f holds key k.

    Args:
        key_points: float [K, 3], the keys' target points (m).
        tips: float [F, 3], the fingertips' IK points (m).
        pressed: bool [K], keys down now.
        box: (along the key, along the keyboard) half-widths (m) of the box around a key's
            target point a holding fingertip lies in.

    Returns:
        bool [K, F], at most one True per key (none for a key that is up or has no
        fingertip in its box).
    """
    offset = jnp.abs(key_points[:, None, :2] - tips[None, :, :2])  # [K, F, 2]
    near = (offset[..., 0] < box[0]) & (offset[..., 1] < box[1])
    lowest = jnp.argmin(jnp.where(near, tips[None, :, 2], jnp.inf), axis=1)  # [K]
    return pressed[:, None] & near & (jnp.arange(tips.shape[0]) == lowest[:, None])
