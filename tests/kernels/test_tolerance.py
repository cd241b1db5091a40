"""`kernels.tolerance` against numbers worked out by hand.

With the gaussian sigmoid and value 0.1 at the margin, exp(-0.5 (x s)^2) with
s^2 = -2 ln 0.1 equals 0.1 ** (x^2): at half a margin 0.1 ** 0.25 = 0.5623413, at two margins
0.1 ** 4 = 1e-4, at 1.5 margins 0.1 ** 2.25 = 0.0056234.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kernels.tolerance import gaussian_scale, tolerance

# Fingering reward shaping: bounds (0, 0.01) m, margin 0.1 m.
FINGER_CASES = [
    (0.0, 1.0),  # on the key
    (0.005, 1.0),  # inside the bounds
    (0.01, 1.0),  # on the upper bound
    (0.06, 0.5623413),  # half a margin out: 0.1 ** 0.25
    (0.11, 0.1),  # one margin out
    (0.16, 0.0056234),  # 1.5 margins out: 0.1 ** 2.25
    (0.21, 1e-4),  # two margins out: 0.1 ** 4
    (-0.05, 0.5623413),  # below the lower bound by half a margin
]


def test_gaussian_scale_by_hand():
    assert gaussian_scale(0.1) == pytest.approx(2.1459660, abs=1e-6)
    assert math.exp(-0.5 * gaussian_scale(0.1) ** 2) == pytest.approx(0.1)


@pytest.mark.parametrize("x, expected", FINGER_CASES)
def test_fingering_shape_by_hand(x, expected):
    value = float(tolerance(jnp.float32(x), bounds=(0.0, 0.01), margin=0.1))
    assert value == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_key_press_shape_by_hand():
    # bounds (0, 0.05), margin 0.5: 0.3 and -0.25 are half a margin out, 0.55 one margin.
    x = jnp.array([0.0, 0.05, 0.3, 0.55, -0.25, 1.0], jnp.float32)
    got = np.asarray(tolerance(x, bounds=(0.0, 0.05), margin=0.5))
    expected = [1.0, 1.0, 0.1 ** 0.25, 0.1, 0.1 ** 0.25, 0.1 ** (0.95 / 0.5) ** 2]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_linear_sigmoid_by_hand():
    # 1 - x * (1 - 0.1): half a margin out 0.55, one margin out 0.1, beyond 1/0.9 margins 0.
    x = jnp.array([0.5, 1.5, 2.0, 3.0], jnp.float32)
    got = np.asarray(tolerance(x, bounds=(0.0, 1.0), margin=2.0, sigmoid="linear"))
    np.testing.assert_allclose(got, [1.0, 0.775, 0.55, 0.1], rtol=1e-6)
    far = float(tolerance(jnp.float32(4.0), bounds=(0.0, 1.0), margin=1.0, sigmoid="linear"))
    assert far == 0.0


def test_zero_margin_is_indicator():
    x = jnp.array([-0.1, 0.0, 0.5, 1.0, 1.1], jnp.float32)
    got = np.asarray(tolerance(x, bounds=(0.0, 1.0), margin=0.0))
    np.testing.assert_array_equal(got, [0.0, 1.0, 1.0, 1.0, 0.0])


def test_jit_vmap_shape_dtype_and_no_nan():
    x = jnp.linspace(-10.0, 10.0, 101).reshape(1, 101)
    f = jax.jit(jax.vmap(lambda v: tolerance(v, bounds=(0.0, 0.01), margin=0.1)))
    out = f(x)
    assert out.shape == (1, 101) and out.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(out))) and bool(jnp.all((out >= 0) & (out <= 1)))
    grad = jax.grad(lambda v: tolerance(v, bounds=(0.0, 0.01), margin=0.1))(jnp.float32(0.005))
    assert float(grad) == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError):
        tolerance(jnp.float32(0.0), bounds=(1.0, 0.0), margin=0.1)
    with pytest.raises(ValueError):
        tolerance(jnp.float32(0.0), bounds=(0.0, 1.0), margin=-0.1)
    with pytest.raises(ValueError):
        tolerance(jnp.float32(2.0), bounds=(0.0, 1.0), margin=0.1, sigmoid="cosine")
