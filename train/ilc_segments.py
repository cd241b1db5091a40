"""The segment search of `train.ilc` (`ILCConfig.horizon > 0`): replays from the window's start.

A round's candidate tables differ from the current table only from the step before their
window on (`proposals`), and the env and the IK pianist are deterministic, so every step
before that plays as it did. Instead of the whole clip from its first step, each candidate and
the current table (measured afresh in the same batch) replay from the track's anchor, the env
state at the step before the window, for `ILCConfig.segment_steps` steps (the window, its lead
step and `horizon` steps after it; past the clip's end the steps do not count), and their
summed step F1 decides. After a window's last round the tracks' current tables play on from
the anchors to the next window's start (`advance_anchors`), in a batch of the tracks, one slot
each: the evaluation's batch, so the anchors lie on the evaluation's own path (a chain of such
replays is bit for bit the whole-clip rollout of that batch: tested). A sweep's first window
starts from the reset state and its last window's end is played the same way, so at a
sweep's end each track's whole-clip rollout in the evaluation's batch is known exactly, at no
more cost; a track keeps its best sweep end (`keep_best`: the tables the run evaluates and
plays) and a sweep that ends lower goes back to it. The tracks' whole-clip traces, which the
correction reads, are stitched from the kept replays and those steps. A round costs `segment_steps` env steps per
rollout instead of the clip's length (26 instead of 550 on a whole repertoire clip with window
5 and horizon 20), and moving the anchors `window + 1` more per track and window.

What the search cannot see: a change whose effect comes more than `horizon` steps after its
window. Its candidates replay in another batch shape than the evaluation's, so their gains are
measured up to that float rounding (as the whole-clip search's, `train/ilc.py`), but not
compounded along the clip: each window starts on the evaluation's path.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from train.ilc import ILCConfig, Rollout, choose


def window_start(window_index: int, config: ILCConfig) -> int:
    """The first step a window's candidates change (its lead step), where its replays start."""
    return max(window_index * config.window - 1, 0)


def advance(window_index: int, windows: int, config: ILCConfig) -> int:
    """Steps from this window's start to the next window's (0 after the last window: the
    next sweep starts from the reset state)."""
    if window_index + 1 >= windows:
        return 0
    return window_start(window_index + 1, config) - window_start(window_index, config)


def anchor_leaves(states) -> list[np.ndarray]:
    """Host copies of a batch of env states' leaves (what a checkpoint keeps)."""
    return [np.array(leaf) for leaf in jax.tree_util.tree_leaves(jax.device_get(states))]


def anchor_states(template, leaves: list[np.ndarray]):
    """The env states (EnvState [tracks]) of `leaves`, shaped as `template` (a state or its
    `jax.eval_shape`)."""
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template),
                                        [jnp.asarray(leaf) for leaf in leaves])


def segment_round(play, anchors, costs: np.ndarray, tables: np.ndarray, start: int,
                  steps: int, last: Rollout, config: ILCConfig) -> np.ndarray:
    """One round of the segment search over every track.

    Args:
        play: `make_segment_player(env, config.segment_steps)[1]`.
        anchors: EnvState [C * V], each track's state at step `start`.
        costs: float32 [C * V], each track's thumb black-key cost.
        tables: float32 [C * V, group, T, F, 3], each track's candidates and (last) its
            current table.
        start: the replays' first step. steps: T, the clip's length.
        last: the tracks' whole-clip traces; the kept replays are written into them (and
            `f1` becomes their mean step F1).
        config: the search.

    Returns:
        int [C * V]: each track's winner or -1 (`choose`).
    """
    tracks, group = tables.shape[:2]
    length = config.segment_steps
    batch = jax.tree_util.tree_map(lambda x: jnp.repeat(x, group, axis=0), anchors)
    trace, _ = play(batch, jnp.asarray(np.repeat(costs, group)),
                    jnp.asarray(tables.reshape(-1, *tables.shape[2:])), jnp.int32(0))
    trace = [np.asarray(v).reshape(tracks, group, *v.shape[1:]) for v in jax.device_get(trace)]
    inside = min(length, steps - start)  # replayed steps within the clip
    score = trace[0][..., :inside].sum(-1)  # [C * V, group]
    chosen = choose(score[:, -1], score[:, :-1])
    keep = np.where(chosen >= 0, chosen, group - 1)
    _stitch(last, [v[np.arange(tracks), keep] for v in trace], start, inside)
    return chosen


def advance_anchors(play, anchors, costs: np.ndarray, table: np.ndarray, start: int,
                    step: int, steps: int, last: Rollout):
    """The tracks' current tables played on from their anchors by `step` steps, in a batch of
    the tracks (the evaluation's); those steps are written into the traces `last`.

    Args:
        play: `make_segment_player(env, config.window + 1)[1]`.
        anchors: EnvState [C * V] at step `start`. costs: float32 [C * V].
        table: float32 [C * V, T, F, 3], the current tables. step: steps to play (at most
            the player's). steps: T.

    Returns:
        EnvState [C * V], the states at step `start + step`.
    """
    trace, saved = play(anchors, jnp.asarray(costs), jnp.asarray(table), jnp.int32(step))
    _stitch(last, [np.asarray(v) for v in jax.device_get(trace)], start,
            min(step, steps - start))
    return saved


def keep_best(table: np.ndarray, last: Rollout, best_table: np.ndarray,
              best_last: Rollout) -> np.ndarray:
    """At a sweep's end, each track whose whole-clip rollout beats its best sweep end (summed
    step F1) becomes its best; every other track goes back to its best table and rollout, so
    the next sweep starts from there. Updates the arrays in place.

    Args:
        table: float32 [C * V, T, F, 3], the current tables. last: their whole-clip rollouts
            (the anchors' chain: the evaluation's batch, exact).
        best_table, best_last: the best sweep ends' tables and rollouts, shaped alike.

    Returns:
        bool [C * V]: the tracks whose best moved.
    """
    better = (last.step_f1.sum(-1, dtype=np.float64)
              > best_last.step_f1.sum(-1, dtype=np.float64) + 1e-6)
    best_table[better] = table[better]
    table[~better] = best_table[~better]
    for now, best in zip(last, best_last):
        best[better] = now[better]
        now[~better] = best[~better]
    return better


def _stitch(last: Rollout, trace: list[np.ndarray], start: int, count: int) -> None:
    """Writes the first `count` steps of per-track traces (step_f1, goal, pressed,
    finger_of_key, tips; [C * V, L, ...]) into `last` from step `start`; `last.f1` becomes the
    traces' mean step F1."""
    for field, value in zip(Rollout._fields[3:], trace):
        getattr(last, field)[:, start:start + count] = value[:, :count]
    last.f1[:] = last.step_f1.mean(-1)
