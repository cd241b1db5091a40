"""An ILC run's clips as the specialists of a dataset collection.

    mjx-piano dataset collect --run runs/ilc --out runs/dataset --rollouts 8 --noise 0.003

Each clip is one agent; its specialist is the IK pianist with the clip's learned table, in the
fingering variant the clip plays (`train.ilc_policy`). That controller's action is a function
of the env state (the table row of the state's step, the IK solved from the hands' pose), so a
collection can explore with noise, or let a learner act (DAgger), and still label every state
it reaches with what the specialist would do there. Off the learned path those labels are
mostly the IK pianist's own: a table helps on the path it was learned on (`train.ilc`,
`bench/ilc_noise.py`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mjx_piano.residual import table_action
from train import envs
from train.config import EnvSpec, RunConfig, SpecialistConfig
from train.generalist.rollout import to_physical
from train.ilc import best_variant
from train.ilc_store import RUN_FILE, STATE_FILE, played_arrays
from train.restore import Specialists

ALGO = "ilc"  # `run.algo` of the configuration an ILC run's specialists report


def to_policy(env: Any, action: jax.Array) -> jax.Array:
    """Physical actions [..., A] -> the policy space [-1, 1] (clipped: the env clips its
    actions to [action_low, action_high] too, so `to_physical` of the result acts alike)."""
    low = jnp.asarray(env.action_low, jnp.float32)
    high = jnp.asarray(env.action_high, jnp.float32)
    return jnp.clip(2.0 * (action - low) / (high - low) - 1.0, -1.0, 1.0)


@dataclasses.dataclass(frozen=True, eq=False)
class ILCExpert:
    """The IK pianist with one clip's table per agent, where a collection expects a learner.

    Attributes:
        env: the run's env bound to no pieces (a collection binds the run's bank to it).
        pianist: the IK pianist of the env bound to the run's clips (piece i = clip i).
    """

    env: Any
    pianist: Any

    def state_action(self, params: dict[str, jax.Array], normalizer: Any,
                     state: Any) -> jax.Array:
        """The specialist's action in a state, in the policy space [-1, 1].

        Args:
            params: one clip's {'table': float32 [T, F, 3] (m), 'thumb_black_cost': float32
                [] (m)}; past the table's end its last row holds.
            normalizer: unused (an ILC specialist reads the state, not an observation).
            state: one env's `EnvState`.

        Returns:
            float32 [A].
        """
        del normalizer
        physical = table_action(self.pianist, state, params["table"],
                                params["thumb_black_cost"])
        return to_policy(self.env, physical)

    def to_physical(self, action: jax.Array) -> jax.Array:
        """Policy actions [..., A] in [-1, 1] -> physical units."""
        return to_physical(self.env, action)


def ilc_env_spec(described: dict[str, Any]) -> EnvSpec:
    """The `EnvSpec` of the env an ILC run trained in (`ilc_run.json`: its clips and scene;
    the rest the defaults, as `train.ilc_run.scene_env` builds it)."""
    return EnvSpec(name="piano", pieces=tuple(described["pieces"]),
                   key_dynamics=described["key_dynamics"],
                   solver_iterations=described["solver_iterations"],
                   ls_iterations=described["ls_iterations"])


@dataclasses.dataclass(frozen=True)
class PlayedTables:
    """What an ILC run's clips play, read from its folder.

    Attributes:
        described: the run's description (`ilc_run.json`: clips, fingerings, scene).
        table: float32 [C, T, F, 3], each clip's table of the variant it plays (m).
        thumb_black_cost: float32 [C], that variant's thumb cost (m).
        env_steps: env steps per clip the run had trained when it saved them.
    """

    described: dict[str, Any]
    table: np.ndarray
    thumb_black_cost: np.ndarray
    env_steps: int


def read_played_tables(folder: str) -> PlayedTables:
    """Each clip's table of the fingering variant it plays (the higher summed step F1 in the
    run's last search rollouts, or a segment search's best sweep-end ones, as its evaluations
    choose: `train.ilc_store.played_arrays`).

    Raises:
        FileNotFoundError: `folder` holds no ILC run.
        ValueError: its state does not match its description.
    """
    paths = [os.path.join(folder, name) for name in (RUN_FILE, STATE_FILE)]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(f"{folder} holds no ILC run (missing {', '.join(missing)})")
    with open(paths[0]) as f:
        described = json.load(f)
    costs = np.asarray(described["thumb_black_costs"], np.float32)
    with np.load(paths[1]) as saved:
        tables, step_f1 = played_arrays(saved)
        env_steps = int(saved["counters"][1])
    clips = len(described["pieces"])
    if tables.shape[0] != clips * len(costs):
        raise ValueError(f"{paths[1]} holds {tables.shape[0]} tables, not {clips} clips x "
                         f"{len(costs)} fingering variants")
    variant = best_variant(step_f1, len(costs))
    track = np.arange(clips) * len(costs) + variant
    return PlayedTables(described, tables[track].astype(np.float32), costs[variant],
                        env_steps)


def load_ilc_specialists(folder: str) -> Specialists:
    """Every clip of the ILC run in `folder` as one agent of a `Specialists` (agent i plays
    clip i; `step` = env steps per clip the run had trained).

    Raises:
        FileNotFoundError: `folder` holds no ILC run.
        ValueError: its state does not match its description.
    """
    from mjx_piano.ik_pianist import IKPianist

    played = read_played_tables(folder)
    spec = ilc_env_spec(played.described)
    loaded = envs.make_env(spec)
    spec = dataclasses.replace(spec, pieces_sha256=envs.pieces_sha256(loaded))
    clips = len(spec.pieces)
    config = SpecialistConfig(env=spec, run=RunConfig(algo=ALGO, agents=clips, out=folder))
    policy = {"table": played.table, "thumb_black_cost": played.thumb_black_cost}
    return Specialists(learner=ILCExpert(loaded.base, IKPianist(loaded.env)), policy=policy,
                       normalizer=np.zeros((clips,), np.float32),
                       agent_pieces=np.asarray(loaded.piece_ids)[:, None], loaded=loaded,
                       config=config, step=played.env_steps)


def tables_for_pieces(folder: str, pieces: tuple[str, ...], scene: Any
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Each piece's table and thumb cost from the ILC run in `folder` (the clip of the same
    name, in the fingering variant it plays), for a residual env's bank
    (`EnvSpec.residual_tables`): float32 [P, T, F, 3] and [P].

    Args:
        scene: the env's `SceneConfig`; the run must have learned in the same key dynamics
            and solver iterations.

    Raises:
        ValueError: no ILC run there, a piece it has no clip of, or another scene; the
            message names the field, the folder and what differs.
    """
    try:
        played = read_played_tables(folder)
    except (FileNotFoundError, ValueError) as error:
        raise ValueError(f"env.residual_tables: {error}") from error
    clips = list(played.described["pieces"])
    missing = [p for p in pieces if p not in clips]
    if missing:
        raise ValueError(f"env.residual_tables: the ILC run in {folder} has no table of "
                         f"{missing} (its clips: {clips})")
    ours = {"key_dynamics": scene.key_dynamics, "solver_iterations": scene.solver_iterations,
            "ls_iterations": scene.ls_iterations}
    differ = {k: (played.described[k], v) for k, v in ours.items() if played.described[k] != v}
    if differ:
        raise ValueError(f"env.residual_tables: the ILC run in {folder} learned its tables in "
                         "another scene (" + ", ".join(f"env.{k} {theirs!r} there, {mine!r} "
                         f"here" for k, (theirs, mine) in differ.items()) + ")")
    rows = [clips.index(p) for p in pieces]
    return played.table[rows], played.thumb_black_cost[rows]
