"""The ILC loop (`train.ilc`) over a set of clips: resumable, evaluated, on a time limit.

    python3 -m mjx_piano bench learning --rung R1 --recipe ik-ilc --out runs/ladder

Every clip learns its own table at once, one per fingering variant
(`ILCConfig.thumb_black_costs`): a track is a (clip, variant) pair, and one batch holds every
track's candidates each round. The run folder (`train.ilc_store`) holds the run's
description, its evaluations and its checkpoint, written after every round, so a resumed run
continues exactly where it stopped. An evaluation plays each clip's best variant (`train.ilc.best_variant`) from the
first step in a batch of the clips alone (under `ILCConfig.horizon` its best sweep-end
table, in a batch of every track, where the segment search's anchors lie); a clip's env steps count the candidates' rollouts of
all its variants (under `ILCConfig.train_noise` the current table's too, each table's every
noisy episode; under `ILCConfig.horizon` the replays of the candidates and the current table,
and the anchors' moves, `train.ilc_segments`) and (`ILCConfig.verify`) the verification
rollouts (the training), not the evaluations, which are always deterministic.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from train import ilc_segments as segments
from train.ilc import (ILCConfig, Rollout, best_variant, choose, correction, make_player,
                       make_segment_player, proposals)
from train.ilc_store import (EVAL_FIELDS, EVAL_FILE, STATE_FILE, Loop, check_same_run, describe,
                             last_evaluated, load, run_description, save)
from train.stop_signal import catch_stop_signals


@dataclasses.dataclass(frozen=True)
class ILCRun:
    """One ILC run.

    Attributes:
        out: the run folder.
        steps: control steps per clip (every clip is played for this many).
        env_steps: budget per clip (candidate rollouts; the last round may pass it).
        eval_every_steps: env steps per clip between evaluations.
        time_limit_s: stop after this many seconds of this process (0: none); resumable.
        progress: show a progress bar.
        config: the learning rule.
    """

    out: str
    steps: int
    env_steps: int
    eval_every_steps: int
    time_limit_s: float = 0.0
    progress: bool = False
    config: ILCConfig = ILCConfig()



def run_ilc(env, names: tuple[str, ...], run: ILCRun) -> str:
    """Trains (or resumes) the tables of every clip of `env` and returns a summary line.

    Args:
        env: a `PianoEnv` with both hands over the clips (piece i is clip i).
        names: the clips' names (for `eval.csv`), one per piece of `env`.
        run: the run's settings.

    Raises:
        ValueError: `run.out` holds an ILC run of other clips, fingerings or scene.
    """
    from tqdm import tqdm

    config = run.config
    clips, group = len(names), config.group
    costs = np.asarray(config.thumb_black_costs, np.float32)
    tracks = clips * len(costs)
    pianist, play = make_player(env)
    search_play = make_player(env, noisy=True)[1] if config.train_noise else play
    if config.horizon:
        start_states, segment_play = make_segment_player(env, config.segment_steps)
        chain_play = make_segment_player(env, config.window + 1)[1]
        track_pieces = jnp.asarray(np.repeat(np.arange(clips, dtype=np.int32), len(costs)))
        template = jax.eval_shape(start_states, track_pieces)
    key_points = np.asarray(pianist.key_points)
    fingers = len(pianist.tip_site)
    os.makedirs(run.out, exist_ok=True)
    per_track = config.rollouts_per_round
    search = (np.repeat(np.arange(clips, dtype=np.int32), len(costs) * per_track),
              np.repeat(np.tile(costs, clips), per_track))
    alone = (np.repeat(np.arange(clips, dtype=np.int32), len(costs)), np.tile(costs, clips))
    check_same_run(run.out, run_description(env, names, config))
    loop = load(run.out)
    if loop is not None and loop.table.shape[0] != tracks:
        raise ValueError(f"{run.out}/{STATE_FILE} holds {loop.table.shape[0]} tables; this run "
                         f"has {clips} clips x {len(costs)} fingering variants")
    describe(run.out, env, names, config)
    rng = np.random.default_rng()
    shape = (tracks, group, config.draws)
    if loop is None:
        rng = np.random.default_rng(config.seed)
        table = np.zeros((tracks, run.steps, fingers, 3), np.float32)
        if config.horizon:  # the stitched traces start as the whole clip's
            last = _play(play, alone, table)
        else:
            first = _search(search_play, search, np.repeat(table, per_track, 0), config, rng)
            last = _kept(first, shape, np.zeros(tracks, int))
        verified = (_play(play, alone, table).step_f1.sum(-1).astype(np.float64)
                    if config.verify else np.zeros(tracks))
        loop = Loop(table, last, 0, 0, 0.0, 0, json.dumps(rng.bit_generator.state), verified)
        if config.horizon:  # the IK pianist's is the first best
            loop.best_table, loop.best_last = table.copy(), Rollout(*map(np.copy, last))
        _evaluate(play, run, names, loop)
        loop.next_eval = run.eval_every_steps
        save(run.out, loop)
    rng.bit_generator.state = json.loads(loop.rng_state)
    windows = -(-run.steps // config.window)
    per_round = len(costs) * per_track * config.rollout_steps(run.steps)  # per clip
    start_clock = time.perf_counter()
    start_wall = loop.wall_s
    bar = tqdm(total=run.env_steps, initial=loop.env_steps, disable=not run.progress,
               unit="env step")
    stopped = "budget"
    with catch_stop_signals() as stop:
        while loop.env_steps < run.env_steps:  # the last round may pass the budget
            if stop:
                stopped = f"signal {stop.signal_name}"
                break
            if run.time_limit_s and time.perf_counter() - start_clock >= run.time_limit_s:
                stopped = "time limit"
                break
            before = loop.env_steps
            first = (loop.round // config.rounds) % windows * config.window
            tables = np.stack([proposals(loop.table[c], correction(
                loop.last.goal[c], loop.last.pressed[c], loop.last.finger_of_key[c],
                loop.last.tips[c], key_points, config), first, config, rng)
                for c in range(tracks)])  # [C * V, P, T, F, 3]
            if config.train_noise or config.horizon:  # the current table is measured again
                tables = np.concatenate([tables, loop.table[:, None]], axis=1)
            if config.horizon:
                _segment_round(loop, (segment_play, chain_play, start_states), template,
                               track_pieces, alone[1], tables, first // config.window,
                               windows, run.steps, config)
            else:
                _search_round(loop, play, search_play, (search, alone), tables, shape, config,
                              rng, len(costs) * run.steps)
            loop.round += 1
            loop.env_steps += per_round
            loop.wall_s = start_wall + time.perf_counter() - start_clock
            loop.rng_state = json.dumps(rng.bit_generator.state)
            bar.update(loop.env_steps - before)
            bar.set_postfix(median_f1=f"{np.median(loop.last.f1):.3f}")
            if loop.env_steps >= loop.next_eval:
                _evaluate(play, run, names, loop)
                loop.next_eval += run.eval_every_steps
            save(run.out, loop)
    bar.close()
    if last_evaluated(run.out) < loop.env_steps:  # the last round is always evaluated
        _evaluate(play, run, names, loop)
        save(run.out, loop)
    variant = best_variant(loop.played()[1].step_f1, len(costs))
    chosen = np.arange(clips) * len(costs) + variant
    return (f"ILC {run.out}: {loop.env_steps:,} env steps per clip, {loop.round} rounds, "
            f"{loop.wall_s:.0f} s, stopped by {stopped}; median F1 of the last rollouts "
            f"{np.median(loop.played()[1].f1[chosen]):.3f}; thumb black-key cost per clip "
            f"{', '.join(f'{c:g}' for c in costs[variant])}")


def _search_round(loop: Loop, play, search_play, batches, tables: np.ndarray,
                  shape: tuple[int, int, int], config: ILCConfig, rng: np.random.Generator,
                  verify_steps: int) -> None:
    """One round of the whole-clip search: plays `tables` float32 [C * V, group, T, F, 3]
    (`shape` = (C * V, group, draws)) and keeps each track's winner in `loop` (with
    `config.verify` only a winner that wins again, its `verify_steps` env steps per clip
    counted)."""
    search, alone = batches
    candidates = config.candidates
    tried = _search(search_play, search,
                    np.repeat(tables.reshape(-1, *tables.shape[2:]), config.draws, 0),
                    config, rng)
    score = tried.step_f1.reshape(*shape, -1).sum(-1).mean(-1)  # [C * V, group]
    current = (score[:, candidates] if config.train_noise
               else loop.last.step_f1.sum(-1))
    chosen = choose(current, score[:, :candidates])
    if config.verify and np.any(chosen >= 0):
        chosen = _verify(play, alone, loop, tables, chosen)
        loop.env_steps += verify_steps
    kept = chosen >= 0
    loop.table[kept] = tables[kept, chosen[kept]]
    measured = kept | bool(config.train_noise)  # noise: every track measured afresh
    new = _kept(tried, shape, np.where(kept, chosen, candidates if config.train_noise
                                       else 0))
    for field, value in zip(loop.last, new):
        field[measured] = value[measured]


def _segment_round(loop: Loop, players, template, track_pieces: jax.Array,
                   costs: np.ndarray, tables: np.ndarray, window_index: int, windows: int,
                   steps: int, config: ILCConfig) -> None:
    """One round of the segment search (`train.ilc_segments`) on `loop`: a sweep's first
    round takes the reset states as anchors, a window's last round moves them on, the last
    window's plays to the clip's end and keeps each track's best sweep end (the `window + 1`
    steps of that replay counted per track).

    Args:
        players: (the search's replay, the anchors' replay, the reset states), from
            `make_segment_player`.
        track_pieces: int32 [C * V], each track's clip. costs: float32 [C * V], its thumb
            black-key cost. tables: float32 [C * V, group, T, F, 3], the candidates and the
            current table. window_index, windows: this round's window, windows per sweep.
        steps: T. template: the anchors' shapes (`jax.eval_shape` of `start_states`).
    """
    segment_play, chain_play, start_states = players
    if window_index == 0 and loop.round % config.rounds == 0:
        loop.anchors = segments.anchor_leaves(start_states(track_pieces))
    anchors = segments.anchor_states(template, loop.anchors)
    start = segments.window_start(window_index, config)
    chosen = segments.segment_round(segment_play, anchors, costs, tables, start, steps,
                                    loop.last, config)
    kept = chosen >= 0
    loop.table[kept] = tables[kept, chosen[kept]]
    step = segments.advance(window_index, windows, config)
    if (loop.round + 1) % config.rounds:
        return
    if step:  # the window's last round
        loop.anchors = segments.anchor_leaves(segments.advance_anchors(
            chain_play, anchors, costs, loop.table, start, step, steps, loop.last))
    else:  # the sweep's end: its last window played to the clip's end, the best kept
        segments.advance_anchors(chain_play, anchors, costs, loop.table, start, steps - start,
                                 steps, loop.last)
        segments.keep_best(loop.table, loop.last, loop.best_table, loop.best_last)
    loop.env_steps += len(config.thumb_black_costs) * (config.window + 1)  # per clip

def scene_env(rolls: list, key_dynamics: str, solver_iterations: int, ls_iterations: int):
    """The `PianoEnv` of an ILC run: both hands over `rolls` (piece i is roll i), in the scene
    of these key dynamics and solver settings (the rest `EnvConfig`'s defaults)."""
    from mjx_piano.env import EnvConfig, PianoEnv
    from mjx_piano.scene.builder import SceneConfig

    scene = SceneConfig(key_dynamics=key_dynamics, solver_iterations=solver_iterations,
                        ls_iterations=ls_iterations)
    return PianoEnv(EnvConfig(scene=scene), rolls)





def _play(play, batch: tuple[np.ndarray, np.ndarray], tables: np.ndarray) -> Rollout:
    """Host copies (writable) of one batch's rollouts; `batch` = (pieces int32 [B], thumb
    black-key costs float32 [B])."""
    pieces, costs = batch
    out = jax.device_get(play(jnp.asarray(pieces), jnp.asarray(costs), jnp.asarray(tables)))
    return Rollout(*(np.array(v) for v in out))


def _verify(play, alone: tuple[np.ndarray, np.ndarray], loop: Loop, tables: np.ndarray,
            chosen: np.ndarray) -> np.ndarray:
    """The round's winners that also beat their track's table in the verification batch (the
    tracks alone: another batch shape, so other float rounding); updates `loop.verified`.

    Args:
        alone: (pieces int32 [C * V], costs float32 [C * V]), one slot per track.
        tables: float32 [C * V, P, T, F, 3], the round's candidates. chosen: int [C * V], each
            track's winner or -1 (`choose`).

    Returns:
        int [C * V]: `chosen`, with -1 for the winners the verification refused.
    """
    trial = loop.table.copy()
    won = np.nonzero(chosen >= 0)[0]
    trial[won] = tables[won, chosen[won]]
    score = _play(play, alone, trial).step_f1.sum(-1).astype(np.float64)
    kept = (chosen >= 0) & (score > loop.verified + 1e-6)
    loop.verified = np.where(kept, score, loop.verified)
    return np.where(kept, chosen, -1)


def _search(play, batch: tuple[np.ndarray, np.ndarray], tables: np.ndarray, config: ILCConfig,
            rng: np.random.Generator) -> Rollout:
    """One search batch's rollouts: `tables` float32 [C * V * group * draws, T, F, 3], played
    by `play` (`make_player(env, noisy=True)` under `config.train_noise`: the tables of one
    track share their `draws` noise draws, which come new from `rng` each call)."""
    if not config.train_noise:
        return _play(play, batch, tables)
    pieces, costs = batch
    base = jax.random.PRNGKey(int(rng.integers(2 ** 31)))
    tracks = len(tables) // config.rollouts_per_round
    draw = np.arange(tracks)[:, None, None] * config.draws + np.arange(config.draws)
    draw = np.broadcast_to(draw, (tracks, config.group, config.draws)).reshape(-1)
    keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(draw))
    out = jax.device_get(play(jnp.asarray(pieces), jnp.asarray(costs), jnp.asarray(tables),
                              keys, jnp.float32(config.train_noise)))
    return Rollout(*(np.array(v) for v in out))


