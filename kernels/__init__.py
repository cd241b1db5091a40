"""Performance-critical kernels, each with a pure-jnp / scipy reference and tests.

* `kernels.tolerance`: dm_control-style reward shaping (gaussian / linear), pure jnp.
* `kernels.fingering`: RP1M optimal-transport fingering (assignment + reward), one env,
  jittable and vmappable; `FingeringConfig` picks the solver.
* `kernels.exact_assignment`: exact square linear assignment (Hungarian) in pure JAX.
* `kernels.sinkhorn_fingering`: annealed ott-jax Sinkhorn + rounding + local refinement.
* `kernels.fingering_instances`: random fingering problems for tests and benchmarks.
* `kernels.piano_keys`: the piano keys outside the MJX solver (key dynamics + fingertip-key
  contact); its reference is MJX's own key joints (tests/kernels/test_piano_keys.py).
"""
