"""Entropic OT (ott-jax Sinkhorn) for the compressed fingering problem, rounded to a matching.

The problem handed in is already compressed (see `kernels.fingering`): S key slots (a mask
says which n hold an active key) against F fingertips, S >= F, cost [S, F] in metres.

Balanced formulation: every active slot is a source of mass 1, inactive slots carry mass 0
(no leak), one dummy source row of mass max(F - n, 0) absorbs the fingers left free; every
finger is a sink of capacity 1, and one dummy sink column of mass max(n - F, 0) absorbs the
keys that cannot be fingered when n > F. Both dummies cost 0: their masses are fixed, so the
constant does not change the optimum. Epsilon is absolute (metres) and annealed geometrically
from `epsilon_init` to `epsilon` over the first `anneal_iterations`, then held; the iteration
count is fixed (a `lax.scan` inside ott), so the solver is vmap- and jit-friendly.

The plan is then rounded to a hard matching that respects the constraints (greedy: largest
plan entry first, each slot and finger used once) and polished by a fixed number of local
moves: per pass the best improving 2-exchange (swap the keys of two fingers, or hand a key to
a free finger), 3-rotation among the fingers, or (n > F) swap of a finger's key for an
unfingered active key. A matching no such move improves is optimal in all but rare cases with
longer improving cycles; the tests measure how rare.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from ott.geometry import epsilon_scheduler, geometry
from ott.problems.linear import linear_problem
from ott.solvers.linear import sinkhorn

__all__ = ["SinkhornParams", "sinkhorn_plan", "greedy_round", "local_refine", "solve"]


@dataclasses.dataclass(frozen=True)
class SinkhornParams:
    """Static Sinkhorn settings (hashable).

    Attributes:
        epsilon: final entropic regularisation, absolute, in metres of fingertip distance.
        epsilon_init: starting regularisation (m) of the geometric annealing.
        iterations: Sinkhorn iterations, fixed (each one updates both potentials).
        anneal_iterations: iterations over which epsilon decays from `epsilon_init` to
            `epsilon` (<= `iterations`; the rest run at `epsilon`).
        refine_passes: local-improvement passes after rounding (0 = raw greedy rounding).
        three_cycles: whether the refinement also tries 3-rotations (F^3 candidates).
    """

    epsilon: float = 1e-3
    epsilon_init: float = 0.1
    iterations: int = 100
    anneal_iterations: int = 80
    refine_passes: int = 4
    three_cycles: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.epsilon <= self.epsilon_init:
            raise ValueError("need 0 < epsilon <= epsilon_init")
        if not 0 < self.anneal_iterations <= self.iterations:
            raise ValueError("need 0 < anneal_iterations <= iterations")
        if self.refine_passes < 0:
            raise ValueError("refine_passes must be >= 0")

    @property
    def decay(self) -> float:
        """Per-iteration geometric decay reaching `epsilon` after `anneal_iterations`."""
        return (self.epsilon / self.epsilon_init) ** (1.0 / self.anneal_iterations)


def sinkhorn_plan(cost: jax.Array, slot_active: jax.Array, params: SinkhornParams) -> jax.Array:
    """Entropic transport plan between active key slots and fingers, with two dummies.

    Args:
        cost: fingertip-to-key distances of the slots, float32 [S, F] (m).
        slot_active: bool [S], which slots hold an active key.
        params: static settings.

    Returns:
        float32 [S + 1, F + 1]: the plan. Row s < S sums to 1 for an active slot and 0
        otherwise, row S (free fingers) to max(F - n, 0); column f < F sums to 1, column F
        (unfingered keys) to max(n - F, 0); up to Sinkhorn convergence.
    """
    num_slots, num_fingers = cost.shape
    mass = slot_active.astype(cost.dtype)
    count = jnp.sum(mass)
    a = jnp.concatenate([mass, jnp.maximum(num_fingers - count, 0.0)[None]])
    b = jnp.concatenate(
        [jnp.ones((num_fingers,), cost.dtype), jnp.maximum(count - num_fingers, 0.0)[None]]
    )
    # Inactive rows have zero mass; their cost only needs to be finite.
    full_cost = jnp.zeros((num_slots + 1, num_fingers + 1), cost.dtype)
    full_cost = full_cost.at[:num_slots, :num_fingers].set(
        jnp.where(slot_active[:, None], cost, 0.0)
    )
    schedule = epsilon_scheduler.Epsilon(
        target=params.epsilon, init=params.epsilon_init / params.epsilon, decay=params.decay
    )
    geom = geometry.Geometry(cost_matrix=full_cost, epsilon=schedule)
    solver = sinkhorn.Sinkhorn(
        lse_mode=True,
        min_iterations=params.iterations,
        max_iterations=params.iterations,
        inner_iterations=params.iterations,
        implicit_diff=None,
    )
    out = solver(linear_problem.LinearProblem(geom, a=a, b=b))
    plan = out.matrix
    # Zero-mass rows/columns come out as exact zeros in lse mode; keep any stray NaN out.
    return jnp.where(jnp.isfinite(plan), plan, 0.0)


def greedy_round(plan: jax.Array, slot_active: jax.Array, num_fingers: int) -> jax.Array:
    """Round a plan to a matching: repeatedly take the largest entry of a free slot and finger.

    Args:
        plan: float [S (+ 1), F (+ 1)]; the dummy row and column, if any, are ignored.
        slot_active: bool [S].
        num_fingers: F, static.

    Returns:
        int32 [S]: finger of each slot, -1 for inactive slots; distinct fingers, and
        min(n, F) active slots get one.
    """
    num_slots = slot_active.shape[0]
    score = plan[:num_slots, :num_fingers]

    def pick(_: int, state: tuple) -> tuple:
        finger_of, slot_free, finger_free = state
        masked = jnp.where(slot_free[:, None] & finger_free[None, :], score, -jnp.inf)
        flat = jnp.argmax(masked)
        slot, finger = flat // num_fingers, flat % num_fingers
        ok = slot_free[slot] & finger_free[finger]
        finger_of = finger_of.at[slot].set(jnp.where(ok, finger, finger_of[slot]))
        slot_free = slot_free.at[slot].set(slot_free[slot] & ~ok)
        finger_free = finger_free.at[finger].set(finger_free[finger] & ~ok)
        return finger_of, slot_free, finger_free

    state = (
        jnp.full((num_slots,), -1, jnp.int32),
        slot_active,
        jnp.ones((num_fingers,), bool),
    )
    finger_of, _, _ = jax.lax.fori_loop(0, num_slots, pick, state)
    return finger_of.astype(jnp.int32)


def _holdings(finger_of: jax.Array, num_fingers: int) -> jax.Array:
    """Slot held by each finger, int32 [F]; S (the 'nothing' slot) for free fingers."""
    num_slots = finger_of.shape[0]
    target = jnp.where(finger_of >= 0, finger_of, num_fingers)  # out of range -> dropped
    return (
        jnp.full((num_fingers,), num_slots, jnp.int32)
        .at[target]
        .set(jnp.arange(num_slots, dtype=jnp.int32), mode="drop")
    )


def _refine_pass(
    hold: jax.Array, padded: jax.Array, slot_active: jax.Array, three_cycles: bool
) -> jax.Array:
    """Apply the single best improving local move to the holdings (if any improves).

    Moves: 2-exchange of the slots held by two fingers (a free finger holds slot S, so this
    also hands a key to a free finger); 3-rotation f1 <- hold[f2], f2 <- hold[f3],
    f3 <- hold[f1]; a finger dropping its key for an active slot nobody holds (n > F only).

    Args:
        hold: slot held by each finger, int32 [F] (S = none).
        padded: cost [S + 1, F] with a zero row S ('holds nothing').
        slot_active: bool [S].
        three_cycles: static, whether to consider 3-rotations (F^3 candidates).

    Returns:
        The new holdings [F] (unchanged when no move gains more than 1e-7 m).
    """
    num_fingers = hold.shape[0]
    num_slots = slot_active.shape[0]
    fingers = jnp.arange(num_fingers)
    current = padded[hold, fingers]  # [F]
    take = padded[hold].T  # take[f, g]: cost of finger f holding hold[g]
    # Exchanges: f1 takes hold[f2], f2 takes hold[f1].
    gain2 = take + take.T - current[:, None] - current[None, :]
    best2 = jnp.argmin(gain2)
    f1, f2 = best2 // num_fingers, best2 % num_fingers
    moves = [(gain2.reshape(-1)[best2], hold.at[f1].set(hold[f2]).at[f2].set(hold[f1]))]
    # Takeovers of unheld active slots: finger f takes slot s, its old slot becomes unheld.
    held = jnp.zeros((num_slots + 1,), bool).at[hold].set(True)[:num_slots]
    free_active = slot_active & ~held
    gain1 = jnp.where(free_active[None, :], padded[:num_slots].T - current[:, None], jnp.inf)
    best1 = jnp.argmin(gain1)
    g, slot = best1 // num_slots, best1 % num_slots
    moves.append((gain1.reshape(-1)[best1], hold.at[g].set(slot.astype(hold.dtype))))
    if three_cycles:
        gain3 = (
            take[:, :, None]
            + take[None, :, :]
            + take.T[:, None, :]
            - current[:, None, None]
            - current[None, :, None]
            - current[None, None, :]
        )
        # Triples with a repeated finger are exchanges (handled above) or no-ops.
        distinct = (
            (fingers[:, None, None] != fingers[None, :, None])
            & (fingers[None, :, None] != fingers[None, None, :])
            & (fingers[:, None, None] != fingers[None, None, :])
        )
        gain3 = jnp.where(distinct, gain3, jnp.inf)
        best3 = jnp.argmin(gain3)
        r1, rest = best3 // (num_fingers * num_fingers), best3 % (num_fingers * num_fingers)
        r2, r3 = rest // num_fingers, rest % num_fingers
        rotated = hold.at[r1].set(hold[r2]).at[r2].set(hold[r3]).at[r3].set(hold[r1])
        moves.append((gain3.reshape(-1)[best3], rotated))
    best_gain, best_hold = jnp.asarray(-1e-7), hold
    for gain, candidate in moves:
        better = gain < best_gain
        best_gain = jnp.where(better, gain, best_gain)
        best_hold = jnp.where(better, candidate, best_hold)
    return best_hold


def local_refine(
    cost: jax.Array, slot_active: jax.Array, finger_of: jax.Array, passes: int, three_cycles: bool
) -> jax.Array:
    """Polish a matching by `passes` best-improvement local moves (never makes it worse).

    Args:
        cost: float [S, F].
        slot_active: bool [S].
        finger_of: int32 [S], finger of each slot (-1: none), distinct fingers.
        passes: static number of passes.
        three_cycles: static, whether to try 3-rotations too.

    Returns:
        int32 [S]: the refined finger of each slot (-1: none).
    """
    num_slots, num_fingers = cost.shape
    padded = jnp.concatenate(
        [jnp.where(slot_active[:, None], cost, 0.0), jnp.zeros((1, num_fingers), cost.dtype)]
    )
    hold = _holdings(finger_of, num_fingers)
    hold = jax.lax.fori_loop(
        0, passes, lambda _, h: _refine_pass(h, padded, slot_active, three_cycles), hold
    )
    finger_of = (
        jnp.full((num_slots + 1,), -1, jnp.int32)
        .at[hold]
        .set(jnp.arange(num_fingers, dtype=jnp.int32))
    )[:num_slots]
    return jnp.where(slot_active, finger_of, -1)


def solve(cost: jax.Array, slot_active: jax.Array, params: SinkhornParams) -> jax.Array:
    """Sinkhorn plan -> greedy rounding -> local refinement.

    Args:
        cost: float32 [S, F], S >= F.
        slot_active: bool [S].
        params: static settings.

    Returns:
        int32 [S]: finger of each slot, -1 for inactive and unfingered slots; distinct
        fingers; min(n, F) slots fingered.
    """
    plan = sinkhorn_plan(cost, slot_active, params)
    finger_of = greedy_round(plan, slot_active, cost.shape[1])
    if params.refine_passes:
        finger_of = local_refine(
            cost, slot_active, finger_of, params.refine_passes, params.three_cycles
        )
    return finger_of
