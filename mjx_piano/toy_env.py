"""A tiny, cheap, learnable stand-in for the piano env with the same protocol.

"Press the right keys": `num_keys` self-actuated keys and a sustain pedal. Each piece is a
sequence of chords (random key subsets, each held `chord_length` control steps) drawn from a
per-piece seed; the observation shows the goal now and `lookahead` steps ahead. The action
sets each key's target depth in [0, 1] (physical bounds `action_low`/`action_high`); a key
moves `press_gain` of the way to its target per step and counts as pressed at depth >=
`press_threshold`. Reward terms and the F1 metric are those of the piano task
(`mjx_piano.rewards`, `mjx_piano.metrics`), so a policy that plays well here scores the same way.

Protocol (same as `mjx_piano.env.PianoEnv`): unbatched `reset(rng, piece)` / `step(state,
action)`; on the step that ends an episode `done` (and `truncated`) is set and the state has
already been reset to the start of the same piece, with the finished episode's means in
`last_episode`.
"""

from __future__ import annotations

import copy
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mjx_piano import metrics, rewards
from mjx_piano.observation import goal_block
from mjx_piano.pieces import PieceBank, bank_shape

SUSTAIN_THRESHOLD = 0.5
ENERGY_COEF = 1e-2


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    """Static settings of the toy task (hashable).

    Attributes:
        num_keys: keys K.
        catalogue_size: pieces in the catalogue, named toy-00, toy-01, ...
        episode_length: control steps per piece.
        chord_length: control steps each chord is held.
        key_probability: chance that a key belongs to a chord.
        sustain_probability: chance that a chord wants the sustain pedal.
        lookahead: goal steps shown beyond the current one.
        press_gain: fraction of the way to the target a key moves per step.
        press_threshold: depth at which a key counts as pressed.
    """

    num_keys: int = 4
    catalogue_size: int = 16
    episode_length: int = 32
    chord_length: int = 4
    key_probability: float = 0.4
    sustain_probability: float = 0.3
    lookahead: int = 2
    press_gain: float = 0.8
    press_threshold: float = 0.7


def piece_name(index: int) -> str:
    """Name of catalogue piece `index`."""
    return f"toy-{index:02d}"


@struct.dataclass
class ToyRewardTerms:
    """One step's reward terms (float32 scalars); the reward is their sum."""

    key_press: jax.Array
    sustain: jax.Array
    energy: jax.Array

    @classmethod
    def zeros(cls) -> "ToyRewardTerms":
        """All terms zero."""
        zero = jnp.zeros((), jnp.float32)
        return cls(key_press=zero, sustain=zero, energy=zero)

    def total(self) -> jax.Array:
        """Sum of the terms, float32 []."""
        return self.key_press + self.sustain + self.energy


@struct.dataclass
class ToyEpisodeMetrics:
    """Running sums (in `episode`) or means (in `last_episode`) over an episode's steps."""

    f1: jax.Array
    precision: jax.Array
    recall: jax.Array
    sustain_f1: jax.Array
    reward: jax.Array
    reward_terms: ToyRewardTerms
    length: jax.Array

    @classmethod
    def zeros(cls) -> "ToyEpisodeMetrics":
        """An empty episode."""
        zero = jnp.zeros((), jnp.float32)
        return cls(f1=zero, precision=zero, recall=zero, sustain_f1=zero, reward=zero,
                   reward_terms=ToyRewardTerms.zeros(), length=jnp.zeros((), jnp.int32))

    def add(self, scores: metrics.StepScores, terms: ToyRewardTerms) -> "ToyEpisodeMetrics":
        """Adds one step."""
        return ToyEpisodeMetrics(
            f1=self.f1 + scores.f1, precision=self.precision + scores.precision,
            recall=self.recall + scores.recall, sustain_f1=self.sustain_f1 + scores.sustain_f1,
            reward=self.reward + terms.total(),
            reward_terms=jax.tree_util.tree_map(jnp.add, self.reward_terms, terms),
            length=self.length + 1)

    def mean(self) -> "ToyEpisodeMetrics":
        """Sums -> per-step means (length stays a count)."""
        steps = jnp.maximum(self.length, 1).astype(jnp.float32)
        means = jax.tree_util.tree_map(lambda x: x / steps, (
            self.f1, self.precision, self.recall, self.sustain_f1, self.reward, self.reward_terms))
        f1, precision, recall, sustain_f1, reward, terms = means
        return ToyEpisodeMetrics(f1=f1, precision=precision, recall=recall,
                                 sustain_f1=sustain_f1, reward=reward, reward_terms=terms,
                                 length=self.length)


