"""Exact linear assignment for small square problems, in pure JAX.

The Hungarian method in its shortest-augmenting-path form (Kuhn-Munkres with dual potentials,
as in Jonker & Volgenant): rows are inserted one at a time; each insertion grows a Dijkstra
tree over the columns in reduced costs until it reaches a free column, then augments along the
tree path. Every loop has a static bound (n rows, at most n tree steps, at most n path steps),
so the solver jits, vmaps and never runs away on bad input; the tree and path loops are
`lax.while_loop`s that also stop early once the work is done.

O(n^3) per problem with n^2 sequential steps of O(n) vector work: meant for n ~ 10 (the
fingering problem), batched by `vmap`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["linear_sum_assignment", "assignment_cost"]


def _dijkstra_step(carry: dict, cost: jax.Array) -> dict:
    """One tree step: scan the unused columns from column j0, settle the nearest one.

    Index 0 of the column arrays is the virtual column holding the row being inserted;
    `row_of[j]` is the row (1-based, 0 = none) matched to column j.
    """
    used = carry["used"].at[carry["j0"]].set(True)
    i0 = carry["row_of"][carry["j0"]]
    u, v = carry["u"], carry["v"]
    # Reduced costs of row i0 against every real column (1..n) and the virtual one (never picked).
    reduced = jnp.concatenate([jnp.zeros((1,), cost.dtype), cost[i0 - 1]]) - u[i0] - v
    better = (~used) & (reduced < carry["minv"])
    minv = jnp.where(better, reduced, carry["minv"])
    way = jnp.where(better, carry["j0"], carry["way"])
    candidates = jnp.where(used, jnp.inf, minv)
    j1 = jnp.argmin(candidates)
    delta = candidates[j1]
    # A non-finite delta only happens on non-finite input: stop rather than spread NaN.
    delta = jnp.where(jnp.isfinite(delta), delta, 0.0)
    u = u.at[carry["row_of"]].add(jnp.where(used, delta, 0.0))
    v = jnp.where(used, v - delta, v)
    minv = jnp.where(used, minv, minv - delta)
    return dict(carry, used=used, u=u, v=v, minv=minv, way=way, j0=j1, steps=carry["steps"] + 1)


def _insert_row(row: jax.Array, state: tuple, cost: jax.Array) -> tuple:
    """Insert 1-based `row` into the matching: grow the tree, then augment along its path."""
    u, v, row_of, way = state
    n = cost.shape[0]
    row_of = row_of.at[0].set(row)
    carry = dict(
        u=u,
        v=v,
        row_of=row_of,
        way=way,
        used=jnp.zeros((n + 1,), bool),
        minv=jnp.full((n + 1,), jnp.inf, cost.dtype),
        j0=jnp.zeros((), jnp.int32),
        steps=jnp.zeros((), jnp.int32),
    )

    def grow(c: dict) -> bool:
        return (c["steps"] == 0) | ((c["row_of"][c["j0"]] != 0) & (c["steps"] <= n))

    carry = jax.lax.while_loop(grow, lambda c: _dijkstra_step(c, cost), carry)
    way = carry["way"]

    def augment(c: tuple) -> tuple:
        j0, row_of, steps = c
        j1 = way[j0]
        return j1, row_of.at[j0].set(row_of[j1]), steps + 1

    def walking(c: tuple) -> bool:
        return (c[0] != 0) & (c[2] <= n)

    _, row_of, _ = jax.lax.while_loop(
        walking, augment, (carry["j0"], carry["row_of"], jnp.zeros((), jnp.int32))
    )
    return carry["u"], carry["v"], row_of, way


def linear_sum_assignment(cost: jax.Array) -> jax.Array:
    """Minimum-cost perfect matching of a square cost matrix.

    Same optimum as `scipy.optimize.linear_sum_assignment(cost)` (ties may be broken
    differently). Unbatched; `vmap` it for a batch. Non-finite costs never raise or hang: the
    result is then still a permutation, just not meaningful.

    Args:
        cost: float [n, n], finite; float32 is exact up to rounding (differences between
            matchings below ~1e-6 relative may be resolved either way).

    Returns:
        int32 [n]: `col[r]`, the column matched to row r (a permutation of 0..n-1).
    """
    if cost.ndim != 2 or cost.shape[0] != cost.shape[1]:
        raise ValueError(f"cost must be square [n, n], got {cost.shape}")
    n = cost.shape[0]
    cost = jnp.asarray(cost)
    if not jnp.issubdtype(cost.dtype, jnp.floating):
        cost = cost.astype(jnp.float32)
    # Shift so the smallest entry is 0: the potentials stay small, rounding stays relative.
    cost = cost - jnp.min(jnp.where(jnp.isfinite(cost), cost, jnp.inf))
    cost = jnp.where(jnp.isfinite(cost), cost, 0.0)
    state = (
        jnp.zeros((n + 1,), cost.dtype),  # u: row potentials (index 0 unused)
        jnp.zeros((n + 1,), cost.dtype),  # v: column potentials (index 0: virtual column)
        jnp.zeros((n + 1,), jnp.int32),  # row_of: 1-based row matched to each column
        jnp.zeros((n + 1,), jnp.int32),  # way: tree predecessor of each column
    )
    state = jax.lax.fori_loop(1, n + 1, lambda r, s: _insert_row(r, s, cost), state)
    row_of = state[2][1:] - 1  # column j (0-based) -> row
    # row_of is a permutation when all went well; invert it by scatter.
    col = jnp.zeros((n,), jnp.int32).at[jnp.clip(row_of, 0, n - 1)].set(
        jnp.arange(n, dtype=jnp.int32)
    )
    return col


def assignment_cost(cost: jax.Array, col: jax.Array) -> jax.Array:
    """Total cost sum_r cost[r, col[r]] of a matching; float [n, n], int [n] -> float []."""
    return jnp.sum(jnp.take_along_axis(cost, col[:, None], axis=1))
