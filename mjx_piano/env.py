"""The batched piano environment: pure `reset` and `step` on one env; `vmap` batches them.

One control step (20 Hz) = `substeps` MJX physics steps (5 ms each) under `lax.scan`, then key
states, reward terms, metrics and the next observation. Episodes last one piece; when one ends
(or the physics diverges) the env resets itself to the start of the same piece, and the finished
episode's means are kept in `last_episode`.

Action layout (physical units, clipped to the actuators' control ranges): the model's actuators
in order (self-playing keys if any, then the right hand's 19: 17 hand actuators as in
`hands.HAND_ACTUATORS` and the forearm slides tx, ty, then the left hand's 19), then sustain
(on when >= 0.5). Observation layout: see `mjx_piano.observation`.

Key dynamics (`SceneConfig.key_dynamics`): 'mjx' (default) steps the keys' hinge joints in MJX
with the hands; 'kernel' leaves them out of the MJX model and steps them with
`kernels.piano_keys` in the same substep loop, their state in `EnvState.keys`. Each substep the
kernel's fingertip-key contact gives the keys a torque and the fingertip bodies the opposite
force, written to `xfrc_applied` of those bodies before the MJX step (the env owns those rows).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from flax import struct
from mujoco import mjx

from kernels import piano_keys
from mjx_piano import metrics, rewards, warp_buffers
from mjx_piano.music.roll import PianoRoll
from mjx_piano.observation import ObservationLayout, goal_block
from mjx_piano.pieces import PieceBank, make_piece_bank
from mjx_piano.scene import piano
from mjx_piano.scene.builder import SceneConfig, build_spec
from mjx_piano.scene.index import SceneIndex, index_scene, kernel_key_params

SUSTAIN_THRESHOLD = 0.5
# Joint and key speeds (rad/s, m/s) beyond this count as a divergence, as non-finite values do.
# Playing stays far below it (fingers and keys < ~50 rad/s). A solver that loses hold of the
# constraints (one solver iteration under random actions) first grows speeds to 1e6 and beyond
# while still finite: PPO on the full scene saw episode energy terms of -1e12 to -1e22 before
# this bound, which would swamp the learner's batch.
DIVERGED_SPEED = 1e3


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Static environment settings (shape-defining; hashable).

    Attributes:
        scene: what to build.
        impl: MJX backend, 'jax' (CPU/GPU/TPU) or 'warp' (NVIDIA).
        substeps: physics steps per control step.
        lookahead: goal steps shown beyond the current one.
        fingering: fingering reward solver: 'none' (term = 0), 'exact' or 'sinkhorn'.
        observe_fingering: append the OT assignment of the next goal to the observation
            (per fingertip: vector to its assigned key target, and whether it has one).
        naconmax: impl='warp': contact slots shared by every env of a batch (MJX's meaning:
            the number of worlds is not known when the data is made). Required with
            impl='warp': `for_batch` sizes it (`warp_buffers.CONTACTS_PER_ENV` per env).
        njmax: impl='warp': constraint rows per env; None = every limit and
            `CONTACTS_PER_ENV` contacts (`warp_buffers.constraint_rows`), not MJX's default,
            which drops rows of this scene.
        random_start: training lever: an episode that starts by the env's own reset (after
            one ended) starts at a uniformly random control step of its piece; `reset` itself
            always starts at step 0, so an evaluation's first episode plays the whole piece.
        wrong_key_termination: training lever (RoboPianist's option): a step that presses a
            key the goal does not hold ends the episode as terminal (done, not truncated).
        episode_steps: training lever: episodes end (truncated) after this many control steps,
            or at the piece's end if sooner; with `random_start`, training plays random windows
            of the piece. 0 = whole pieces.
    """

    scene: SceneConfig = dataclasses.field(default_factory=SceneConfig)
    impl: str = "jax"
    substeps: int = 10
    lookahead: int = 10
    fingering: str = "exact"
    observe_fingering: bool = False
    naconmax: int | None = None
    njmax: int | None = None
    random_start: bool = False
    wrong_key_termination: bool = False
    episode_steps: int = 0

    def for_batch(self, batch: int) -> "EnvConfig":
        """These settings with Warp's contact slots sized for `batch` envs stepped together.

        Unchanged for impl='jax' or when `naconmax` is already set.
        """
        if self.impl != "warp" or self.naconmax is not None:
            return self
        naconmax = warp_buffers.contact_slots(self.scene.key_dynamics, batch)
        return dataclasses.replace(self, naconmax=naconmax)


