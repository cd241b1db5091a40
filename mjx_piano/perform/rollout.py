"""Roll out one env and keep everything a viewer or listener needs, per control step.

Who plays: the scripted perfect player, or a trained specialist loaded by `load_policy`.

`make_rollout` builds one pure scan over `num_steps` control steps of a single env, driven by the
scripted perfect player (`mjx_piano.scripted.scripted_step`) or by a policy's action function;
jit it once and call it for any piece of the env's bank. `to_performance` moves the result to the
host as a `Performance` over all 88 keys (reduced scenes build only some keys; the others are
never pressed and never wanted).

`load_policy(CHECKPOINT, piece)` is the one entry point `mjx-piano perform --policy CHECKPOINT`
uses. CHECKPOINT is a training run's output folder (`--out` of `mjx-piano train specialists`),
its `checkpoints` folder, or one `checkpoints/<iteration>` folder (default: the newest). It reads
the run's stored `SpecialistConfig`, rebuilds the same env and PPO networks, restores the
agent-batched `TrainState` onto one local device and keeps the agent that trained on `piece`. The
action is the policy's mode (as in `PPO.evaluate`), mapped to physical units.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mjx_piano.env import EnvState, PianoEnv
from mjx_piano.music.roll import CONTROL_HZ, NUM_KEYS
from mjx_piano.perform.render_scene import render_qpos
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
class Performance:
    """One performance on the host, over all 88 keys (index 0 = A0 = MIDI 21).

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

    def advance(state: EnvState) -> EnvState:
        if state_policy is not None:
            return env.step(state, state_policy(state))
        if action_fn is None:
            return scripted_step(env, state)
        return env.step(state, action_fn(state.obs))

    def body(carry: tuple[EnvState, jax.Array, jax.Array], _: None):
        state, f1, finished = carry
        goal = env.bank.goal_keys[state.piece, state.t]
        goal_sustain = env.bank.goal_sustain[state.piece, state.t]
        previous = (state.data.qpos, env.key_angles(state.data, state.keys))
        state = advance(state)
        # On the episode's last step the env has already reset itself; show the last real pose
        # (the step before it) rather than the start pose.
        qpos, angles = (jnp.where(state.done, before, now) for before, now in
                        zip(previous, (state.data.qpos, env.key_angles(state.data, state.keys))))
        first = state.done & ~finished
        f1 = jnp.where(first, state.last_episode.f1, f1)
        fingers = jnp.where(state.done, -1, played_fingers(env, state))
        record = (qpos, angles, state.pressed, state.sustain, goal, goal_sustain, state.done,
                  fingers)
        return (state, f1, finished | state.done), record

    def rollout(rng: jax.Array, piece: jax.Array) -> RolloutTrace:
        start = env.reset(rng, piece)
        carry = (start, jnp.zeros((), jnp.float32), jnp.zeros((), bool))
        (state, f1, finished), records = jax.lax.scan(body, carry, None, length=num_steps)
        # Unfinished run: score the steps played so far.
        partial = state.episode.f1 / jnp.maximum(state.episode.length, 1).astype(jnp.float32)
        qpos, angles, pressed, sustain, goal, goal_sustain, done, fingers = records
        return RolloutTrace(qpos=qpos, key_angles=angles, pressed=pressed, sustain=sustain,
                            goal=goal, goal_sustain=goal_sustain, done=done, fingers=fingers,
                            f1=jnp.where(finished, f1, partial))

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


def to_performance(env: PianoEnv, trace: RolloutTrace, name: str) -> Performance:
    """Moves a trace to the host, spreading the env's K keys over all 88.

    Args:
        env: the env the trace came from (its `index.keys` maps K -> 88).
        trace: the rollout's record.
        name: the piece's name.

    Returns:
        The `Performance`.
    """
    trace = jax.device_get(trace)
    keys = np.asarray(env.index.keys)

    def widen(x: np.ndarray, fill=False) -> np.ndarray:
        full = np.full((x.shape[0], NUM_KEYS), fill, np.asarray(x).dtype)
        full[:, keys] = x
        return full

    return Performance(
        name=name, qpos=render_qpos(env, trace.qpos, trace.key_angles),
        pressed=widen(trace.pressed),
        sustain=np.asarray(trace.sustain, bool), goal=widen(trace.goal),
        goal_sustain=np.asarray(trace.goal_sustain, bool), f1=float(trace.f1),
        fingers=widen(np.asarray(trace.fingers, np.int32), -1))


