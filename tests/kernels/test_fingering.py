"""OT fingering kernels against scipy's `linear_sum_assignment` and hand-checked cases.

The agreement numbers (Sinkhorn vs the exact optimum, both instance sets) are printed; run with
`-s` to see them. Each solver is compiled once per batch shape (module-level jitted functions).
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment as scipy_lsa

from kernels import exact_assignment, fingering, sinkhorn_fingering
from kernels.fingering_instances import NUM_FINGERS, NUM_KEYS, key_points, make_instances

NUM_INSTANCES = 1500
SOLVERS = ("exact", "sinkhorn")
CONFIGS = {solver: fingering.FingeringConfig(solver=solver) for solver in SOLVERS}


@functools.cache
def batched_reward(solver: str):
    """jit(vmap(fingering_reward)) for one solver, built once per test session."""
    config = CONFIGS[solver]
    return jax.jit(jax.vmap(lambda t, k, a: fingering.fingering_reward(t, k, a, config)))


def numpy_tolerance(d: np.ndarray) -> np.ndarray:
    """Fingering tolerance by hand: 1 within 1 cm, else 0.1 ** (((d - 0.01) / 0.1) ** 2)."""
    return np.where(d <= 0.01, 1.0, 0.1 ** (((d - 0.01) / 0.1) ** 2))


def scipy_reference(tips: np.ndarray, points: np.ndarray, keep: np.ndarray):
    """Optimal assignment of the `keep` keys (float64) -> (assignment [K], cost, reward)."""
    cost = np.linalg.norm(points[keep, None, :] - tips[None, :, :], axis=-1)
    rows, cols = scipy_lsa(cost)
    assignment = np.full(points.shape[0], -1)
    assignment[keep[rows]] = cols
    distance = cost[rows, cols]
    reward = numpy_tolerance(distance).mean() if len(rows) else 1.0
    return assignment, distance.sum(), reward


def kept_keys(tips: np.ndarray, points: np.ndarray, active: np.ndarray) -> np.ndarray:
    """The documented rule for n > S = F active keys: among the 32 active keys nearest to any
    fingertip, the F keys picked by greedy matching (closest free key-finger pair first)."""
    idx = np.flatnonzero(active)
    distance = np.linalg.norm(points[idx, None, :] - tips[None], axis=-1)
    candidates = np.argsort(distance.min(axis=1), kind="stable")[: fingering.GREEDY_CANDIDATES]
    idx, distance = idx[candidates], distance[candidates]
    chosen = []
    for _ in range(min(len(idx), NUM_FINGERS)):
        key, finger = np.unravel_index(np.argmin(distance), distance.shape)
        chosen.append(idx[key])
        distance[key, :] = np.inf
        distance[:, finger] = np.inf
    return np.array(sorted(chosen), dtype=int)


def assignment_cost(tips: np.ndarray, points: np.ndarray, assignment: np.ndarray) -> float:
    on = assignment >= 0
    return float(np.linalg.norm(points[on] - tips[assignment[on]], axis=-1).sum())


def check_valid(assignment: np.ndarray, active: np.ndarray) -> None:
    """Constraints: only active keys fingered, every active key when n <= F, fingers distinct."""
    on = assignment >= 0
    assert not np.any(on & ~active), "an inactive key got a finger"
    assert np.all(assignment < NUM_FINGERS)
    fingers = assignment[on]
    assert len(np.unique(fingers)) == len(fingers), "a finger got two keys"
    assert on.sum() == min(active.sum(), NUM_FINGERS)


@functools.cache
def oracle_run(kind: str, solver: str):
    """Solver outputs and scipy references on NUM_INSTANCES problems of one set (cached)."""
    inst = make_instances(kind, NUM_INSTANCES, seed={"hands": 11, "anywhere": 12}[kind])
    reward, assignment = batched_reward(solver)(inst.fingertips, inst.key_points, inst.active)
    tips64, points64 = inst.fingertips.astype(np.float64), inst.key_points.astype(np.float64)
    rows = []
    for b in range(NUM_INSTANCES):
        ref = scipy_reference(tips64[b], points64[b], np.flatnonzero(inst.active[b]))
        rows.append((ref, assignment_cost(tips64[b], points64[b], np.asarray(assignment[b]))))
    return inst, np.asarray(reward), np.asarray(assignment), rows


@pytest.mark.parametrize("kind", ["hands", "anywhere"])
def test_exact_solver_is_optimal(kind):
    inst, reward, assignment, rows = oracle_run(kind, "exact")
    for b, ((_, best, _), got) in enumerate(rows):
        check_valid(assignment[b], inst.active[b])
        # Cost equality up to float32 rounding of the distances (ties may swap fingers).
        assert got <= best * (1 + 1e-6) + 1e-6, (kind, b, got, best)
    same = [np.array_equal(assignment[b], rows[b][0][0]) for b in range(NUM_INSTANCES)]
    print(f"\n[{kind}] exact: same assignment as scipy {np.mean(same):.2%}, optimal cost 100%")


@pytest.mark.parametrize("kind", ["hands", "anywhere"])
def test_sinkhorn_matches_scipy(kind):
    inst, reward, assignment, rows = oracle_run(kind, "sinkhorn")
    same, rel_gap = [], []
    for b, ((ref_assignment, best, _), got) in enumerate(rows):
        check_valid(assignment[b], inst.active[b])
        same.append(np.array_equal(assignment[b], ref_assignment))
        rel_gap.append((got - best) / best)
    same, rel_gap = np.array(same), np.array(rel_gap)
    within = np.mean(rel_gap <= 1e-3)
    worst = int(np.argmax(rel_gap))
    print(
        f"\n[{kind}] sinkhorn {CONFIGS['sinkhorn']}: same assignment {same.mean():.2%}, "
        f"cost within 1e-3 rel {within:.2%}, worst rel gap {rel_gap[worst]:.2e} "
        f"(instance {worst}, {inst.active[worst].sum()} keys)"
    )
    assert same.mean() >= 0.99
    assert within >= 0.999
    assert rel_gap.min() >= -1e-5, "better than the optimum: the oracle or the cost is wrong"


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", ["hands", "anywhere"])
def test_reward_matches_reference(kind, solver):
    inst, reward, assignment, rows = oracle_run(kind, solver)
    tips, points = inst.fingertips.astype(np.float64), inst.key_points.astype(np.float64)
    for b in range(NUM_INSTANCES):
        on = assignment[b] >= 0
        mine = numpy_tolerance(np.linalg.norm(points[b][on] - tips[b][assignment[b][on]], axis=-1))
        assert reward[b] == pytest.approx(mine.mean(), abs=2e-6)
    agree = np.mean([abs(reward[b] - rows[b][0][2]) < 1e-5 for b in range(NUM_INSTANCES)])
    assert agree >= (1.0 if solver == "exact" else 0.99)


MASK_CASES = {
    "none": [],
    "one": [40],
    "ten": list(range(30, 40)),
    "eleven": list(range(30, 41)),
    "twenty_spread": list(range(0, 88, 4))[:20],
    "all": list(range(NUM_KEYS)),
}


def mask_batch():
    """Every mask case with hand-like fingertips, plus degenerate fingertips, as one batch."""
    inst = make_instances("hands", len(MASK_CASES), seed=5)
    tips = inst.fingertips.copy()
    active = np.zeros((len(MASK_CASES), NUM_KEYS), bool)
    for b, keys in enumerate(MASK_CASES.values()):
        active[b, keys] = True
    # Degenerate geometry: all fingertips on one point, which is key 35's target point.
    tips = np.concatenate([tips, np.broadcast_to(key_points()[35], (2, NUM_FINGERS, 3))])
    active = np.concatenate([active, active[[2, 3]]])
    points = np.broadcast_to(key_points(), (len(tips), NUM_KEYS, 3)).astype(np.float32)
    return tips.astype(np.float32), points, active


@pytest.mark.parametrize("solver", SOLVERS)
def test_masks_never_nan_and_follow_the_rule(solver):
    tips, points, active = mask_batch()
    reward, assignment = batched_reward(solver)(tips, points, active)
    reward, assignment = np.asarray(reward), np.asarray(assignment)
    assert np.all(np.isfinite(reward)) and np.all((reward > 0) & (reward <= 1))
    assert reward[0] == 1.0 and np.all(assignment[0] == -1), "no active key: reward 1"
    for b in range(len(tips)):
        check_valid(assignment[b], active[b])
        keep = kept_keys(tips[b], points[b], active[b])
        if active[b].sum() > NUM_FINGERS:
            # More than max_keys = F active keys: the greedily matched keys are fingered.
            assert set(np.flatnonzero(assignment[b] >= 0)) == set(keep)
        tips64, points64 = tips[b].astype(np.float64), points[b].astype(np.float64)
        _, best, ref_reward = scipy_reference(tips64, points64, keep)
        got = assignment_cost(tips64, points64, assignment[b])
        assert got <= best * (1 + 1e-5) + 1e-6, (b, got, best)
        assert reward[b] == pytest.approx(ref_reward, abs=1e-5)


@pytest.mark.parametrize("solver", SOLVERS)
def test_more_keys_than_fingers_is_rectangular_optimum_with_max_keys(solver):
    """With max_keys=16, 11-16 active keys give scipy's rectangular optimum [n, 10]."""
    config = fingering.FingeringConfig(solver=solver, max_keys=16)
    f = jax.jit(jax.vmap(lambda t, k, a: fingering.fingering_reward(t, k, a, config)))
    tips, points, active = [], [], []
    for kind, seed in (("hands", 21), ("anywhere", 22)):
        for n in (11, 12, 14, 16):
            inst = make_instances(kind, 50, seed=seed + n, num_active=n)
            tips.append(inst.fingertips), points.append(inst.key_points), active.append(inst.active)
    tips, points, active = map(np.concatenate, (tips, points, active))
    reward, assignment = map(np.asarray, f(tips, points, active))
    tips64, points64 = tips.astype(np.float64), points.astype(np.float64)
    gaps = []
    for b in range(len(tips)):
        check_valid(assignment[b], active[b])
        _, best, _ = scipy_reference(tips64[b], points64[b], np.flatnonzero(active[b]))
        gaps.append(assignment_cost(tips64[b], points64[b], assignment[b]) / best - 1)
    gaps = np.array(gaps)
    assert np.all(np.isfinite(reward)) and gaps.min() >= -1e-6
    print(f"\n11-16 keys, max_keys=16, {solver}: optimal {np.mean(gaps <= 1e-6):.1%}, "
          f"within 1e-3 {np.mean(gaps <= 1e-3):.1%}, worst gap {gaps.max():.2e}")
    if solver == "exact":
        assert gaps.max() <= 1e-6
    else:
        assert np.mean(gaps <= 1e-3) >= 0.99