def _kept(tried: Rollout, shape: tuple[int, int, int], keep: np.ndarray) -> Rollout:
    """Per track, the rollouts of table `keep[c]` of a search batch of shape (tracks, group,
    draws) (clip-major): its scores averaged over the draws, the first draw's trace."""
    tracks, group, draws = shape
    out = []
    for name, value in zip(Rollout._fields, tried):
        value = value.reshape(tracks, group, draws, *value.shape[1:])[np.arange(tracks), keep]
        out.append(value.mean(1).astype(value.dtype)
                   if name in ("f1", "precision", "recall", "step_f1") else value[:, 0])
    return Rollout(*(np.array(v) for v in out))


def _evaluate(play, run: ILCRun, names: tuple[str, ...], loop: Loop) -> None:
    """Plays every clip's best variant's table once (a batch of the clips; with
    `ILCConfig.horizon` the best sweep-end tables, `Loop.played`, in a batch of every track,
    the anchors' batch, and each clip's best variant read from it) and appends to
    `eval.csv`."""
    costs = np.asarray(run.config.thumb_black_costs, np.float32)
    tables, last = loop.played()
    variant = best_variant(last.step_f1, len(costs))
    chosen = np.arange(len(names)) * len(costs) + variant
    if run.config.horizon:
        every = _play(play, (np.repeat(np.arange(len(names), dtype=np.int32), len(costs)),
                             np.tile(costs, len(names))), tables)
        played = Rollout(*(value[chosen] for value in every))
    else:
        played = _play(play, (np.arange(len(names), dtype=np.int32), costs[variant]),
                       tables[chosen])
    path = os.path.join(run.out, EVAL_FILE)
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(EVAL_FIELDS)
        for c, name in enumerate(names):
            writer.writerow((loop.round, loop.env_steps, c, name, loop.wall_s,
                             float(played.f1[c]), float(played.precision[c]),
                             float(played.recall[c]), float(costs[variant[c]])))



