"""The batched piano environment: pure `reset` and `step` on one env; `vmap` batches them.

One control step (20 Hz) = `substeps` MJX physics steps (5 ms each) under `lax.scan`, then key
states, reward terms, metrics and the next observation. Episodes last one piece; when one ends
(or the physics diverges) the env resets itself to the start of the same piece, and the finished
episode's means are kept in `last_episode`.

Action layout (physical units, clipped to the actuators' control ranges): the model's actuators
in order (self-playing keys if any, then the right hand's 19: 17 hand actuators as in
`hands.HAND_ACTUATORS` and the forearm slides tx, ty, then the left hand's 19), then sustain
(on when >= 0.5). Observation layout: see `mjx_piano.observation`.

This module is the task (goal, rewards, metrics, observation, auto-reset); the physics of a
control step, with either key dynamics ('mjx' hinges or the 'kernel' keys, whose state is
`EnvState.keys`), is `mjx_piano.physics`.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from mujoco import mjx

from kernels import piano_keys
from mjx_piano import metrics, rewards, warp_buffers
from mjx_piano.defaults import IMPLS
from mjx_piano.music.roll import PianoRoll
from mjx_piano.observation import ObservationLayout, fingering_targets, goal_block
from mjx_piano.physics import Physics, forearms_overlap
from mjx_piano.pieces import PieceBank, bank_shape, make_piece_bank
from mjx_piano.scene.builder import SceneConfig

SUSTAIN_THRESHOLD = 0.5

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
        curriculum_first_steps, curriculum_env_steps: training lever, the curriculum over clip
            length: training episodes end after `curriculum_first_steps` control steps at
            first, a limit the learner raises linearly to whole pieces over the agent's first
            `curriculum_env_steps` env steps (`train.curriculum`); 0 = off.
        reward: the reward terms' weights and bounds (`mjx_piano.rewards.RewardConfig`).
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
    curriculum_first_steps: int = 0
    curriculum_env_steps: int = 0
    reward: rewards.RewardConfig = rewards.DEFAULT_REWARD

    def for_batch(self, batch: int) -> "EnvConfig":
        """These settings with Warp's contact slots sized for `batch` envs stepped together.

        Unchanged for impl='jax' or when `naconmax` is already set.
        """
        if self.impl != "warp" or self.naconmax is not None:
            return self
        naconmax = warp_buffers.contact_slots(self.scene.key_dynamics, batch)
        return dataclasses.replace(self, naconmax=naconmax)


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
    episode: metrics.EpisodeMetrics
    last_episode: metrics.EpisodeMetrics
    num_diverged: jax.Array
    rng: jax.Array


class PianoEnv:
    """The piano task. Pure `reset`/`step`; all ids resolved here once.

    The pieces are data, not part of the env: `reset` and `step` read the `PieceBank` the env
    is bound to (`bind`, a shallow view). Training binds each agent's own bank inside its jitted
    functions, so the compiled step holds no goals and serves any pieces of the same shapes.

    Args:
        config: static settings.
        pieces: for convenience, the pieces to bind at once (`bind(make_bank(pieces))`); none
            gives an unbound env.
    """

    def __init__(self, config: EnvConfig, pieces: Sequence[PianoRoll] = ()):
        if config.substeps < 1 or config.lookahead < 0:
            raise ValueError(f"substeps must be >= 1 and lookahead >= 0, got {config}")
        if config.impl not in IMPLS:
            raise ValueError(f"impl must be one of {list(IMPLS)}, got {config.impl!r}")
        if config.impl == "warp" and config.naconmax is None:
            raise ValueError("impl='warp' needs EnvConfig.naconmax, the contact slots shared by "
                             "all envs of a batch (MJX's default, 48 in all, drops contacts): "
                             "use config.for_batch(num_envs)")
        if config.fingering not in ("none", "exact", "sinkhorn"):
            raise ValueError(f"fingering must be 'none', 'exact' or 'sinkhorn', got {config.fingering!r}")
        self.config = config
        self.physics = Physics(config.scene, config.impl, config.substeps, config.naconmax,
                               config.njmax)
        physics = self.physics
        self.mj_model, self.index, self.model = physics.mj_model, physics.index, physics.model
        self.initial_data, self.key_params = physics.initial_data, physics.key_params
        # The physics' read-outs, under the names callers know.
        self.simulate, self.key_angles = physics.simulate, physics.key_angles
        self.pressed_keys, self.key_points = physics.pressed_keys, physics.key_points
        self._bank: PieceBank | None = None
        self.base: PianoEnv = self  # the unbound env every bound view shares
        has_hands = len(self.index.fingertip_site) > 0
        if config.observe_fingering and (config.fingering == "none" or not has_hands):
            raise ValueError("observe_fingering needs hands and a fingering solver")
        self.layout = ObservationLayout(
            num_keys=self.index.num_keys, num_fingertips=len(self.index.fingertip_site),
            num_hand_joints=len(self.index.hand_qpos), lookahead=config.lookahead,
            fingering_targets=config.observe_fingering)
        self.action_low = np.append(self.index.ctrl_low, 0.0).astype(np.float32)
        self.action_high = np.append(self.index.ctrl_high, 1.0).astype(np.float32)
        self._fingering = (rewards.fingering_solver(config.fingering, config.reward)
                           if has_hands else None)
        if pieces:
            self._bank = _device_bank(self.make_bank(pieces))

    def make_bank(self, pieces: Sequence[PianoRoll]) -> PieceBank:
        """The bank of `pieces` over this scene's keys (host arrays; row i = pieces[i])."""
        return make_piece_bank(pieces, self.config.scene.keys, self.config.lookahead)

    def bank_shape(self, num_pieces: int, max_steps: int) -> PieceBank:
        """The abstract bank of `num_pieces` pieces of at most `max_steps` control steps."""
        return bank_shape(num_pieces, max_steps, self.config.lookahead, self.index.num_keys)

    def bind(self, bank: PieceBank) -> "PianoEnv":
        """This env playing the pieces of `bank` (host, device or traced arrays): a shallow
        view sharing the model; call it inside a jitted function on the function's argument
        so that the bank stays data."""
        twin = copy.copy(self)
        twin._bank = _device_bank(bank)
        twin.base = self.base
        return twin

    @property
    def bank(self) -> PieceBank:
        """The bound piece bank.

        Raises:
            ValueError: the env is not bound to one.
        """
        if self._bank is None:
            raise ValueError("this env is not bound to a piece bank: env.bind(env.make_bank("
                             "rolls)) (training binds each agent's bank in its jitted step)")
        return self._bank

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
        """Pieces in the bound bank."""
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
        keys = self.physics.keys_at_rest()
        empty = metrics.EpisodeMetrics.zeros()
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
        diverged = self.physics.diverged(data, keys)
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
        # The auto-reset: the next state is the stepped one, or where `done` the start of the
        # same piece (`reset`'s state); the observation is made once, from the chosen inputs.
        start = jnp.zeros((), jnp.int32)
        if self.config.random_start:
            start = jax.random.randint(reset_rng, (), 0, self.bank.length[state.piece])
        keys = None if keys is None else jax.tree_util.tree_map(
            lambda a, b: jnp.where(done, a, b), self.physics.keys_at_rest(), keys)
        # MJX's own merge: under impl='warp' the contact buffers are shared by every env of
        # the batch (naconmax), and a plain jnp.where would give each env a copy of them.
        data = data.where(done, self.initial_data)
        t = jnp.where(done, start, t)
        sustain = sustain & ~done

        def pick(fresh: metrics.EpisodeMetrics,
                 stepped: metrics.EpisodeMetrics) -> metrics.EpisodeMetrics:
            return jax.tree_util.tree_map(lambda a, b: jnp.where(done, a, b), fresh, stepped)

        return state.replace(
            data=data, keys=keys, t=t, obs=self._observe(data, keys, state.piece, t, sustain),
            reward=terms.total(), done=done, truncated=truncated, sustain=sustain,
            pressed=pressed, reward_terms=terms,
            episode=pick(metrics.EpisodeMetrics.zeros(), episode),
            last_episode=pick(episode.mean(diverged), state.last_episode),
            num_diverged=state.num_diverged + diverged.astype(jnp.int32),
            rng=jnp.where(done, reset_rng, rng),
        )

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
        actuator_velocity = index.actuator_velocity_map @ data.qvel
        reward = self.config.reward
        fingering = jnp.zeros((), jnp.float32)
        if self._fingering is not None:
            fingertips = data.site_xpos[index.fingertip_site]
            fingering, _ = self._fingering(fingertips, self.key_points(data, keys), goal)
        return rewards.RewardTerms(
            key_press=rewards.key_press_reward(key_position, goal, pressed, reward),
            sustain=rewards.sustain_reward(sustain, goal_sustain, reward),
            energy=rewards.energy_reward(data.actuator_force[index.hand_actuators],
                                         actuator_velocity, reward),
            forearm=rewards.forearm_reward(forearms_overlap(self.index, data.geom_xpos), reward),
            fingering=fingering)

    def evaluation_env(self) -> "PianoEnv":
        """This env without the training levers (`random_start`, `wrong_key_termination`,
        `episode_steps`, the curriculum), sharing its model and bank: evaluations play every
        piece whole."""
        plain = dataclasses.replace(self.config, random_start=False, wrong_key_termination=False,
                                    episode_steps=0, curriculum_first_steps=0,
                                    curriculum_env_steps=0)
        if plain == self.config:
            return self
        base = copy.copy(self.base)
        base.config = plain
        base.base = base
        if self._bank is None:
            return base
        twin = copy.copy(base)
        twin._bank = self._bank
        return twin

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
        blocks = {"goal": self.goal_observation(piece, t), "key_state": key_state,
                  "sustain": sustain, "fingertips": fingertips,
                  "hand_state": data.qpos[self.index.hand_qpos]}
        if self.config.observe_fingering:
            key_points = self.key_points(data, keys)
            _, finger_of_key = self._fingering(fingertips, key_points,
                                               self.bank.goal_keys[piece, t])
            blocks["fingering"] = fingering_targets(finger_of_key, key_points, fingertips)
        return self.layout.assemble(blocks)


def _device_bank(bank: PieceBank) -> PieceBank:
    """`bank` with jax array leaves (tracers stay tracers)."""
    return jax.tree_util.tree_map(jnp.asarray, bank)