@struct.dataclass
class EpisodeMetrics:
    """Per-episode metrics: running sums in `EnvState.episode`, means in `last_episode`.

    Attributes:
        f1, precision, recall, sustain_f1: key-press scores (sum or mean over steps).
        reward: total reward (sum or mean over steps).
        reward_terms: each reward term (sum or mean over steps).
        length: control steps of the episode, int32.
        diverged: 1 if the episode ended because the physics diverged, int32.
    """

    f1: jax.Array
    precision: jax.Array
    recall: jax.Array
    sustain_f1: jax.Array
    reward: jax.Array
    reward_terms: rewards.RewardTerms
    length: jax.Array
    diverged: jax.Array

    @classmethod
    def zeros(cls) -> "EpisodeMetrics":
        """An empty episode."""
        zero = jnp.zeros((), jnp.float32)
        izero = jnp.zeros((), jnp.int32)
        return cls(f1=zero, precision=zero, recall=zero, sustain_f1=zero, reward=zero,
                   reward_terms=rewards.RewardTerms.zeros(), length=izero, diverged=izero)

    def add(self, scores: metrics.StepScores, terms: rewards.RewardTerms) -> "EpisodeMetrics":
        """Adds one step's scores and reward terms to the running sums."""
        add = jax.tree_util.tree_map(jnp.add, self.reward_terms, terms)
        return self.replace(f1=self.f1 + scores.f1, precision=self.precision + scores.precision,
                            recall=self.recall + scores.recall,
                            sustain_f1=self.sustain_f1 + scores.sustain_f1,
                            reward=self.reward + terms.total(), reward_terms=add,
                            length=self.length + 1)

    def mean(self, diverged: jax.Array) -> "EpisodeMetrics":
        """Sums -> means over the episode's steps; records whether it diverged."""
        steps = jnp.maximum(self.length, 1).astype(jnp.float32)
        means = jax.tree_util.tree_map(
            lambda x: x / steps, (self.f1, self.precision, self.recall, self.sustain_f1,
                                  self.reward, self.reward_terms))
        f1, precision, recall, sustain_f1, reward, terms = means
        return self.replace(f1=f1, precision=precision, recall=recall, sustain_f1=sustain_f1,
                            reward=reward, reward_terms=terms,
                            diverged=diverged.astype(jnp.int32))


@struct.dataclass
class EnvState:
    """State of one env (batch it with `vmap`).

    Attributes:
        data: MJX physics state.
        keys: the keys' state with key_dynamics='kernel', None with 'mjx' (they are in `data`).
        piece: int32 [], index into the piece bank.
        t: int32 [], control step within the piece (the goal row being played next).
        obs: float32 [observation_size].
        reward: float32 [], reward of the last step.
        done: bool [], the last step ended an episode (the state was already reset).
        truncated: bool [], the episode ended by reaching the end of its piece.
        sustain: bool [], sustain pedal state.
        pressed: bool [K], keys pressed after the last step.
        reward_terms: the last step's reward terms.
        episode: running sums of the current episode.
        last_episode: means of the last finished episode.
        num_diverged: int32 [], divergences since the env was created.
        rng: PRNG key.
    """

    data: mjx.Data
    keys: piano_keys.KeyState | None
    piece: jax.Array
    t: jax.Array
    obs: jax.Array
    reward: jax.Array
    done: jax.Array
    truncated: jax.Array
    sustain: jax.Array
    pressed: jax.Array
    reward_terms: rewards.RewardTerms
    episode: EpisodeMetrics
    last_episode: EpisodeMetrics
    num_diverged: jax.Array
    rng: jax.Array