def test_default_rule_beyond_max_keys_reported():
    """Default max_keys=10: 12 keys use the greedy-keep heuristic; report its gap (loose bound)."""
    inst = make_instances("hands", 200, seed=7, num_active=12)
    _, assignment = batched_reward("exact")(inst.fingertips, inst.key_points, inst.active)
    tips, points = inst.fingertips.astype(np.float64), inst.key_points.astype(np.float64)
    gaps = []
    for b in range(200):
        _, best, _ = scipy_reference(tips[b], points[b], np.flatnonzero(inst.active[b]))
        gaps.append(assignment_cost(tips[b], points[b], np.asarray(assignment[b])) / best - 1)
    gaps = np.array(gaps)
    print(f"\n12 active keys, max_keys=10: heuristic = rectangular optimum in "
          f"{np.mean(gaps < 1e-6):.1%}, mean gap {gaps.mean():.2%}, worst {gaps.max():.2%}")
    assert gaps.min() >= -1e-6
    assert np.mean(gaps < 1e-6) >= 0.6 and gaps.mean() <= 0.02  # measured 81% / 0.3% at 11 keys


def test_exact_linear_sum_assignment_square_oracle():
    rng = np.random.default_rng(3)
    solve = jax.jit(jax.vmap(exact_assignment.linear_sum_assignment))
    for n in (1, 2, 5, 10):
        continuous = rng.random((300, n, n)).astype(np.float32)
        ties = rng.integers(0, 3, (300, n, n)).astype(np.float32)  # many optimal matchings
        for costs in (continuous, ties, -continuous * 100.0):
            cols = np.asarray(solve(costs))
            for cost, col in zip(costs.astype(np.float64), cols):
                assert sorted(col) == list(range(n))
                rows, ref = scipy_lsa(cost)
                assert cost[rows, col].sum() == pytest.approx(cost[rows, ref].sum(), abs=1e-4)


