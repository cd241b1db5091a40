"""An ILC run's specialist as a controller: the IK pianist playing one clip's learned table.

    mjx-piano perform --policy runs/ladder/R1/ik-ilc-fingerings/seed0 --piece NAME --out perf/

The run folder (`train.ilc_run`) says what it plays (`ilc_run.json`) and holds the tables
(`ilc_state.npz`); the clip plays its fingering variant with the higher summed step F1 in the
last search rollouts, as the run's evaluations do, in an env of the run's clips and scene.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from train.ilc_run import scene_env
from train.ilc_store import RUN_FILE, STATE_FILE
from train.ilc_specialists import read_played_tables


@dataclasses.dataclass(frozen=True)
class ILCPolicy:
    """One clip's learned table, ready to play.

    Attributes:
        env: a `PianoEnv` of the run's clips and scene (piece i is clip i).
        piece: the clip's piece index. piece_name: its name.
        state_policy: `EnvState -> action float32 [A]` (jittable): the IK pianist with the
            clip's table row of the state's step (the last row past the table's end).
        table: float32 [T, F, 3], the clip's table (m).
        thumb_black_cost: the fingering variant played (m).
        env_steps: env steps per clip the run had trained when the table was saved.
    """

    env: object
    piece: int
    piece_name: str
    state_policy: Callable[[object], jax.Array]
    table: np.ndarray
    thumb_black_cost: float
    env_steps: int


def is_ilc_run(folder: str) -> bool:
    """Whether `folder` is an ILC run (it has `ilc_run.json` and `ilc_state.npz`)."""
    return all(os.path.exists(os.path.join(folder, f)) for f in (RUN_FILE, STATE_FILE))


def load_ilc_policy(folder: str, piece_name: str | None) -> ILCPolicy:
    """The specialist of `piece_name` (None: the run's first clip) in ILC run `folder`.

    Raises:
        ValueError: the run does not play the piece (the message lists its clips), or its
            state does not match its description.
    """
    from mjx_piano.default_piece import load_piece
    from mjx_piano.ik_pianist import IKPianist
    from mjx_piano.residual import table_action

    played = read_played_tables(folder)
    described = played.described
    names = described["pieces"]
    name = names[0] if piece_name is None else piece_name
    if name not in names:
        raise ValueError(f"the ILC run {folder} does not play {name!r}; its clips: {names}")
    clip = names.index(name)
    table, cost = played.table[clip], float(played.thumb_black_cost[clip])
    env = scene_env([load_piece(n) for n in names], described["key_dynamics"],
                    described["solver_iterations"], described["ls_iterations"])
    pianist = IKPianist(env)
    rows = jnp.asarray(table)

    def state_policy(state) -> jax.Array:
        return table_action(pianist, state, rows, cost)

    return ILCPolicy(env, clip, name, state_policy, table, cost, played.env_steps)