@struct.dataclass
class ToyState:
    """State of one toy env.

    Attributes:
        position: float32 [K], key depths in [0, 1].
        piece: int32 [], bank index.
        t: int32 [], control step within the piece.
        obs: float32 [observation_size].
        reward: float32 [].
        done, truncated: bool [], the last step ended an episode (already reset).
        reward_terms: the last step's terms.
        episode: running sums of the current episode.
        last_episode: means of the last finished episode.
        rng: PRNG key (unused by the dynamics; kept for protocol parity).
    """

    position: jax.Array
    piece: jax.Array
    t: jax.Array
    obs: jax.Array
    reward: jax.Array
    done: jax.Array
    truncated: jax.Array
    reward_terms: ToyRewardTerms
    episode: ToyEpisodeMetrics
    last_episode: ToyEpisodeMetrics
    rng: jax.Array


def make_goal_bank(config: ToyConfig) -> tuple[np.ndarray, np.ndarray]:
    """Goals of every catalogue piece, padded with silence for the lookahead.

    Returns:
        (keys bool [P, T + lookahead + 1, K], sustain bool [P, T + lookahead + 1]).
    """
    width = config.episode_length + config.lookahead + 1
    chords = -(-config.episode_length // config.chord_length)
    keys = np.zeros((config.catalogue_size, width, config.num_keys), bool)
    sustain = np.zeros((config.catalogue_size, width), bool)
    for p in range(config.catalogue_size):
        rng = np.random.default_rng(1000 + p)
        chord_keys = rng.random((chords, config.num_keys)) < config.key_probability
        chord_sustain = rng.random(chords) < config.sustain_probability
        keys[p, : config.episode_length] = np.repeat(chord_keys, config.chord_length, 0)[
            : config.episode_length]
        sustain[p, : config.episode_length] = np.repeat(chord_sustain, config.chord_length)[
            : config.episode_length]
    return keys, sustain


class ToyPianoEnv:
    """The toy task over its whole catalogue (piece i = `piece_name(i)`).

    Args:
        config: static settings.
    """

    def __init__(self, config: ToyConfig):
        self.config = config
        keys, sustain = make_goal_bank(config)
        lengths = np.full(config.catalogue_size, config.episode_length, np.int32)
        # Bound to its whole catalogue: piece i = `piece_name(i)`.
        self.bank = PieceBank(goal_keys=jnp.asarray(keys), goal_sustain=jnp.asarray(sustain),
                              length=jnp.asarray(lengths))
        self.piece_names = tuple(piece_name(i) for i in range(config.catalogue_size))
        self.episode_length = config.episode_length
        self.action_low = np.zeros(config.num_keys + 1, np.float32)
        self.action_high = np.ones(config.num_keys + 1, np.float32)
        self.action_size = config.num_keys + 1
        self.observation_size = (config.lookahead + 1) * (config.num_keys + 1) + config.num_keys
        self.num_pieces = config.catalogue_size
        self.base: ToyPianoEnv = self  # the catalogue env every bound view shares

    @property
    def goal_keys(self) -> jax.Array:
        """bool [P, T + lookahead + 1, K], the bound bank's goals."""
        return self.bank.goal_keys

    @property
    def goal_sustain(self) -> jax.Array:
        """bool [P, T + lookahead + 1], the bound bank's sustain goals."""
        return self.bank.goal_sustain

    def bank_shape(self, num_pieces: int, max_steps: int) -> PieceBank:
        """The abstract bank of `num_pieces` pieces (every toy piece has the same length)."""
        return bank_shape(num_pieces, max_steps, self.config.lookahead, self.config.num_keys)

    def bind(self, bank: PieceBank) -> "ToyPianoEnv":
        """This env playing the pieces of `bank` (as `PianoEnv.bind`)."""
        twin = copy.copy(self)
        twin.bank = jax.tree_util.tree_map(jnp.asarray, bank)
        twin.num_pieces = int(twin.bank.length.shape[0])
        twin.base = self.base
        return twin

    @staticmethod
    def catalogue(config: ToyConfig) -> tuple[str, ...]:
        """Names of the catalogue's pieces (no env is built)."""
        return tuple(piece_name(i) for i in range(config.catalogue_size))

    def reset(self, rng: jax.Array, piece: jax.Array) -> ToyState:
        """Starts `piece` (int32 []) with every key up."""
        piece = jnp.asarray(piece, jnp.int32)
        position = jnp.zeros((self.config.num_keys,), jnp.float32)
        t = jnp.zeros((), jnp.int32)
        empty = ToyEpisodeMetrics.zeros()
        false = jnp.zeros((), bool)
        return ToyState(position=position, piece=piece, t=t,
                        obs=self._observe(position, piece, t),
                        reward=jnp.zeros((), jnp.float32), done=false, truncated=false,
                        reward_terms=ToyRewardTerms.zeros(), episode=empty, last_episode=empty,
                        rng=rng)

    def step(self, state: ToyState, action: jax.Array) -> ToyState:
        """One control step; action float32 [K + 1] in physical units (key targets, sustain)."""
        action = jnp.clip(action.astype(jnp.float32), self.action_low, self.action_high)
        target, pedal = action[:-1], action[-1]
        position = state.position + self.config.press_gain * (target - state.position)
        pressed = position >= self.config.press_threshold
        sustain = pedal >= SUSTAIN_THRESHOLD
        goal = self.goal_keys[state.piece, state.t]
        goal_sustain = self.goal_sustain[state.piece, state.t]
        terms = ToyRewardTerms(
            key_press=rewards.key_press_reward(position, goal, pressed),
            sustain=rewards.sustain_reward(sustain, goal_sustain),
            energy=-ENERGY_COEF * jnp.sum(jnp.abs(target - state.position)),
        )
        scores = metrics.step_scores(pressed, goal, sustain, goal_sustain)
        episode = state.episode.add(scores, terms)
        t = state.t + 1
        done = t >= self.config.episode_length
        rng, reset_rng = jax.random.split(state.rng)
        stepped = state.replace(position=position, t=t,
                                obs=self._observe(position, state.piece, t), episode=episode,
                                rng=rng)
        fresh = self.reset(reset_rng, state.piece).replace(last_episode=episode.mean())
        next_state = jax.tree_util.tree_map(lambda a, b: jnp.where(done, a, b), fresh, stepped)
        return next_state.replace(reward=terms.total(), done=done, truncated=done,
                                  reward_terms=terms)

    @property
    def goal_size(self) -> int:
        """Size G of the observation's leading goal block ((lookahead + 1) * (K + 1))."""
        return (self.config.lookahead + 1) * (self.config.num_keys + 1)

    def goal_observation(self, piece: jax.Array, t: jax.Array) -> jax.Array:
        """The goal block of the observation at step `t` of `piece`: float32 [G]."""
        return goal_block(self.goal_keys, self.goal_sustain, piece, t, self.config.lookahead + 1)

    def _observe(self, position: jax.Array, piece: jax.Array, t: jax.Array) -> jax.Array:
        return jnp.concatenate([self.goal_observation(piece, t), position])
