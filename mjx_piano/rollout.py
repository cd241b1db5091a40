"""The one rollout: play envs with a policy for a fixed number of control steps, keep each env's
first finished episode and a per-step record.

Every consumer is this scan with its own policy and record: the learners' evaluation
(`train.episodes.play_pieces`), dataset collection (`train.dataset.collect`), the generalist's
evaluation (`train.generalist.rollout`) and `perform` (`mjx_piano.perform.rollout`). It works on
one env or a batch alike: `env_step` is `env.step` or `jax.vmap(env.step)`, and the state's
`done` is [] or [E].
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

# (policy carry, env state, this step's `xs` entry) -> (physical action, what the record sees
# of it, policy carry)
Policy = Callable[[Any, Any, jax.Array], tuple[jax.Array, Any, Any]]
# (state before, the policy's output, state after, seen before) -> record of the step
Record = Callable[[Any, Any, Any, jax.Array], Any]


@struct.dataclass
class Played:
    """What a rollout kept.

    Attributes:
        state: the env state(s) after the last step.
        policy_carry: the policy's carry after the last step.
        first_episode: each env's first finished episode (`state.last_episode`'s type, leaves
            [E] or []); the start state's `last_episode` where none finished.
        finished: bool [E] or [], whether an episode finished.
        records: the record of every step, leaves [steps, ...].
    """

    state: Any
    policy_carry: Any
    first_episode: Any
    finished: jax.Array
    records: Any


def expand(mask: jax.Array, like: jax.Array) -> jax.Array:
    """`mask` [...] reshaped to broadcast against `like` [..., *extra]."""
    return mask.reshape(mask.shape + (1,) * (like.ndim - mask.ndim))


def play(env_step: Callable[[Any, jax.Array], Any], policy: Policy, state: Any, steps: int,
         xs: Any = None, policy_carry: Any = None, record: Record | None = None) -> Played:
    """Plays `steps` control steps from `state` (pure; one `lax.scan`).

    Args:
        env_step: (state, physical action) -> next state; the env resets itself when an
            episode ends (`done`), keeping its means in `last_episode`.
        policy: picks each step's action (see `Policy`).
        state: the start state(s).
        steps: control steps (static).
        xs: what the policy gets at each step, leaves [steps, ...] (e.g. PRNG keys), or None.
        policy_carry: the policy's initial carry.
        record: what to keep of each step; None keeps nothing.

    Returns:
        The final state, the first finished episode of each env and the records.
    """
    def step(carry, x):
        state, policy_carry, captured, seen = carry
        action, seen_by_record, policy_carry = policy(policy_carry, state, x)
        new = env_step(state, action)
        out = None if record is None else record(state, seen_by_record, new, seen)
        first = new.done & ~seen
        captured = jax.tree_util.tree_map(lambda n, o: jnp.where(expand(first, n), n, o),
                                          new.last_episode, captured)
        return (new, policy_carry, captured, seen | new.done), out

    carry = (state, policy_carry, state.last_episode, jnp.zeros_like(state.done))
    (state, policy_carry, captured, seen), records = jax.lax.scan(step, carry, xs, length=steps)
    return Played(state=state, policy_carry=policy_carry, first_episode=captured,
                  finished=seen, records=records)