def test_exact_linear_sum_assignment_bad_input_terminates():
    cost = jnp.full((10, 10), jnp.nan).at[0, 0].set(1.0).at[3].set(jnp.inf)
    col = np.asarray(jax.jit(exact_assignment.linear_sum_assignment)(cost))
    assert sorted(col) == list(range(10))


def test_sinkhorn_plan_keeps_masked_keys_massless():
    inst = make_instances("hands", 1, seed=2, num_active=4)
    problem = fingering.compress(inst.fingertips[0], inst.key_points[0], inst.active[0], 10)
    params = CONFIGS["sinkhorn"].sinkhorn_params()
    plan = np.asarray(jax.jit(sinkhorn_fingering.sinkhorn_plan, static_argnums=2)(
        problem.cost, problem.active, params))
    active = np.asarray(problem.active)
    assert active.sum() == 4 and np.all(np.isfinite(plan))
    assert plan.shape == (NUM_FINGERS + 1, NUM_FINGERS + 1)
    assert np.all(plan[:-1][~active] == 0.0), "inactive slots must carry no mass"
    assert np.all(plan[:, -1] == 0.0), "n <= F: the unfingered-keys sink has no mass"
    np.testing.assert_allclose(plan[:-1][active].sum(axis=1), 1.0, atol=1e-3)
    np.testing.assert_allclose(plan[-1].sum(), NUM_FINGERS - 4, atol=1e-3)
    np.testing.assert_allclose(plan[:, :-1].sum(axis=0), 1.0, atol=1e-3)


