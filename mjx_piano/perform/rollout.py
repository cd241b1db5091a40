"""Roll out one env and keep everything a viewer or listener needs, per control step.

Who plays: the scripted perfect player, the IK pianist, or a trained specialist's action
function (`train.restore.load_policy` loads one from a run folder).

`make_rollout` builds one pure scan over `num_steps` control steps of a single env, driven by the
scripted perfect player (`mjx_piano.scripted.scripted_step`) or by a policy's action function;
jit it once and call it for any piece of the env's bank. `to_recording` moves the result to the
host as a `Recording` over all 88 keys (reduced scenes build only some keys; the others are
never pressed and never wanted).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mjx_piano.env import EnvState, PianoEnv
from mjx_piano.music.roll import CONTROL_HZ, NUM_KEYS
from mjx_piano.perform.render_scene import render_qpos
from mjx_piano.rollout import play
from mjx_piano.scripted import scripted_step

# obs [observation_size] -> physical action [action_size]; must be jittable.
ActionFn = Callable[[jax.Array], jax.Array]
StatePolicy = Callable[[EnvState], jax.Array]


@struct.dataclass
class RolloutTrace:
    """Per-step record of one env's rollout (device arrays; leading axis = control step).

    Attributes:
        qpos: float32 [steps, nq], joint positions after each step (the episode's last state,
            not the auto-reset one).
        key_angles: float32 [steps, K], key angles after each step (same rule).
        pressed: bool [steps, K], keys pressed after each step.
        sustain: bool [steps], pedal state of each step.
        goal: bool [steps, K], keys the piece wanted at each step.
        goal_sustain: bool [steps], pedal the piece wanted at each step.
        done: bool [steps], the step ended the episode.
        fingers: int32 [steps, K], the fingertip on each pressed key after each step (0-4 right
            thumb to little finger, 5-9 left; -1 for keys up, scenes without hands and the
            episode's last step, whose state is already the reset one).
        f1: float32 [], mean F1 of the first finished episode (of the run if none finished).
    """

    qpos: jax.Array
    key_angles: jax.Array
    pressed: jax.Array
    sustain: jax.Array
    goal: jax.Array
    goal_sustain: jax.Array
    done: jax.Array
    fingers: jax.Array
    f1: jax.Array


@dataclasses.dataclass(frozen=True)
class Recording:
    """One performance recorded on the host, over all 88 keys (index 0 = A0 = MIDI 21).

    Attributes:
        name: the piece's name.
        qpos: float64 [steps, nq], joint positions after each control step, for the model
            `render_scene.render_model(env)` (the env's own unless its keys are the kernel's).
        pressed: bool [steps, 88], keys pressed after each step.
        sustain: bool [steps], pedal state per step.
        goal: bool [steps, 88], the piece's keys per step.
        goal_sustain: bool [steps], the piece's pedal per step.
        f1: mean per-step key F1 of the episode (the env's own score).
        control_hz: control steps per second.
        fingers: int [steps, 88], the fingertip on each pressed key (see `RolloutTrace`), or
            None when not recorded.
    """

    name: str
    qpos: np.ndarray
    pressed: np.ndarray
    sustain: np.ndarray
    goal: np.ndarray
    goal_sustain: np.ndarray
    f1: float
    control_hz: float = CONTROL_HZ
    fingers: np.ndarray | None = None

    @property
    def num_steps(self) -> int:
        """Control steps T."""
        return int(self.pressed.shape[0])

    @property
    def duration_s(self) -> float:
        """Length of the performance in seconds."""
        return self.num_steps / self.control_hz


def make_rollout(env: PianoEnv, num_steps: int, action_fn: ActionFn | None = None,
                 state_policy: StatePolicy | None = None
                 ) -> Callable[[jax.Array, jax.Array], RolloutTrace]:
    """A pure `(rng, piece) -> RolloutTrace` over `num_steps` control steps (jit it once).

    Args:
        env: the environment (one unbatched env is rolled out).
        num_steps: control steps (static); use the piece's length for one episode.
        action_fn: policy `obs [O] -> action [action_size]` (physical units), or None for the
            scripted perfect player.
        state_policy: a controller that reads the whole state, `EnvState -> action` (the IK
            pianist, `mjx_piano.ik_pianist`); takes precedence over `action_fn`.

    Returns:
        The rollout function: rng (PRNG key), piece (int32 [] bank index) -> trace.
    """

    def env_step(state: EnvState, action: jax.Array | None) -> EnvState:
        if action is None:  # the scripted player presses the keys itself
            return scripted_step(env, state)
        return env.step(state, action)

    def policy(carry: None, state: EnvState, _: None) -> tuple[jax.Array | None, None, None]:
        if state_policy is not None:
            return state_policy(state), None, carry
        return (None if action_fn is None else action_fn(state.obs)), None, carry

    def record(state: EnvState, _: None, new: EnvState, seen: jax.Array) -> tuple:
        # On the episode's last step the env has already reset itself; show the last real pose
        # (the step before it) rather than the start pose.
        before = (state.data.qpos, env.key_angles(state.data, state.keys))
        after = (new.data.qpos, env.key_angles(new.data, new.keys))
        qpos, angles = (jnp.where(new.done, b, a) for b, a in zip(before, after))
        fingers = jnp.where(new.done, -1, played_fingers(env, new))
        return (qpos, angles, new.pressed, new.sustain, env.bank.goal_keys[state.piece, state.t],
                env.bank.goal_sustain[state.piece, state.t], new.done, fingers)

    def rollout(rng: jax.Array, piece: jax.Array) -> RolloutTrace:
        played = play(env_step, policy, env.reset(rng, piece), num_steps, record=record)
        state = played.state
        # Unfinished run: score the steps played so far.
        partial = state.episode.f1 / jnp.maximum(state.episode.length, 1).astype(jnp.float32)
        qpos, angles, pressed, sustain, goal, goal_sustain, done, fingers = played.records
        return RolloutTrace(qpos=qpos, key_angles=angles, pressed=pressed, sustain=sustain,
                            goal=goal, goal_sustain=goal_sustain, done=done, fingers=fingers,
                            f1=jnp.where(played.finished, played.first_episode.f1, partial))

    return rollout


def played_fingers(env: PianoEnv, state: EnvState) -> jax.Array:
    """Which fingertip is on each pressed key: the exact OT assignment of the pressed keys to
    the fingertips where they are, int32 [K] (-1: key up, or a scene without hands)."""
    if len(env.index.fingertip_site) == 0:
        return jnp.full(state.pressed.shape, -1, jnp.int32)
    from kernels import fingering

    tips = state.data.site_xpos[env.index.fingertip_site]
    return fingering.assign(tips, env.key_points(state.data, state.keys), state.pressed,
                            fingering.FingeringConfig(solver="exact"))


def to_recording(env: PianoEnv, trace: RolloutTrace, name: str) -> Recording:
    """Moves a trace to the host, spreading the env's K keys over all 88.

    Args:
        env: the env the trace came from (its `index.keys` maps K -> 88).
        trace: the rollout's record.
        name: the piece's name.

    Returns:
        The `Recording`.
    """
    trace = jax.device_get(trace)
    keys = np.asarray(env.index.keys)

    def widen(x: np.ndarray, fill=False) -> np.ndarray:
        full = np.full((x.shape[0], NUM_KEYS), fill, np.asarray(x).dtype)
        full[:, keys] = x
        return full

    return Recording(
        name=name, qpos=render_qpos(env, trace.qpos, trace.key_angles),
        pressed=widen(trace.pressed),
        sustain=np.asarray(trace.sustain, bool), goal=widen(trace.goal),
        goal_sustain=np.asarray(trace.goal_sustain, bool), f1=float(trace.f1),
        fingers=widen(np.asarray(trace.fingers, np.int32), -1))


def perform(env: PianoEnv, piece: int, name: str, num_steps: int | None = None,
            action_fn: ActionFn | None = None, seed: int = 0,
            state_policy: StatePolicy | None = None) -> Recording:
    """Compiles and runs one rollout of bank piece `piece` (convenience for the CLI).

    Args:
        env: the environment.
        piece: bank index of the piece.
        name: the piece's name (for titles and file names).
        num_steps: control steps; default the piece's length (one episode).
        action_fn: policy or None for the scripted player (see `make_rollout`).
        seed: PRNG seed of the reset.
        state_policy: a controller of the whole state (see `make_rollout`), or None.

    Returns:
        The `Recording`.
    """
    steps = int(env.bank.length[piece]) if num_steps is None else num_steps
    rollout = jax.jit(make_rollout(env, steps, action_fn, state_policy))
    trace = rollout(jax.random.PRNGKey(seed), jnp.int32(piece))
    return to_recording(env, trace, name)