def perform(env: PianoEnv, piece: int, name: str, num_steps: int | None = None,
            action_fn: ActionFn | None = None, seed: int = 0,
            state_policy: StatePolicy | None = None) -> Performance:
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
        The `Performance`.
    """
    steps = int(env.bank.length[piece]) if num_steps is None else num_steps
    rollout = jax.jit(make_rollout(env, steps, action_fn, state_policy))
    trace = rollout(jax.random.PRNGKey(seed), jnp.int32(piece))
    return to_performance(env, trace, name)


@dataclasses.dataclass(frozen=True)
class LoadedPolicy:
    """A policy ready to roll out.

    Attributes:
        env: the env it was trained in (same scene and piece bank).
        piece: bank index of the requested piece in that env.
        piece_name: the piece's name.
        action_fn: `obs [O] -> action [A]` (physical units; jittable).
        agent: which agent of the run it is.
        iteration: the checkpoint's iteration.
    """

    env: PianoEnv
    piece: int
    piece_name: str
    action_fn: ActionFn
    agent: int
    iteration: int


def split_checkpoint_path(path: str) -> tuple[str, int | None]:
    """(run output folder, iteration or None for the newest) of a CHECKPOINT argument."""
    path = os.path.abspath(path.rstrip("/"))
    base, parent = os.path.basename(path), os.path.dirname(path)
    if base.isdigit() and os.path.basename(parent) == "checkpoints":
        return os.path.dirname(parent), int(base)
    if base == "checkpoints":
        return parent, None
    return path, None


def load_policy(checkpoint: str, piece_name: str | None) -> LoadedPolicy:
    """Loads the agent of a specialist run that plays `piece_name`.

    Args:
        checkpoint: run folder, its `checkpoints` folder, or one `checkpoints/<iteration>`.
        piece_name: a piece of the run; None = the first agent's first piece.

    Returns:
        The `LoadedPolicy`.

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: the run did not train on `piece_name` (the message lists its pieces).
    """
    from train import envs
    from train.checkpoint import Checkpointer
    from train.config import learner_config
    from train.loop import assign_pieces
    from train.parallel import get_trainer, make_mesh

    out, iteration = split_checkpoint_path(checkpoint)
    if not os.path.isdir(os.path.join(out, "checkpoints")):
        raise FileNotFoundError(f"no checkpoints folder in {out}")
    checkpointer = Checkpointer(out)
    try:
        iteration = checkpointer.latest_step() if iteration is None else iteration
        if iteration is None:
            raise FileNotFoundError(f"no complete checkpoint in {checkpointer.directory}")
        config = checkpointer.stored_config(iteration)
        if config.env.name == "toy":
            raise ValueError(f"the run in {out} trained on the 'toy' env; perform plays runs "
                             "of the piano envs (piano, piano-keys)")
        loaded = envs.make_env(config.env)
        agents = config.run.agents or len(loaded.piece_ids)
        learner_settings = learner_config(config)
        agent_pieces, _ = assign_pieces(loaded.piece_ids, agents, learner_settings.num_envs)
        # One device of this machine, whatever mesh the run trained on: only one agent plays.
        mesh = make_mesh((1, 1), jax.devices()[:1])
        trainer = get_trainer(loaded.base, learner_settings, mesh,
                              int(agent_pieces.shape[1]), int(loaded.episode_length))
        state = checkpointer.restore(iteration, trainer.abstract_state(agents))
    finally:
        checkpointer.close()
    name = loaded.piece_names[0] if piece_name is None else piece_name
    if name not in loaded.piece_names:
        raise ValueError(f"the run in {out} did not train on {name!r}; its pieces: "
                         f"{list(loaded.piece_names)}")
    piece = loaded.piece_ids[loaded.piece_names.index(name)]
    agent = int(np.flatnonzero((agent_pieces == piece).any(axis=1))[0])
    # The agent's policy alone (MJX-Warp env states hold buffers without an agent axis).
    learner = trainer.learner
    params, normalizer = jax.device_get(jax.tree_util.tree_map(
        lambda x: x[agent], (learner.policy_params(state.params), state.normalizer)))
    action_fn = functools.partial(learner.act, params, normalizer)
    return LoadedPolicy(env=loaded.env, piece=int(piece), piece_name=name, action_fn=action_fn,
                        agent=agent, iteration=int(iteration))