def test_hand_checked_two_keys():
    """Two keys, the index finger right on one, thumb 2 cm from the other."""
    tips = np.tile(np.array([[1.0, 1.0, 1.0]], np.float32), (NUM_FINGERS, 1)) * np.arange(
        1, NUM_FINGERS + 1, dtype=np.float32)[:, None]
    points = np.tile(key_points().astype(np.float32)[None, 0], (NUM_KEYS, 1))
    points[5] = [0.0, 0.0, 0.0]
    points[6] = [0.0, 0.3, 0.0]
    tips[1] = points[5]  # ff on key 5
    tips[0] = [0.0, 0.32, 0.0]  # th 2 cm from key 6
    active = np.zeros(NUM_KEYS, bool)
    active[[5, 6]] = True
    for solver in SOLVERS:
        reward, assignment = jax.jit(fingering.fingering_reward, static_argnums=3)(
            tips, points, active, CONFIGS[solver])
        assert int(assignment[5]) == 1 and int(assignment[6]) == 0
        assert np.all(np.delete(np.asarray(assignment), [5, 6]) == -1)
        # (1 + 0.1 ** ((0.01 / 0.1) ** 2)) / 2 = (1 + 0.1 ** 0.01) / 2
        assert float(reward) == pytest.approx((1.0 + 0.1 ** 0.01) / 2.0, rel=1e-5)


@pytest.mark.parametrize("solver", SOLVERS)
def test_jit_vmap_does_not_retrace(solver):
    config = CONFIGS[solver]
    chex.clear_trace_counter()  # the counter is keyed by code location, shared by both params

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(tips, points, active):
        def reward(t, k, a):
            return fingering.fingering_reward(t, k, a, config)

        return jax.vmap(reward)(tips, points, active)

    for seed in range(3):  # new data, same shapes: one trace
        inst = make_instances("anywhere", 8, seed=seed)
        reward, assignment = step(inst.fingertips, inst.key_points, inst.active)
        assert reward.shape == (8,) and assignment.shape == (8, NUM_KEYS)
        assert reward.dtype == jnp.float32 and assignment.dtype == jnp.int32
    # An equal (not identical) config hashes the same: still one compiled function.
    assert hash(config) == hash(fingering.FingeringConfig(solver=solver))


def test_assign_equals_reward_assignment_and_distance_helper():
    inst = make_instances("hands", 4, seed=9)
    config = CONFIGS["exact"]
    for b in range(4):
        args = (inst.fingertips[b], inst.key_points[b], inst.active[b])
        a1 = np.asarray(fingering.assign(*args, config))
        _, a2 = fingering.fingering_reward(*args, config)
        np.testing.assert_array_equal(a1, np.asarray(a2))
        dist = np.asarray(fingering.assignment_distance(inst.fingertips[b], inst.key_points[b], a1))
        assert dist.sum() == pytest.approx(
            assignment_cost(inst.fingertips[b], inst.key_points[b], a1), rel=1e-5)


