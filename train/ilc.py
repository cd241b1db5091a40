"""Iterative learning control (ILC) on the IK pianist: a per-clip correction table, learned.

A specialist here is the IK pianist (`mjx_piano.ik_pianist`) plus a table of fingertip-target
offsets, one per control step and fingertip, float32 [T, F, 3] (m). Evaluation plays the clip
from its first step, as every specialist's does; the env and the controller are deterministic,
so the same table plays the same way each time. Learning repeats rollouts of the whole clip:

1. `correction` reads one rollout and says, per step and fingertip, which way the target
   should move: a goal key missed by its OT finger moves that finger's target along the
   keyboard by its miss (more than `lateral_tolerance` off) or deeper (`press_deeper`); a key
   pressed that should not be moves the nearest fingertip toward its own goal key, or lifts it
   (`lift`) if it has none. Each correction is repeated `lead` times on the step before (the
   servos lag about a step).
2. `proposals` turns it into candidate tables for one window of steps (`window`): the
   correction at several gains, its lateral and vertical parts alone, and Gaussian noise on the
   window's erring fingers (for errors the correction's direction does not fix; one draw, or
   `random_candidates` draws for a wider round).
3. All candidates of all clips roll out in one batch; per clip, the candidate with the highest
   whole-episode F1 replaces the table if it beats it (`train.ilc_run` runs the loop). With
   `ILCConfig.horizon` (the segment search, `train.ilc_segments`) they replay instead from
   the env state at their window's start for the window and `horizon` steps more, beside the
   current table, and those steps decide: on long clips a window's gain is not lost in the
   chaos of the hundreds of steps after it, and a rollout costs tens of steps, not the clip.

With several fingering variants (`ILCConfig.thumb_black_costs`), each clip learns one table
per variant in the same batch, and plays the variant whose last search rollout scores higher
(`best_variant`): which fingering a clip's hands play best is learned, not fixed.

The windows sweep the clip left to right and again; a later window's change cannot alter an
earlier step, so each sweep fixes the errors in the order the music meets them.

A clip's rollout is chaotic at the contacts, and XLA's float rounding depends on the batch
shape most and the slot a little (a batch of another size plays a table differently, by up to
0.14 F1; slots of one batch mostly alike: `bench/RESULTS.md`, 2026-12-03), so the search's F1 (the
candidates' batch) runs ahead of the evaluation's (a batch of the clips) once the table fits
the search's rounding. Choosing on the mean of jittered rollouts, with the table measured
afresh each round, was tried there and learned less. `ILCConfig.verify` keeps a change only
if it also wins in a second batch shape. Off the rollout's path the tables' gain mostly goes:
with action noise of std 0.003 in the policy's [-1, 1] space per step, a verified R1 run's
median F1 was 0.695 against the IK pianist's 0.683, with std 0.01 0.669 against 0.682
(`bench/ilc_noise.py`, 2026-12-03). `ILCConfig.train_noise` searches under such noise instead:
each table of a round, the current one included, plays `noise_draws` noisy episodes under the
draws its track's other tables play, and the mean summed step F1 decides; the correction
reads the kept table's first noisy episode. On R1 (seed 0, std 0.01, 358,400 env steps per
clip) such tables kept a mean gain of +0.049 over the IK pianist under noise of 0.01 and +0.031
under 0.03, where the deterministic search's had none, and played alike in any batch shape,
at a deterministic median F1 of 0.717 (against 0.80-0.83): robust, still short of the target.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mjx_piano.env import PianoEnv
from mjx_piano.ik_pianist import THUMB_BLACK_COST, IKPianist
from mjx_piano.metrics import binary_scores


@dataclasses.dataclass(frozen=True)
class ILCConfig:
    """How the correction table learns.

    Attributes:
        window: control steps whose table rows one round changes.
        rounds: rounds (batches of candidates) per window.
        gains: multiples of the full correction tried each round.
        lateral_gain: multiple of the lateral part tried alone.
        noise: m, std of the random candidates' offsets (on the window's erring fingers).
        random_candidates: random candidates per track and round (their own draws each): a
            wider round for a device whose round time hardly grows with the batch (a GPU).
        lead: share of a step's correction also applied to the step before.
        lateral_tolerance: m, a missed key's finger closer than this along the keyboard is
            sent deeper instead of sideways.
        press_deeper: m, how much deeper such a finger aims.
        lift: m, how much higher a finger on a wrong key with no key of its own aims.
        bound: m, largest offset along the key (x), the keyboard (y), and up/down (z).
        seed: the random candidates' seed.
        thumb_black_costs: the fingering variants (m, the IK pianist's thumb cost of a black
            key): each clip learns one table per variant, and plays the variant whose table
            scores higher in the search (one variant: the IK pianist's own fingering).
        verify: a round's winner replaces its table only if it also beats it in a second
            batch shape (the tracks alone, one rollout each, its env steps counted): an
            improvement of one float rounding only is refused (`train.ilc_run`).
        train_noise: std of Gaussian action noise per step and action in the policy's
            [-1, 1] space during the search (as `dataset collect --noise` explores); 0: a
            deterministic search. With noise, every candidate and the current table play
            `noise_draws` episodes under the same draws (new draws each round) and are
            compared on their mean: tables that help around their path, not on one path.
        noise_draws: episodes per candidate under `train_noise`.
        horizon: 0: every candidate plays the whole clip from its first step. > 0: the
            segment search (`train.ilc_segments`): the candidates and the current table
            replay from the env state at the window's start for `segment_steps` steps (the
            window, its lead step and `horizon` steps after it), and those steps decide.

    Raises:
        ValueError: a negative noise or horizon, fewer than one draw, noise with `verify` (a
            noisy search is not tied to one float rounding), or a horizon with either.
    """

    window: int = 5
    rounds: int = 2
    gains: tuple[float, ...] = (0.3, 0.6, 1.0)
    lateral_gain: float = 0.6
    noise: float = 0.004
    random_candidates: int = 1
    lead: float = 0.5
    lateral_tolerance: float = 0.004
    press_deeper: float = 0.004
    lift: float = 0.005
    bound: tuple[float, float, float] = (0.02, 0.025, 0.025)
    seed: int = 0
    thumb_black_costs: tuple[float, ...] = (THUMB_BLACK_COST,)
    verify: bool = False
    train_noise: float = 0.0
    noise_draws: int = 4
    horizon: int = 0

    def __post_init__(self):
        if self.train_noise < 0 or self.noise_draws < 1:
            raise ValueError(f"train_noise must be >= 0 and noise_draws >= 1, got "
                             f"{self.train_noise} and {self.noise_draws}")
        if self.train_noise and self.verify:
            raise ValueError("verify is for a deterministic search; train_noise > 0 has none")
        if self.random_candidates < 1:
            raise ValueError(f"random_candidates must be >= 1, got {self.random_candidates}")
        if self.horizon < 0:
            raise ValueError(f"horizon must be >= 0, got {self.horizon}")
        if self.horizon and (self.train_noise or self.verify):
            raise ValueError("horizon (replays from the window's start) goes with neither "
                             "train_noise nor verify")

    @property
    def candidates(self) -> int:
        """Candidate tables per clip and round."""
        return len(self.gains) + 2 + self.random_candidates

    @property
    def group(self) -> int:
        """Tables played per track and round: the candidates, and under noise or a horizon
        the current table too (measured afresh under the round's draws / from the window's
        start state)."""
        return self.candidates + (1 if self.train_noise or self.horizon else 0)

    @property
    def segment_steps(self) -> int:
        """Steps of a replay of the segment search: the window, its lead step, the horizon."""
        return self.window + 1 + self.horizon

    @property
    def draws(self) -> int:
        """Episodes per table played in a round."""
        return self.noise_draws if self.train_noise else 1

    @property
    def rollouts_per_round(self) -> int:
        """Episodes per track and round (without `verify`'s)."""
        return self.group * self.draws

    def rollout_steps(self, clip_steps: int) -> int:
        """Env steps of one of a round's rollouts on a clip of `clip_steps` steps."""
        return self.segment_steps if self.horizon else clip_steps


class Rollout(NamedTuple):
    """Rollouts of a batch of B episodes of T steps (numpy after `jax.device_get`).

    Attributes:
        f1, precision, recall: float32 [B], the episodes' scores (means over steps).
        step_f1: float32 [B, T], each step's F1.
        goal, pressed: bool [B, T, K], the keys that should be down / were down after the step.
        finger_of_key: int32 [B, T, K], the fingertip the IK pianist gave each key (-1: none).
        tips: float32 [B, T, F, 3], the fingertips' IK points after the step (m).
    """

    f1: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    step_f1: np.ndarray
    goal: np.ndarray
    pressed: np.ndarray
    finger_of_key: np.ndarray
    tips: np.ndarray


def _step(env: PianoEnv, pianist: IKPianist, table: jax.Array, thumb_black_cost: jax.Array,
          state, draw: jax.Array | None = None):
    """One control step of the IK pianist with `table` (float32 [T, F, 3]); `draw` float32
    [A] (noise already scaled to the action range) is added to the action. Returns the next
    state and the step's trace (step F1 [], goal bool [K], pressed bool [K], finger_of_key
    int32 [K], tips float32 [F, 3])."""
    action, targets = pianist.plan(state, table[state.t], thumb_black_cost)
    if draw is not None:
        low = jnp.asarray(env.action_low, jnp.float32)
        high = jnp.asarray(env.action_high, jnp.float32)
        action = jnp.clip(jnp.clip(action, low, high) + draw, low, high)
    goal = env.bank.goal_keys[state.piece, state.t]
    state = env.step(state, action)
    tips = pianist._points(state.data.xpos, state.data.xmat)
    step_f1 = binary_scores(state.pressed, goal)[2]
    return state, (step_f1, goal, state.pressed, targets.finger_of_key, tips)


@functools.lru_cache(maxsize=4)
def make_player(env: PianoEnv, noisy: bool = False) -> tuple[IKPianist, Callable]:
    """The IK pianist of `env` (both hands) and its jitted rollout from each episode's first
    step, `play(piece int32 [B], thumb_black_cost float32 [B], table float32 [B, T, F, 3])
    -> Rollout` (T = the table's length; one compile per batch shape; cached per env).

    With `noisy`, `play(piece, thumb_black_cost, table, key uint32 [B, 2], noise float32 [])`
    adds Gaussian noise of std `noise` in the policy's [-1, 1] space to every action (the
    actions clipped to their range before and after), a draw per episode key and step."""
    pianist = IKPianist(env)
    low = jnp.asarray(env.action_low, jnp.float32)
    high = jnp.asarray(env.action_high, jnp.float32)

    def episode(piece: jax.Array, thumb_black_cost: jax.Array, table: jax.Array,
                key: jax.Array | None = None, noise: jax.Array | None = None) -> Rollout:
        def body(state, _):
            draw = None
            if noisy:
                draw = noise * 0.5 * (high - low) * jax.random.normal(
                    jax.random.fold_in(key, state.t), low.shape)
            return _step(env, pianist, table, thumb_black_cost, state, draw)

        state, trace = jax.lax.scan(body, env.reset(jax.random.PRNGKey(0), piece), None,
                                    length=table.shape[0])
        last = state.last_episode
        return Rollout(last.f1, last.precision, last.recall, *trace)

    if noisy:
        return pianist, jax.jit(jax.vmap(episode, in_axes=(0, 0, 0, 0, None)))
    return pianist, jax.jit(jax.vmap(episode))


@functools.lru_cache(maxsize=4)
def make_segment_player(env: PianoEnv, steps: int) -> tuple[Callable, Callable]:
    """Replays of `steps` control steps from saved env states (`ILCConfig.horizon`'s search).

    Returns (start, play): `start(piece int32 [B]) -> EnvState [B]`, each episode's first
    state (as `make_player`'s rollouts start); `play(state EnvState [B], thumb_black_cost
    float32 [B], table float32 [B, T, F, 3], advance int32 []) -> (trace, saved)`: the IK
    pianist with `table` plays `steps` steps from each state (past the clip's end the env
    starts the clip again); `trace` = (step_f1 [B, steps], goal, pressed bool [B, steps, K],
    finger_of_key int32 [B, steps, K], tips float32 [B, steps, F, 3]) as `Rollout`'s, `saved`
    the states `advance` steps in (EnvState [B]). One compile per batch shape; cached per env.
    """
    pianist = IKPianist(env)

    def segment(state, thumb_black_cost: jax.Array, table: jax.Array, advance: jax.Array):
        def body(carry, i):
            state, saved = carry
            saved = jax.tree_util.tree_map(lambda a, b: jnp.where(i == advance, a, b), state,
                                           saved)
            state, trace = _step(env, pianist, table, thumb_black_cost, state)
            return (state, saved), trace

        (_, saved), trace = jax.lax.scan(body, (state, state), jnp.arange(steps))
        return trace, saved

    start = jax.jit(jax.vmap(lambda piece: env.reset(jax.random.PRNGKey(0), piece)))
    return start, jax.jit(jax.vmap(segment, in_axes=(0, 0, 0, None)))


def correction(goal: np.ndarray, pressed: np.ndarray, finger_of_key: np.ndarray,
               tips: np.ndarray, key_points: np.ndarray, config: ILCConfig) -> np.ndarray:
    """Where each fingertip's target should move, from one episode.

    Args:
        goal, pressed: bool [T, K]; finger_of_key: int32 [T, K]; tips: float32 [T, F, 3]
            (one episode of a `Rollout`). key_points: float32 [K, 3], the keys' target points.
        config: the gains.

    Returns:
        float32 [T, F, 3] (m).
    """
    steps, fingers = tips.shape[:2]
    out = np.zeros((steps, fingers, 3), np.float32)
    t, k = np.nonzero(goal & ~pressed & (finger_of_key >= 0))
    f = finger_of_key[t, k]
    miss = key_points[k, 1] - tips[t, f, 1]
    sideways = np.abs(miss) > config.lateral_tolerance
    np.add.at(out, (t[sideways], f[sideways], 1), miss[sideways])
    np.add.at(out, (t[~sideways], f[~sideways], 2), -config.press_deeper)
    t, j = np.nonzero(pressed & ~goal)
    distance = (np.abs(tips[t, :, 1] - key_points[j, 1][:, None])
                + 0.2 * np.abs(tips[t, :, 0] - key_points[j, 0][:, None]))  # [n, F]
    f = np.argmin(distance, axis=-1)
    own = (finger_of_key[t] == f[:, None]) & goal[t]  # [n, K]
    has_own = own.any(-1)
    own_key = np.argmax(own, axis=-1)
    np.add.at(out, (t[has_own], f[has_own], 1),
              key_points[own_key[has_own], 1] - tips[t[has_own], f[has_own], 1])
    np.add.at(out, (t[~has_own], f[~has_own], 2), config.lift)
    out[:-1] += config.lead * out[1:]
    return out


def clip_table(table: np.ndarray, config: ILCConfig) -> np.ndarray:
    """The table [..., 3] within `config.bound` (m)."""
    bound = np.asarray(config.bound, np.float32)
    return np.clip(table, -bound, bound).astype(np.float32)


def proposals(table: np.ndarray, step_correction: np.ndarray, start: int, config: ILCConfig,
              rng: np.random.Generator) -> np.ndarray:
    """Candidate tables for the window starting at step `start` of one clip.

    Args:
        table: float32 [T, F, 3], the clip's table now. step_correction: float32 [T, F, 3]
            (`correction`). start: the window's first step. config: the gains. rng: the
            random candidates' generator.

    Returns:
        float32 [config.candidates, T, F, 3].
    """
    window = np.zeros(table.shape[0], bool)
    window[max(start - 1, 0):start + config.window] = True  # with the lead step before it
    change = np.where(window[:, None, None], step_correction, 0.0).astype(np.float32)
    lateral = change * np.array([0, 1, 0], np.float32)
    vertical = change * np.array([0, 0, 1], np.float32)
    erring = np.any(change != 0, axis=-1, keepdims=True)
    out = [table + gain * change for gain in config.gains]
    out += [table + config.lateral_gain * lateral, table + vertical]
    out += [table + erring * rng.normal(0.0, config.noise, table.shape).astype(np.float32)
            for _ in range(config.random_candidates)]
    return clip_table(np.stack(out), config)


def best_variant(step_f1: np.ndarray, variants: int) -> np.ndarray:
    """Per clip, the fingering variant whose last rollout scores the highest summed step F1
    (the first on a tie).

    Args:
        step_f1: float [C * V, T], the tracks' step F1, clip-major (track = clip * V + variant).
        variants: V.

    Returns:
        int [C].
    """
    return np.argmax(step_f1.sum(-1).reshape(-1, variants), axis=1)


def choose(current: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Per clip, the candidate that beats the current table's episode F1, or -1.

    Args:
        current: float [C], each clip's summed step F1 now. candidates: float [C, P], each
            candidate's.

    Returns:
        int [C].
    """
    best = np.argmax(candidates, axis=1)
    better = candidates[np.arange(len(best)), best] > current + 1e-6
    return np.where(better, best, -1)
