"""dm_control-style `tolerance` shaping in pure jnp.

`tolerance(x, bounds, margin)` is 1 inside `bounds` and decays with the distance outside them,
reaching `value_at_margin` (0.1 by default) one `margin` away. Only the sigmoids the piano task
uses are provided: 'gaussian' (every RoboPianist / RP1M reward term) and 'linear'.

The gaussian is exp(-0.5 * (x * s)^2) in x = distance / margin, with s = sqrt(-2 ln v) so that
x = 1 gives v; a `margin` of 0 makes the result the indicator of the bounds.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["tolerance", "gaussian_scale"]


def gaussian_scale(value_at_margin: float = 0.1) -> float:
    """The scale s = sqrt(-2 ln v) of the gaussian sigmoid (2.1460 for v = 0.1).

    Args:
        value_at_margin: value of the sigmoid at x = 1, in (0, 1).

    Returns:
        s such that exp(-0.5 * s^2) == value_at_margin.
    """
    if not 0.0 < value_at_margin < 1.0:
        raise ValueError(f"value_at_margin must be in (0, 1), got {value_at_margin}")
    return math.sqrt(-2.0 * math.log(value_at_margin))


def _sigmoid(x: jax.Array, value_at_margin: float, sigmoid: str) -> jax.Array:
    """The decay in x = distance / margin >= 0: 1 at x = 0, `value_at_margin` at x = 1."""
    if sigmoid == "gaussian":
        scale = gaussian_scale(value_at_margin)
        return jnp.exp(-0.5 * (x * scale) ** 2)
    if sigmoid == "linear":
        scaled = x * (1.0 - value_at_margin)
        return jnp.where(jnp.abs(scaled) < 1.0, 1.0 - scaled, 0.0)
    raise ValueError(f"sigmoid must be 'gaussian' or 'linear', got {sigmoid!r}")


def tolerance(
    x: jax.Array,
    bounds: tuple[float, float] = (0.0, 0.0),
    margin: float = 0.0,
    sigmoid: str = "gaussian",
    value_at_margin: float = 0.1,
) -> jax.Array:
    """1 where `x` lies inside `bounds`, smoothly decaying outside (elementwise).

    Same semantics as `dm_control.utils.rewards.tolerance` for the supported sigmoids.
    `bounds`, `margin`, `sigmoid` and `value_at_margin` are static Python values.

    Args:
        x: values, float [...].
        bounds: (lower, upper) with lower <= upper; inside them the result is exactly 1.
        margin: >= 0; the distance outside the bounds at which the result equals
            `value_at_margin`. With 0 the result is 1 inside the bounds and 0 outside.
        sigmoid: 'gaussian' or 'linear'.
        value_at_margin: value at one margin outside the bounds, in (0, 1).

    Returns:
        float [...] (dtype of `x`, at least float32) in [0, 1].

    Raises:
        ValueError: on lower > upper, a negative margin or an unknown sigmoid.
    """
    lower, upper = bounds
    if lower > upper:
        raise ValueError(f"lower bound {lower} > upper bound {upper}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    in_bounds = (x >= lower) & (x <= upper)
    if margin == 0:
        return jnp.where(in_bounds, 1.0, 0.0).astype(x.dtype)
    outside = jnp.where(x < lower, lower - x, x - upper) / margin
    # Inside the bounds `outside` is <= 0; clamp so the sigmoid never sees it (no 0/0 either).
    value = _sigmoid(jnp.maximum(outside, 0.0), value_at_margin, sigmoid)
    return jnp.where(in_bounds, 1.0, value).astype(x.dtype)