@pytest.mark.parametrize("solver", SOLVERS)
def test_fewer_keys_than_fingertips(solver):
    """A small scene (4 keys): padded internally, the assignment still has 4 entries."""
    inst = make_instances("hands", 1, seed=4, num_active=3)
    keys = np.flatnonzero(inst.active[0])[:3].tolist() + [0]
    tips, points = inst.fingertips[0], inst.key_points[0][keys]
    active = np.array([True, True, True, False])
    reward, assignment = jax.jit(fingering.fingering_reward, static_argnums=3)(
        tips, points, active, CONFIGS[solver])
    assert assignment.shape == (4,) and int(assignment[3]) == -1
    check_valid(np.asarray(assignment), active)
    _, best, ref_reward = scipy_reference(tips.astype(np.float64), points.astype(np.float64),
                                          np.arange(3))
    got = assignment_cost(tips.astype(np.float64), points.astype(np.float64), np.asarray(assignment))
    assert got == pytest.approx(best, rel=1e-5) and float(reward) == pytest.approx(ref_reward, abs=1e-5)


@pytest.mark.parametrize("solver", SOLVERS)
def test_non_finite_fingertips_terminate_with_a_valid_matching(solver):
    """A diverged simulation (NaN / inf fingertips) must not hang or break the constraints."""
    tips, points, active = mask_batch()
    tips = tips.copy()
    tips[:, 0] = np.nan
    tips[:, 3, 1] = np.inf
    _, assignment = batched_reward(solver)(tips, points, active)
    for b in range(len(tips)):
        check_valid(np.asarray(assignment[b]), active[b])


def test_config_validation_and_shapes():
    with pytest.raises(ValueError):
        fingering.FingeringConfig(solver="hungarian")
    with pytest.raises(ValueError):
        fingering.FingeringConfig(solver="sinkhorn", epsilon=0.5, epsilon_init=0.1)
    exact = CONFIGS["exact"]
    with pytest.raises(ValueError):
        fingering.assign(jnp.zeros((10, 2)), jnp.zeros((88, 3)), jnp.zeros(88, bool), exact)
    with pytest.raises(ValueError):
        fingering.assign(jnp.zeros((10, 3)), jnp.zeros((88, 3)), jnp.zeros(87, bool), exact)


def test_instance_keyboard_matches_scene():
    piano = pytest.importorskip("mjx_piano.scene.piano")
    geometry = piano.key_geometry(np.arange(NUM_KEYS))
    centre = piano.key_centre_at_rest(geometry)
    target = centre + np.stack(
        [0.35 * geometry.half_size[:, 0], np.zeros(NUM_KEYS), geometry.half_size[:, 2]], axis=-1)
    np.testing.assert_allclose(key_points(), target, atol=1e-9)
    white = ~geometry.black
    np.testing.assert_allclose(np.diff(key_points()[white, 1]), 0.0235, atol=1e-9)


@pytest.mark.slow
def test_sinkhorn_agreement_large_sample():
    """10,000 instances per set, both solvers (the numbers quoted in the kernel report)."""
    for kind, seed in (("hands", 101), ("anywhere", 102)):
        inst = make_instances(kind, 10_000, seed=seed)
        tips64, points64 = inst.fingertips.astype(np.float64), inst.key_points.astype(np.float64)
        refs = [scipy_reference(tips64[b], points64[b], np.flatnonzero(inst.active[b]))
                for b in range(len(tips64))]
        for solver in SOLVERS:
            _, assignment = batched_reward(solver)(inst.fingertips, inst.key_points, inst.active)
            assignment = np.asarray(assignment)
            gap = np.array([assignment_cost(tips64[b], points64[b], assignment[b]) / refs[b][1] - 1
                            for b in range(len(refs))])
            same = np.mean([np.array_equal(assignment[b], refs[b][0]) for b in range(len(refs))])
            print(f"\n[{kind}] {solver} on 10,000: same {same:.2%}, within 1e-3 "
                  f"{np.mean(gap <= 1e-3):.2%}, worst gap {gap.max():.2e}")
            if solver == "exact":
                assert gap.max() <= 1e-6
            else:
                assert same >= 0.99 and np.mean(gap <= 1e-3) >= 0.999
