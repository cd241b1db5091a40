"""An ILC run's specialist as a controller: the IK pianist playing one clip's learned table.

    mjx-piano perform --policy runs/ladder/R1/ik-ilc-fingerings/seed0 --piece NAME --out perf/

The run folder (`train.ilc_run`) says what it plays (`ilc_run.json`) and holds the tables
(`ilc_state.npz`); the clip plays its fingering variant with the higher summed step F1 in the
last search rollouts, as the run's evaluations do, in an env of the run's clips and scene.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from train.ilc import best_variant
from train.ilc_run import RUN_FILE, STATE_FILE, scene_env


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

    with open(os.path.join(folder, RUN_FILE)) as f:
        described = json.load(f)
    names = described["pieces"]
    name = names[0] if piece_name is None else piece_name
    if name not in names:
        raise ValueError(f"the ILC run {folder} does not play {name!r}; its clips: {names}")
    costs = np.asarray(described["thumb_black_costs"], np.float32)
    with np.load(os.path.join(folder, STATE_FILE)) as saved:
        tables, step_f1 = saved["table"], saved["last_step_f1"]
        env_steps = int(saved["counters"][1])
    if tables.shape[0] != len(names) * len(costs):
        raise ValueError(f"{folder}/{STATE_FILE} holds {tables.shape[0]} tables, not "
                         f"{len(names)} clips x {len(costs)} fingering variants")
    clip = names.index(name)
    variant = int(best_variant(step_f1, len(costs))[clip])
    table = tables[clip * len(costs) + variant]
    env = scene_env([load_piece(n) for n in names], described["key_dynamics"],
                    described["solver_iterations"], described["ls_iterations"])
    pianist = IKPianist(env)
    rows, cost = jnp.asarray(table), jnp.float32(costs[variant])

    def state_policy(state) -> jax.Array:
        row = rows[jnp.minimum(state.t, rows.shape[0] - 1)]
        return pianist.plan(state, row, cost)[0]

    return ILCPolicy(env, clip, name, state_policy, table, float(costs[variant]), env_steps)
