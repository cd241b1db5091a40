"""Where each hand goes: split the coming keys between the hands and centre each hand on its own.

The hands hang on forearm slides along the keyboard (y). Over a window of coming goal rows,
the keys to play are split at one point of the keyboard: the left hand takes the keys below
it, the right hand those above. Every split point between two neighbouring keys is scored (all
at once, `vmap`-free masked reductions over [C candidates, K keys]) by how far each side's keys
spread beyond one hand's reach and how far the hands would travel; the cheapest wins. Each
hand then centres its reach on its keys, and the two hands are kept at least
`min_separation` apart so that the forearms never touch and the hands never cross (a hand
with no keys makes way for the other).

A hand whose keys sound together wider than `Placement.wide_span` (an octave chord) plays
them from its wide pose: the wrist turned toward the little finger (the IK pianist holds it
there), which swings the fingers up the keyboard past the thumb; its slide is centred for
that pose (`Placement.wide_centre`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

# Fingertips relative to the right forearm's slide position (y, m): th, ff, mf, rf, lf span
# -0.103 .. +0.033 at rest, so the middle of the hand's reach lies 0.035 below its slide
# position (above it for the mirrored left hand).
REACH_CENTRE = 0.021
REACH = 0.14  # m of keyboard one hand covers without moving (thumb to little finger, spread)
TRAVEL_COST = 0.2  # per m the hands travel, against per m of keys out of reach


@dataclasses.dataclass(frozen=True)
class Placement:
    """Static geometry of the hand placement.

    Attributes:
        key_y: y of every key's target point, float32 [K].
        start_y: the forearms' slide origins (left, right), float32 [2].
        low, high: slide ranges (left, right), float32 [2] each, relative to `start_y`.
        min_separation: closest the two slide positions may come (m).
        wide_span: a hand takes its wide pose for keys sounding together farther apart than
            this along the keyboard (m); inf never.
        wide_centre: the wide pose's `REACH_CENTRE` (m; negative: the reach's middle lies
            above the right hand's slide).
    """

    key_y: np.ndarray
    start_y: np.ndarray
    low: np.ndarray
    high: np.ndarray
    min_separation: float
    wide_span: float = float("inf")
    wide_centre: float = REACH_CENTRE


def _split_candidates(key_y: np.ndarray) -> np.ndarray:
    """Split points: below every key, between each two neighbours, above every key [K + 1]."""
    ys = np.sort(key_y)
    return np.concatenate([[ys[0] - 1.0], (ys[1:] + ys[:-1]) / 2, [ys[-1] + 1.0]])


def place_hands(placement: Placement, rows: jax.Array, current: jax.Array
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The slide positions that cover the coming keys, which keys each hand plays, and which
    hands take their wide pose.

    Args:
        placement: static geometry.
        rows: bool [R, K], the coming goal rows (keys sounding at each step).
        current: float [2], the slides' positions now (left, right), relative to `start_y`.

    Returns:
        (target float32 [2] slide positions relative to `start_y`, clipped to their ranges;
        right_hand bool [K]: keys of the right hand, the others being the left hand's;
        wide bool [2] (left, right): the hand has keys sounding together farther apart than
        `placement.wide_span` in some row, and its slide is placed for its wide pose).
    """
    key_y = jnp.asarray(placement.key_y)
    start = jnp.asarray(placement.start_y)
    now = current + start  # absolute slide positions
    window = jnp.any(rows, axis=0)
    cuts = jnp.asarray(_split_candidates(placement.key_y))  # [C]
    right = key_y[None, :] > cuts[:, None]  # [C, K]
    sides = jnp.stack([window[None] & ~right, window[None] & right])  # [2 hands, C, K]
    lo, hi = _extent(sides, key_y)  # [2, C]
    empty = ~jnp.any(sides, axis=-1)
    mirror = jnp.array([-1.0, 1.0])[:, None]  # the left hand is mirrored
    wanted = jnp.where(empty, now[:, None], (lo + hi) / 2 + REACH_CENTRE * mirror)
    spread = jnp.where(empty, 0.0, jnp.maximum(hi - lo - REACH, 0.0))
    cost = jnp.sum(spread + TRAVEL_COST * jnp.abs(wanted - now[:, None]), axis=0)  # [C]
    best = jnp.argmin(cost)
    chosen = right[best]
    # Chords: each hand's keys in each row [2, R, K].
    chords = rows[None] & jnp.stack([~chosen, chosen])[:, None]
    row_lo, row_hi = _extent(chords, key_y)
    wide = jnp.any(row_hi - row_lo > placement.wide_span, axis=-1)  # [2]
    centre = (lo + hi)[:, best] / 2 + placement.wide_centre * mirror[:, 0]
    target = jnp.where(wide, centre, wanted[:, best])
    target = _separate(target, placement.min_separation, empty[:, best])
    target = jnp.clip(target - start, placement.low, placement.high)
    return target.astype(jnp.float32), chosen, wide


def _extent(keys: jax.Array, key_y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Lowest and highest y of the keys set in `keys` bool [..., K] (+10 / -10 m for none)."""
    big = 10.0
    return (jnp.min(jnp.where(keys, key_y, big), axis=-1),
            jnp.max(jnp.where(keys, key_y, -big), axis=-1))


def _separate(target: jax.Array, min_separation: float, idle: jax.Array) -> jax.Array:
    """Pushes (left, right) apart until right - left >= min_separation: a hand with no keys
    (`idle` bool [2]) makes way for the other, else both move by half."""
    gap = target[1] - target[0]
    push = jnp.maximum(min_separation - gap, 0.0)
    left_share = jnp.where(idle[0] == idle[1], 0.5, jnp.where(idle[0], 1.0, 0.0))
    return target + jnp.array([-push * left_share, push * (1.0 - left_share)])