class PianoEnv:
    """The piano task over a bank of pieces. Pure `reset`/`step`; all ids resolved here once.

    Args:
        config: static settings.
        pieces: the pieces envs may play (a `PieceBank` row each).
    """

    def __init__(self, config: EnvConfig, pieces: Sequence[PianoRoll]):
        if config.substeps < 1 or config.lookahead < 0:
            raise ValueError(f"substeps must be >= 1 and lookahead >= 0, got {config}")
        if config.impl not in ("jax", "warp"):
            raise ValueError(f"impl must be 'jax' or 'warp', got {config.impl!r}")
        if config.impl == "warp" and config.naconmax is None:
            raise ValueError("impl='warp' needs EnvConfig.naconmax, the contact slots shared by "
                             "all envs of a batch (MJX's default, 48 in all, drops contacts): "
                             "use config.for_batch(num_envs)")
        if config.fingering not in ("none", "exact", "sinkhorn"):
            raise ValueError(f"fingering must be 'none', 'exact' or 'sinkhorn', got {config.fingering!r}")
        self.config = config
        self.mj_model: mujoco.MjModel = build_spec(config.scene).compile()
        self.index: SceneIndex = index_scene(self.mj_model, config.scene)
        self.model = warp_buffers.quiet_model(mjx.put_model(self.mj_model, impl=config.impl))
        mj_data = mujoco.MjData(self.mj_model)
        mujoco.mj_forward(self.mj_model, mj_data)
        self.initial_data = mjx.put_data(self.mj_model, mj_data, impl=config.impl,
                                         **_warp_sizes(config, self.mj_model))
        self.bank: PieceBank = make_piece_bank(pieces, config.scene.keys, config.lookahead)
        has_hands = len(self.index.fingertip_site) > 0
        if config.observe_fingering and (config.fingering == "none" or not has_hands):
            raise ValueError("observe_fingering needs hands and a fingering solver")
        self.layout = ObservationLayout(
            num_keys=self.index.num_keys,
            num_fingertips=len(self.index.fingertip_site),
            num_hand_joints=len(self.index.hand_qpos),
            lookahead=config.lookahead,
            fingering_targets=config.observe_fingering,
        )
        self.action_low = np.append(self.index.ctrl_low, 0.0).astype(np.float32)
        self.action_high = np.append(self.index.ctrl_high, 1.0).astype(np.float32)
        self._fingering = _make_fingering(config.fingering) if has_hands else None
        self.key_params: piano_keys.KeyParams | None = None
        if config.scene.key_dynamics == "kernel":
            self.key_params = kernel_key_params(config.scene)
            # Capsule radius and half-length of each fingertip [F, 2].
            self._tip_size = self.mj_model.geom_size[self.index.fingertip_geom, :2].astype(np.float32)

    @property
    def action_size(self) -> int:
        """Number of action dimensions: the model's actuators + sustain (39 for the full task)."""
        return int(self.action_low.shape[0])

    @property
    def observation_size(self) -> int:
        """Observation dimension (1144 for the full task)."""
        return self.layout.size

    @property
    def num_pieces(self) -> int:
        """Pieces in the bank."""
        return self.bank.num_pieces

    def reset(self, rng: jax.Array, piece: jax.Array | int) -> EnvState:
        """Starts an episode of `piece` at its first control step.

        Args:
            rng: PRNG key.
            piece: int32 [], index into the piece bank.

        Returns:
            The initial `EnvState`.
        """
        if isinstance(piece, (int, np.integer)) and not 0 <= piece < self.num_pieces:
            raise IndexError(f"piece index {piece} is outside the bank of {self.num_pieces} pieces")
        piece = jnp.asarray(piece, jnp.int32)
        t = jnp.zeros((), jnp.int32)
        sustain = jnp.zeros((), bool)
        data = self.initial_data
        keys = None if self.key_params is None else piano_keys.KeyState.at_rest(self.key_params)
        empty = EpisodeMetrics.zeros()
        return EnvState(
            data=data, keys=keys, piece=piece, t=t, obs=self._observe(data, keys, piece, t, sustain),
            reward=jnp.zeros((), jnp.float32), done=jnp.zeros((), bool),
            truncated=jnp.zeros((), bool), sustain=sustain,
            pressed=jnp.zeros((self.index.num_keys,), bool),
            reward_terms=rewards.RewardTerms.zeros(), episode=empty, last_episode=empty,
            num_diverged=jnp.zeros((), jnp.int32), rng=rng,
        )

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        """Advances one control step; resets the env when its episode ends or diverges.

        Args:
            state: the current state.
            action: float [action_size], physical units (see the module docstring).

        Returns:
            The next state (already reset if `done`).

        Raises:
            ValueError / TypeError: the action has the wrong shape or is not floating point.
        """
        action = self._clean_action(action)
        data, keys = self.simulate(state.data.replace(ctrl=action[:-1]), state.keys)
        finite = [jnp.all(jnp.isfinite(x)) for x in (data.qpos, data.qvel)]
        speeds = [data.qvel]
        if keys is not None:
            finite += [jnp.all(jnp.isfinite(keys.angle)), jnp.all(jnp.isfinite(keys.velocity))]
            speeds.append(keys.velocity)
        bounded = [jnp.all(jnp.abs(v) <= DIVERGED_SPEED) for v in speeds]
        diverged = ~jnp.all(jnp.stack(finite + bounded))
        sustain = action[-1] >= SUSTAIN_THRESHOLD
        goal = self.bank.goal_keys[state.piece, state.t]
        goal_sustain = self.bank.goal_sustain[state.piece, state.t]
        pressed = self.pressed_keys(data, keys)
        terms = self._reward_terms(data, keys, goal, pressed, sustain, goal_sustain)
        # A diverged env scores nothing this step, so no NaN reaches the learner's batch.
        terms = jax.tree_util.tree_map(lambda x: jnp.where(diverged, 0.0, x), terms)
        pressed = pressed & ~diverged
        scores = metrics.step_scores(pressed, goal, sustain, goal_sustain)
        episode = state.episode.add(scores, terms)
        t = state.t + 1
        ended = t >= self.bank.length[state.piece]
        if self.config.episode_steps:
            ended = ended | (episode.length >= self.config.episode_steps)
        truncated = ended & ~diverged
        done = truncated | diverged
        if self.config.wrong_key_termination:
            done = done | jnp.any(pressed & ~goal)
        rng, reset_rng = jax.random.split(state.rng)
        stepped = state.replace(
            data=data, keys=keys, t=t, obs=self._observe(data, keys, state.piece, t, sustain),
            sustain=sustain,
            pressed=pressed, episode=episode, rng=rng,
        )
        fresh = self.reset(reset_rng, state.piece)
        if self.config.random_start:
            fresh = self._start_at(fresh, jax.random.randint(
                reset_rng, (), 0, self.bank.length[state.piece]))
        fresh = fresh.replace(last_episode=episode.mean(diverged))
        next_state = jax.tree_util.tree_map(lambda a, b: jnp.where(done, a, b),
                                            fresh.replace(data=None), stepped.replace(data=None))
        # MJX's own merge: under impl='warp' the contact buffers are shared by every env of
        # the batch (naconmax), and a plain jnp.where would give each env a copy of them.
        next_state = next_state.replace(data=stepped.data.where(done, fresh.data))
        return next_state.replace(
            reward=terms.total(), done=done, truncated=truncated, reward_terms=terms,
            pressed=pressed, num_diverged=state.num_diverged + diverged.astype(jnp.int32),
        )

    def simulate(self, data: mjx.Data,
                 keys: piano_keys.KeyState | None) -> tuple[mjx.Data, piano_keys.KeyState | None]:
        """The physics of one control step: `substeps` MJX steps (and kernel key steps).

        Args:
            data: MJX state, `ctrl` already set.
            keys: the kernel's keys (key_dynamics='kernel') or None.

        Returns:
            (data, keys) one control step later.
        """
        if keys is None:
            data, _ = jax.lax.scan(lambda d, _: (mjx.step(self.model, d), None), data, None,
                                   length=self.config.substeps)
            return data, None

        def substep(carry, _):
            data, keys = carry
            contact = self._key_contact(data, keys)
            wrench = jnp.concatenate([contact.tip_force, contact.tip_torque], axis=-1)
            xfrc = data.xfrc_applied.at[self.index.fingertip_body].set(wrench)
            data = mjx.step(self.model, data.replace(xfrc_applied=xfrc))
            keys = piano_keys.step_keys(self.key_params, keys, contact.key_torque,
                                        float(self.mj_model.opt.timestep))
            return (data, keys), None

        (data, keys), _ = jax.lax.scan(substep, (data, keys), None, length=self.config.substeps)
        return data, keys

    def _key_contact(self, data: mjx.Data, keys: piano_keys.KeyState) -> piano_keys.ContactOutput:
        """The kernel's fingertip-key contact from the last computed kinematics of `data`."""
        index = self.index
        radius, half_length = self._tip_size[:, 0], self._tip_size[:, 1]
        centre = data.geom_xpos[index.fingertip_geom]  # [F, 3]
        axis = data.geom_xmat[index.fingertip_geom][:, :, 2]  # capsule axis, [F, 3]
        ends = centre[:, None] + jnp.array([-1.0, 1.0])[None, :, None] * (
            half_length[:, None, None] * axis[:, None])  # [F, 2, 3]
        # cvel = (angular, linear) at the subtree centre of mass of the body's root.
        cvel = data.cvel[index.fingertip_body]
        origin = data.subtree_com[index.fingertip_root]
        velocity = cvel[:, None, 3:] + jnp.cross(cvel[:, None, :3], ends - origin[:, None])
        return piano_keys.fingertip_contact(
            self.key_params, keys.angle, keys.velocity, ends, jnp.asarray(radius), velocity,
            data.xipos[index.fingertip_body])

    def key_angles(self, data: mjx.Data, keys: piano_keys.KeyState | None) -> jax.Array:
        """Key angles [K] (rad), from the key joints or the kernel's keys (`keys` not None)."""
        return data.qpos[self.index.key_qpos] if keys is None else keys.angle

    def pressed_keys(self, data: mjx.Data, keys: piano_keys.KeyState | None = None) -> jax.Array:
        """Keys within 0.5 deg of their full travel: bool [K]."""
        if keys is None and self.key_params is not None:
            raise ValueError("with key_dynamics='kernel' the key angles are in EnvState.keys")
        angle = self.key_angles(data, keys)
        return angle >= self.index.key_travel - piano.PRESS_THRESHOLD

    def key_points(self, data: mjx.Data, keys: piano_keys.KeyState | None) -> jax.Array:
        """The keys' target points, world frame [K, 3]."""
        if keys is None:
            return data.site_xpos[self.index.key_target_site]
        return piano_keys.key_points(self.key_params, keys.angle)

    def _clean_action(self, action: jax.Array) -> jax.Array:
        action = jnp.asarray(action)
        if action.shape != (self.action_size,):
            raise ValueError(
                f"action must have shape ({self.action_size},) for one env (vmap for a batch), "
                f"got {action.shape}"
            )
        if not jnp.issubdtype(action.dtype, jnp.floating):
            raise TypeError(f"action must be floating point, got dtype {action.dtype}")
        action = action.astype(jnp.float32)
        middle = (self.action_low + self.action_high) / 2.0
        action = jnp.where(jnp.isfinite(action), action, middle)
        return jnp.clip(action, self.action_low, self.action_high)

    def _reward_terms(self, data: mjx.Data, keys: piano_keys.KeyState | None, goal: jax.Array,
                      pressed: jax.Array, sustain: jax.Array,
                      goal_sustain: jax.Array) -> rewards.RewardTerms:
        index = self.index
        key_position = jnp.clip(self.key_angles(data, keys) / index.key_travel, 0.0, 1.0)
        hand = index.hand_actuators
        actuator_velocity = index.actuator_velocity_map @ data.qvel
        energy = rewards.energy_reward(data.actuator_force[hand], actuator_velocity)
        fingering = jnp.zeros((), jnp.float32)
        if self._fingering is not None:
            fingertips = data.site_xpos[index.fingertip_site]
            fingering, _ = self._fingering(fingertips, self.key_points(data, keys), goal)
        return rewards.RewardTerms(
            key_press=rewards.key_press_reward(key_position, goal, pressed),
            sustain=rewards.sustain_reward(sustain, goal_sustain),
            energy=energy,
            forearm=rewards.forearm_reward(forearms_overlap(self.index, data.geom_xpos)),
            fingering=fingering,
        )

    def evaluation_env(self) -> "PianoEnv":
        """This env without the training levers (`random_start`, `wrong_key_termination`,
        `episode_steps`), sharing its model and bank: evaluations play every piece whole."""
        plain = dataclasses.replace(self.config, random_start=False,
                                    wrong_key_termination=False, episode_steps=0)
        if plain == self.config:
            return self
        twin = copy.copy(self)
        twin.config = plain
        return twin

    def _start_at(self, state: EnvState, t: jax.Array) -> EnvState:
        """A fresh `state` moved to control step `t` of its piece (the hands and keys at rest)."""
        return state.replace(t=t, obs=self._observe(state.data, state.keys, state.piece, t,
                                                     state.sustain))

    @property
    def goal_size(self) -> int:
        """Size G of the observation's leading goal block ((lookahead + 1) * (K + 1))."""
        return self.layout.sizes()["goal"]

    def goal_observation(self, piece: jax.Array, t: jax.Array) -> jax.Array:
        """The goal block of the observation at control step `t` of `piece`: float32 [G]
        (`mjx_piano.observation.goal_block`)."""
        return goal_block(self.bank.goal_keys, self.bank.goal_sustain, piece, t,
                          self.config.lookahead + 1)

    def _observe(self, data: mjx.Data, keys: piano_keys.KeyState | None, piece: jax.Array,
                 t: jax.Array, sustain: jax.Array) -> jax.Array:
        key_state = jnp.clip(self.key_angles(data, keys) / self.index.key_travel, 0.0, 1.0)
        fingertips = data.site_xpos[self.index.fingertip_site]
        parts = [
            self.goal_observation(piece, t),
            key_state,
            sustain[None],
            fingertips.reshape(-1),
            data.qpos[self.index.hand_qpos],
        ]
        if self.config.observe_fingering:
            goal = self.bank.goal_keys[piece, t]
            parts.append(self._fingering_targets(self.key_points(data, keys), fingertips, goal))
        return jnp.concatenate([p.astype(jnp.float32) for p in parts])

    def _fingering_targets(self, key_points: jax.Array, fingertips: jax.Array,
                           goal: jax.Array) -> jax.Array:
        """[4 F]: per fingertip, the vector to its assigned goal key's target, then 0/1 assigned."""
        _, finger_of_key = self._fingering(fingertips, key_points, goal)
        one_hot = finger_of_key[:, None] == jnp.arange(fingertips.shape[0])  # [K, F]
        has_key = jnp.any(one_hot, axis=0)
        target = one_hot.astype(jnp.float32).T @ key_points  # [F, 3]
        vector = jnp.where(has_key[:, None], target - fingertips, 0.0)
        return jnp.concatenate([vector.reshape(-1), has_key.astype(jnp.float32)])


