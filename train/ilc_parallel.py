"""The parallel-window search (`ILCConfig.parallel_windows`): every window of a clip in one round.

The segment search (`train/ilc_segments.py`) visits a clip's windows one after another: each
round replays one window's candidates from the anchor the earlier windows' tables led to, so a
sweep over a 550-step clip is 220 rounds. On a GPU a round is latency-bound (26 sequential env
steps for 70 replays: 1.0-1.8 s on an H200, `bench/RESULTS.md`), so a sweep takes minutes
however wide the device is. Here a round is a sweep:

1. the current tables play the whole clip in the evaluation's batch as the anchors' chain
   (`segments.advance_anchors`, window by window: bit for bit the evaluation's rollout), which
   keeps the state at every window's start; that rollout is the round's sweep end
   (`segments.keep_best`: a track that plays worse than its best goes back to it, and then
   the chain is played again from its best table);
2. every window's candidates (`proposals`, from that rollout's `correction`) and the current
   table replay from their window's anchor at once, tracks x windows x group replays of
   `segment_steps` steps, and each window picks its winner as the segment search does
   (`choose` on the summed step F1 within the clip);
3. the winners' changes are summed into the tables (neighbouring windows share one lead step).

What it gives up: a window's candidates are judged on the path the tables played before the
round, not after the earlier windows' changes of the same round (a Jacobi sweep, where the
segment search is Gauss-Seidel); the next round's chain measures the sum, and `keep_best`
takes a track back when the sum plays worse over the whole clip. A round holds tracks x
windows x group tables of the whole clip on the host and the device (R2: 10 x 110 x 7 x 550
x 10 x 3 float32, 0.5 GB).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from train import ilc_segments as segments
from train.ilc import ILCConfig, choose, clip_table, correction, proposals
from train.ilc_store import Loop


def env_steps_per_round(steps: int, config: ILCConfig) -> int:
    """Env steps per clip of one round on a clip of `steps` steps: every window's replays and
    the anchors' chain, for each fingering variant."""
    windows = -(-steps // config.window)
    return len(config.thumb_black_costs) * windows * (
        config.group * config.segment_steps + config.window + 1)


def chain(players, track_pieces: jax.Array, costs: np.ndarray, loop: Loop, steps: int,
          config: ILCConfig) -> tuple[list, int]:
    """Step 1: the current tables over the whole clip, window by window, in a batch of the
    tracks; `loop.last` becomes their whole-clip rollout, then `keep_best` runs. When it takes
    a track back to its best, the chain is played again, so that every anchor lies on the path
    of the table the round's candidates start from.

    Args:
        players: (the search's replay, the anchors' replay, the reset states), from
            `make_segment_player`. track_pieces: int32 [C * V]. costs: float32 [C * V].
        loop: the run's state (its tables, traces and best sweep ends are updated in place).
        steps: T, the clip's length.

    Returns:
        the anchors (per window, EnvState [C * V] at its start, `segments.window_start`), and
        the env steps per clip of a second chain (0 if none).
    """
    anchors = _play_chain(players, track_pieces, costs, loop, steps, config)
    moved = np.any(loop.table != loop.best_table, axis=tuple(range(1, loop.table.ndim)))
    better = segments.keep_best(loop.table, loop.last, loop.best_table, loop.best_last)
    if not np.any(moved & ~better):  # no table went back
        return anchors, 0
    windows = -(-steps // config.window)
    return (_play_chain(players, track_pieces, costs, loop, steps, config),
            len(config.thumb_black_costs) * windows * (config.window + 1))


def _play_chain(players, track_pieces: jax.Array, costs: np.ndarray, loop: Loop, steps: int,
                config: ILCConfig) -> list:
    """`loop.table` played over the clip as the anchors' chain into `loop.last`; returns the
    states at the windows' starts."""
    _, chain_play, start_states = players
    windows = -(-steps // config.window)
    anchors, out = start_states(track_pieces), []
    for index in range(windows):
        start = segments.window_start(index, config)
        out.append(anchors)
        played = segments.advance(index, windows, config) or steps - start
        anchors = segments.advance_anchors(chain_play, anchors, costs, loop.table, start,
                                           played, steps, loop.last)
    return out


def candidate_tables(loop: Loop, key_points: np.ndarray, steps: int, config: ILCConfig,
                     rng: np.random.Generator) -> np.ndarray:
    """Step 2's tables: float32 [C * V, W, group, T, F, 3], per track and window the
    candidates and (last) the current table, from the correction of `loop.last`."""
    windows = -(-steps // config.window)
    out = []
    for c in range(loop.table.shape[0]):
        step_correction = correction(loop.last.goal[c], loop.last.pressed[c],
                                     loop.last.finger_of_key[c], loop.last.tips[c],
                                     key_points, config)
        out.append([np.concatenate([proposals(loop.table[c], step_correction,
                                              index * config.window, config, rng),
                                    loop.table[c][None]]) for index in range(windows)])
    return np.asarray(out, np.float32)


def replay_scores(segment_play, anchors: list, costs: np.ndarray, tables: np.ndarray,
                  steps: int, config: ILCConfig) -> np.ndarray:
    """Step 2's replays: float [C * V, W, group], each table's summed step F1 over the steps
    of its replay inside the clip, every replay from its window's anchor in one batch.

    Args:
        segment_play: `make_segment_player(env, config.segment_steps)[1]`.
        anchors: `chain`'s. costs: float32 [C * V]. tables: `candidate_tables`'s.
    """
    tracks, windows, group = tables.shape[:3]
    def tracks_windows_group(*per_window: jax.Array) -> jax.Array:  # [C * V * W * group, ...]
        stacked = jnp.stack(per_window, 1)  # [C * V, W, ...] (some leaves are empty)
        return jnp.repeat(stacked.reshape((tracks * windows, *stacked.shape[2:])), group, 0)

    batch = jax.tree_util.tree_map(tracks_windows_group, *anchors)
    trace, _ = segment_play(batch, jnp.asarray(np.repeat(costs, windows * group)),
                            jnp.asarray(tables.reshape(-1, *tables.shape[3:])), jnp.int32(0))
    step_f1 = np.asarray(jax.device_get(trace[0])).reshape(tracks, windows, group, -1)
    starts = np.array([segments.window_start(i, config) for i in range(windows)])
    inside = np.arange(step_f1.shape[-1]) < (steps - starts)[:, None]  # [W, L]
    return np.where(inside[None, :, None], step_f1, 0.0).sum(-1)


def apply_winners(loop: Loop, tables: np.ndarray, score: np.ndarray,
                  config: ILCConfig) -> np.ndarray:
    """Step 3: each window's winner (`choose`) changes `loop.table` by its difference from the
    current table, the changes summed and the sum kept within bounds.

    Args:
        tables: float32 [C * V, W, group, T, F, 3] (`candidate_tables`). score: float
            [C * V, W, group] (`replay_scores`).

    Returns:
        int [C * V, W]: each window's winner or -1.
    """
    tracks, windows, group = score.shape
    chosen = choose(score[..., -1].reshape(-1),
                    score[..., :-1].reshape(-1, group - 1)).reshape(tracks, windows)
    change = np.zeros_like(loop.table)
    for c, index in zip(*np.nonzero(chosen >= 0)):
        change[c] += tables[c, index, chosen[c, index]] - tables[c, index, -1]
    loop.table[:] = clip_table(loop.table + change, config)
    return chosen


def parallel_round(players, track_pieces: jax.Array, costs: np.ndarray, loop: Loop,
                   key_points: np.ndarray, steps: int, config: ILCConfig,
                   rng: np.random.Generator) -> int:
    """One round (the module docstring's three steps) on `loop`, in place.

    Args:
        players: `make_segment_player`'s (segment replay, chain replay, reset states).
        track_pieces: int32 [C * V]. costs: float32 [C * V]. key_points: float32 [K, 3].
        steps: T. rng: the random candidates' generator.

    Returns:
        the env steps per clip of a second chain (`chain`), beyond `env_steps_per_round`.
    """
    anchors, extra_steps = chain(players, track_pieces, costs, loop, steps, config)
    tables = candidate_tables(loop, key_points, steps, config, rng)
    score = replay_scores(players[0], anchors, costs, tables, steps, config)
    apply_winners(loop, tables, score, config)
    return extra_steps
