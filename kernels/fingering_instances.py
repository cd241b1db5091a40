"""Random fingering problems (numpy) for the oracle tests and the throughput benchmark.

Geometry follows the scene (`mjx_piano.scene.piano`; a test checks they agree): keyboard along
+y centred on 0, 52 white keys 0.0235 m apart (22.5 mm keys, 1 mm gaps), black keys between
them; key target points are the key box centres raised by half the key height and moved 0.35 of
the half-length toward the player (+x). Fingertips: two hands, palms down, fingers along -x;
fingertips about one white key apart, right hand thumb at low y, left hand mirrored, thumbs a
little nearer the player, all a few centimetres above the keys, with noise.

Two sets:
* 'hands': 1-10 active keys drawn near the two hands (what a playing agent mostly sees).
* 'anywhere': 1-10 active keys drawn uniformly from all 88 keys, hands placed at random:
  long distances, many near-ties between matchings, the harder set for Sinkhorn.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["NUM_KEYS", "NUM_FINGERS", "key_points", "Instances", "make_instances"]

NUM_KEYS = 88
NUM_FINGERS = 10
_WHITE_PITCH = 0.0235  # key width 0.0225 + gap 0.001
_WHITE = (0.15, 0.0225, 0.0225)  # length, width, height (m)
_BLACK = (0.09, 0.01, 0.018)
_BLACK_RAISE = 0.0125
_BLACK_PITCH_CLASSES = (1, 3, 6, 8, 10)
_LOWEST_MIDI = 21
# Fingertip offsets of a right hand (th, ff, mf, rf, lf) from its centre: x, y (m).
_TIP_X = np.array([0.035, 0.0, -0.01, -0.005, 0.012])
_TIP_Y = np.array([-0.05, -0.022, 0.0, 0.022, 0.044])
_TIP_Z = 0.045


def key_points() -> np.ndarray:
    """Target points of the 88 keys at rest, float64 [88, 3] (m)."""
    black = np.array([(k + _LOWEST_MIDI) % 12 in _BLACK_PITCH_CLASSES for k in range(NUM_KEYS)])
    white_index = np.cumsum(~black) - 1
    num_white = int((~black).sum())
    white_y = (white_index - (num_white - 1) / 2.0) * _WHITE_PITCH
    y = np.where(black, white_y + _WHITE_PITCH / 2.0, white_y)
    length = np.where(black, _BLACK[0], _WHITE[0])
    centre_x = -_WHITE[0] / 2.0 + length / 2.0  # keys hinge at the back, x = -0.075
    top = np.where(black, _WHITE[2] + _BLACK_RAISE, _WHITE[2])
    x = centre_x + 0.35 * length / 2.0
    return np.stack([x, y, top], axis=-1)


@dataclasses.dataclass(frozen=True)
class Instances:
    """A batch of fingering problems.

    Attributes:
        fingertips: float32 [B, 10, 3].
        key_points: float32 [B, 88, 3] (the same keyboard in every row).
        active: bool [B, 88].
    """

    fingertips: np.ndarray
    key_points: np.ndarray
    active: np.ndarray


def _hands(rng: np.random.Generator, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Random fingertips [B, 10, 3] and the two hand centres along y [B, 2] (right, left)."""
    right_y = rng.uniform(-0.25, 0.55, batch)
    left_y = np.maximum(right_y - rng.uniform(0.16, 0.6, batch), -0.58)
    right_y = np.maximum(right_y, left_y + 0.16)
    centre_x = rng.uniform(-0.02, 0.05, (batch, 2))
    tips = np.empty((batch, NUM_FINGERS, 3))
    for side, (centre_y, mirror) in enumerate(((right_y, 1.0), (left_y, -1.0))):
        block = slice(5 * side, 5 * side + 5)
        tips[:, block, 0] = centre_x[:, side, None] + _TIP_X + rng.normal(0, 0.01, (batch, 5))
        tips[:, block, 1] = (
            centre_y[:, None] + mirror * _TIP_Y + rng.normal(0, 0.006, (batch, 5))
        )
        tips[:, block, 2] = _TIP_Z + rng.normal(0, 0.012, (batch, 5))
    return tips, np.stack([right_y, left_y], axis=-1)


def make_instances(
    kind: str, batch: int, seed: int = 0, num_active: int | None = None
) -> Instances:
    """Random problems of one set.

    Args:
        kind: 'hands' (keys near the hands) or 'anywhere' (keys anywhere on the keyboard).
        batch: number of problems B.
        seed: numpy seed.
        num_active: fixed number of active keys (0..88); default uniform in 1..10.

    Returns:
        The `Instances`.
    """
    if kind not in ("hands", "anywhere"):
        raise ValueError(f"kind must be 'hands' or 'anywhere', got {kind!r}")
    rng = np.random.default_rng(seed)
    points = key_points()
    tips, centres = _hands(rng, batch)
    active = np.zeros((batch, NUM_KEYS), bool)
    for b in range(batch):
        n = rng.integers(1, NUM_FINGERS + 1) if num_active is None else num_active
        if kind == "hands":
            near = np.min(np.abs(points[:, 1, None] - centres[b][None, :]), axis=1)
            candidates = np.flatnonzero(near < 0.09)
            if len(candidates) < n:
                candidates = np.argsort(near)[: max(n, NUM_FINGERS)]
        else:
            candidates = np.arange(NUM_KEYS)
        active[b, rng.choice(candidates, size=n, replace=False)] = True
    return Instances(
        fingertips=tips.astype(np.float32),
        key_points=np.broadcast_to(points, (batch, NUM_KEYS, 3)).astype(np.float32),
        active=active,
    )