def forearms_overlap(index: SceneIndex, geom_xpos: jax.Array) -> jax.Array:
    """Whether the two forearm boxes overlap: a separating-axis test on their fixed axes.

    It needs no contact list, so it reads the same under every MJX backend (MJX-Warp keeps its
    contacts outside the per-env state). False when the scene has fewer than two hands.

    Args:
        index: the scene's static indices.
        geom_xpos: geom positions [ngeom, 3].

    Returns:
        bool [].
    """
    geoms = index.forearm_geoms
    if geoms.size != 2:
        return jnp.zeros((), bool)
    offset = geom_xpos[geoms[0]] - geom_xpos[geoms[1]]
    return jnp.all(jnp.abs(jnp.asarray(index.forearm_axes) @ offset) < index.forearm_reach)


def _warp_sizes(config: EnvConfig, model: mujoco.MjModel) -> dict[str, int]:
    """`put_data`'s Warp buffer sizes for `config` (none for impl='jax')."""
    if config.impl != "warp":
        return {}
    per_env = warp_buffers.CONTACTS_PER_ENV[config.scene.key_dynamics]
    njmax = config.njmax or warp_buffers.constraint_rows(model, per_env)
    return {"naconmax": config.naconmax, "njmax": njmax}


def _make_fingering(solver: str):
    """`(fingertips [F,3], key_points [K,3], active [K]) -> (reward [], finger of key [K])`
    for `solver`, or None when disabled."""
    if solver == "none":
        return None
    from kernels import fingering  # the OT kernel; imported only when used

    config = fingering.FingeringConfig(solver=solver)

    def reward(fingertips: jax.Array, key_points: jax.Array,
               active: jax.Array) -> tuple[jax.Array, jax.Array]:
        value, assignment = fingering.fingering_reward(fingertips, key_points, active, config)
        return value.astype(jnp.float32), assignment

    return reward
