"""Optimal-transport fingering (RP1M) as a pure, jittable, vmappable function of one env.

At every control step the active keys (those the goal says are down) are assigned to the F
fingertips (10: right hand th, ff, mf, rf, lf, then the left hand's) so that each active key
gets exactly one finger, each finger at most one key, and the total fingertip-to-key
Euclidean distance is minimal. The fingering reward is the mean over the assigned pairs of
tolerance(d, bounds=(0, 0.01), margin=0.1, gaussian), and 1 when no key is active.

Compression. At most F keys can be fingered, so the K (88) keys are first reduced to F slots
with `lax.top_k`: the solvers then work on an [F, F] problem whatever K is. When n <= F keys
are active, the slots hold exactly the active keys (the rest are inactive slots that carry no
mass and get no finger).

Infeasible steps (n > F active keys). Rule: the F active keys nearest to any fingertip
(smallest distance to their closest fingertip; ties by key index) are kept, assigned
optimally, and the other active keys stay unassigned (-1); the reward is the mean over the F
assigned pairs. This never fails and never gives NaN. It is not always the rectangular
optimum over all n keys (scipy's `linear_sum_assignment` on [n, F]); more than 10 goal keys
at once is rare in the repertoire and the assigned fingers still go to the nearest keys.

Solvers (`FingeringConfig.solver`, static):
* 'exact': the Hungarian method in pure JAX (`kernels.exact_assignment`), the reference.
* 'sinkhorn': annealed ott-jax Sinkhorn, greedy rounding and local refinement
  (`kernels.sinkhorn_fingering`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from kernels import exact_assignment, sinkhorn_fingering
from kernels.tolerance import tolerance

__all__ = [
    "FingeringConfig",
    "CompressedProblem",
    "compress",
    "assign",
    "fingering_reward",
    "assignment_distance",
]

_SOLVERS = ("exact", "sinkhorn")


@dataclasses.dataclass(frozen=True)
class FingeringConfig:
    """Static configuration of the fingering kernel (frozen, hashable: static under jit).

    Attributes:
        solver: 'exact' (Hungarian, the reference) or 'sinkhorn' (annealed OT + rounding).
        epsilon: final Sinkhorn regularisation, absolute (m).
        epsilon_init: initial Sinkhorn regularisation (m), decayed geometrically to `epsilon`.
        iterations: Sinkhorn iterations (fixed count).
        anneal_iterations: iterations spent annealing epsilon (<= `iterations`).
        refine_passes: local-improvement passes after rounding the plan (0 = none).
        three_cycles: whether refinement also tries 3-rotations among fingers.
        bounds: tolerance bounds on the fingertip-to-key distance (m).
        margin: tolerance margin (m); the reward of a pair is 0.1 at `bounds[1] + margin`.
    """

    solver: str = "exact"
    epsilon: float = 1e-3
    epsilon_init: float = 0.1
    iterations: int = 200
    anneal_iterations: int = 150
    refine_passes: int = 4
    three_cycles: bool = True
    bounds: tuple[float, float] = (0.0, 0.01)
    margin: float = 0.1

    def __post_init__(self) -> None:
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}, got {self.solver!r}")
        self.sinkhorn_params()  # validates the Sinkhorn fields

    def sinkhorn_params(self) -> sinkhorn_fingering.SinkhornParams:
        """The Sinkhorn subset of the settings."""
        return sinkhorn_fingering.SinkhornParams(
            epsilon=self.epsilon,
            epsilon_init=self.epsilon_init,
            iterations=self.iterations,
            anneal_iterations=self.anneal_iterations,
            refine_passes=self.refine_passes,
            three_cycles=self.three_cycles,
        )


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class CompressedProblem:
    """The fingering problem reduced to F key slots.

    Attributes:
        keys: key index of each slot, int32 [F] (meaningless where inactive).
        active: bool [F], slots holding an active key.
        cost: fingertip-to-key distances, float32 [F slots, F fingers] (m).
    """

    keys: jax.Array
    active: jax.Array
    cost: jax.Array


def _check_shapes(fingertips: jax.Array, key_points: jax.Array, active: jax.Array) -> None:
    if fingertips.ndim != 2 or fingertips.shape[-1] != 3:
        raise ValueError(f"fingertips must be [F, 3], got {fingertips.shape}")
    if key_points.ndim != 2 or key_points.shape[-1] != 3:
        raise ValueError(f"key_points must be [K, 3], got {key_points.shape}")
    if active.shape != key_points.shape[:1]:
        raise ValueError(f"active must be [K] = {key_points.shape[:1]}, got {active.shape}")


def compress(fingertips: jax.Array, key_points: jax.Array, active: jax.Array) -> CompressedProblem:
    """Reduce the K keys to F slots: all active keys, or the F nearest ones when n > F.

    Args:
        fingertips: float [F, 3] (m).
        key_points: float [K, 3] (m).
        active: bool [K].

    Returns:
        The `CompressedProblem` (F slots; F = number of fingertips, needs K >= F).
    """
    _check_shapes(fingertips, key_points, active)
    num_fingers, num_keys = fingertips.shape[0], key_points.shape[0]
    if num_keys < num_fingers:
        raise ValueError(f"need at least as many keys ({num_keys}) as fingertips ({num_fingers})")
    fingertips = fingertips.astype(jnp.float32)
    key_points = key_points.astype(jnp.float32)
    active = active.astype(bool)
    nearest = jnp.min(_distances(key_points, fingertips), axis=1)  # [K]
    nearest = jnp.where(jnp.isfinite(nearest), nearest, jnp.finfo(jnp.float32).max)
    # Active keys first, nearest first; top_k breaks ties by the lower index.
    score = jnp.where(active, -nearest, -jnp.inf)
    _, keys = jax.lax.top_k(score, num_fingers)
    keys = keys.astype(jnp.int32)
    slot_active = active[keys]
    cost = _distances(key_points[keys], fingertips)
    cost = jnp.where(slot_active[:, None], cost, 0.0)
    return CompressedProblem(keys=keys, active=slot_active, cost=cost)


def _distances(points: jax.Array, fingertips: jax.Array) -> jax.Array:
    """Euclidean distances [P, F] between points [P, 3] and fingertips [F, 3]."""
    diff = points[:, None, :] - fingertips[None, :, :]
    # sqrt(x + tiny) keeps the (unused) gradient finite at coincident points.
    return jnp.sqrt(jnp.sum(diff * diff, axis=-1) + 1e-20)


def _solve_slots(problem: CompressedProblem, config: FingeringConfig) -> jax.Array:
    """Finger of each slot, int32 [F] (-1 for inactive slots)."""
    if config.solver == "exact":
        col = exact_assignment.linear_sum_assignment(problem.cost)
        return jnp.where(problem.active, col, -1).astype(jnp.int32)
    return sinkhorn_fingering.solve(problem.cost, problem.active, config.sinkhorn_params())


def _scatter_to_keys(problem: CompressedProblem, finger_of: jax.Array, num_keys: int) -> jax.Array:
    """Per-key finger index [K] from per-slot fingers [F]; -1 for keys without a finger."""
    # top_k indices are distinct, so no two slots write the same key.
    return jnp.full((num_keys,), -1, jnp.int32).at[problem.keys].set(
        jnp.where(problem.active, finger_of, -1)
    )


def assign(
    fingertips: jax.Array, key_points: jax.Array, active: jax.Array, config: FingeringConfig
) -> jax.Array:
    """Assign the active keys to fingertips at minimum total distance (one env, unbatched).

    Args:
        fingertips: fingertip positions, float [F, 3] (m); F = 10 (right th..lf, left th..lf).
        key_points: key target points, float [K, 3] (m); K = 88 for the full piano.
        active: bool [K], keys the goal says are down.
        config: static settings (solver choice).

    Returns:
        int32 [K]: the finger index (0..F-1) assigned to each key, -1 for inactive keys and
        for the active keys left out on an infeasible step (more than F active; see module
        docstring). Each finger appears at most once.
    """
    problem = compress(fingertips, key_points, active)
    finger_of = _solve_slots(problem, config)
    return _scatter_to_keys(problem, finger_of, key_points.shape[0])


def assignment_distance(
    fingertips: jax.Array, key_points: jax.Array, assignment: jax.Array
) -> jax.Array:
    """Fingertip-to-key distance of each assigned key, float32 [K] (0 where unassigned).

    Args:
        fingertips: float [F, 3].
        key_points: float [K, 3].
        assignment: int32 [K] from `assign`.

    Returns:
        float32 [K]; the total assignment cost is its sum.
    """
    tip = fingertips.astype(jnp.float32)[jnp.clip(assignment, 0, fingertips.shape[0] - 1)]
    distance = jnp.linalg.norm(key_points.astype(jnp.float32) - tip, axis=-1)
    return jnp.where(assignment >= 0, distance, 0.0)


def fingering_reward(
    fingertips: jax.Array, key_points: jax.Array, active: jax.Array, config: FingeringConfig
) -> tuple[jax.Array, jax.Array]:
    """RP1M fingering reward of one env and the assignment behind it.

    Args:
        fingertips: float [F, 3] (m).
        key_points: float [K, 3] (m).
        active: bool [K].
        config: static settings.

    Returns:
        (reward, assignment): reward float32 [] in (0, 1], the mean over assigned pairs of
        tolerance(distance, config.bounds, config.margin, gaussian), 1.0 when no key is
        active; assignment int32 [K] as from `assign`.
    """
    problem = compress(fingertips, key_points, active)
    finger_of = _solve_slots(problem, config)
    assigned = finger_of >= 0
    distance = jnp.take_along_axis(problem.cost, jnp.maximum(finger_of, 0)[:, None], axis=1)[:, 0]
    closeness = tolerance(distance, config.bounds, config.margin, sigmoid="gaussian")
    count = jnp.sum(assigned)
    mean = jnp.sum(jnp.where(assigned, closeness, 0.0)) / jnp.maximum(count, 1)
    reward = jnp.where(count > 0, mean, 1.0).astype(jnp.float32)
    return reward, _scatter_to_keys(problem, finger_of, key_points.shape[0])
