"""A scripted "perfect" player: invisible fingers push exactly the goal keys down.

(In the self-playing-keys variant the keys' own actuators press them instead; with
key_dynamics='kernel' the torque goes into the key kernel's torque input.)

It plays through the env's own physics and scoring (so its F1 checks the whole chain): before
each control step it applies a downward torque to every key that the goal wants pressed at that
step (and none to the others), holds the hands still, and sets the sustain pedal as the goal.
The torque brings a key to its full travel in about 15 ms; a released key's spring lifts it
out of the pressed band in about 10 ms, both well inside one 50 ms control step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mjx_piano.env import EnvState, PianoEnv

PRESS_TORQUE = 0.5  # N m on the key hinge, ~3x the spring torque at full travel


def hold_action(env: PianoEnv, sustain: jax.Array) -> jax.Array:
    """An action that keeps the hands at their start pose, with the given sustain.

    Args:
        env: the environment.
        sustain: bool [], pedal on or off.

    Returns:
        float32 [action_size].
    """
    rest = jnp.clip(jnp.zeros(env.action_size), env.action_low, env.action_high)
    return rest.at[-1].set(sustain.astype(jnp.float32))


def scripted_step(env: PianoEnv, state: EnvState, extra_keys: jax.Array | None = None) -> EnvState:
    """Plays one control step perfectly (plus optional extra wrong keys).

    Args:
        env: the environment.
        state: one env's state.
        extra_keys: bool [K], keys to press in addition to the goal (for testing precision).

    Returns:
        The next state, from `env.step`.
    """
    goal = env.bank.goal_keys[state.piece, state.t]
    if extra_keys is not None:
        goal = goal | extra_keys
    action = hold_action(env, env.bank.goal_sustain[state.piece, state.t])
    if env.config.scene.actuated_keys:
        # Self-playing keys (the first K actuators) press themselves: target full travel.
        targets = jnp.where(goal, jnp.asarray(env.index.key_travel), 0.0)
        return env.step(state, action.at[: env.index.num_keys].set(targets))
    torque = jnp.where(goal, PRESS_TORQUE, 0.0)
    if state.keys is not None:
        # Kernel key dynamics: the torque is the kernel's own input.
        state = state.replace(keys=state.keys.replace(applied=torque.astype(jnp.float32)))
        next_state = env.step(state, action)
        return next_state.replace(keys=next_state.keys.replace(applied=jnp.zeros_like(torque)))
    applied = state.data.qfrc_applied.at[env.index.key_dof].set(torque)
    state = state.replace(data=state.data.replace(qfrc_applied=applied))
    next_state = env.step(state, action)
    # The torque is an input of this step only; an auto-reset state must start without it.
    cleared = next_state.data.qfrc_applied.at[env.index.key_dof].set(0.0)
    return next_state.replace(data=next_state.data.replace(qfrc_applied=cleared))


def play_episode(env: PianoEnv, rng: jax.Array, piece: jax.Array, num_steps: int,
                 extra_keys: jax.Array | None = None) -> tuple[EnvState, jax.Array]:
    """Plays `num_steps` scripted control steps from a reset (jit/vmap friendly).

    Args:
        env: the environment.
        rng: PRNG key.
        piece: int32 [], the piece to play.
        num_steps: control steps to run (static); the piece's length plays one episode.
        extra_keys: bool [K] wrong keys pressed at every step, or None.

    Returns:
        (final state, pressed keys per step bool [num_steps, K]).
    """

    def body(state: EnvState, _: None) -> tuple[EnvState, jax.Array]:
        state = scripted_step(env, state, extra_keys)
        return state, state.pressed

    return jax.lax.scan(body, env.reset(rng, piece), None, length=num_steps)
