"""An ILC run's folder (`train.ilc_run`): what it plays, its checkpoint and its evaluations.

`ilc_run.json` describes the run (its clips in piece order, the fingering variants, the
scene's key dynamics and solver, the search's settings: what `train.ilc_policy` needs to play a
table, and what a resume must match), `ilc_state.npz` holds the checkpoint (`Loop`, written
atomically after every round) and `eval.csv` the evaluations (the ladder's format: one row
per evaluation and clip, with the variant played). A resumed run drops the rows written after
its checkpoint.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os

import numpy as np

from train.ilc import ILCConfig, Rollout

STATE_FILE = "ilc_state.npz"
RUN_FILE = "ilc_run.json"  # what the run plays: its clips, fingering variants and scene
EVAL_FILE = "eval.csv"
EVAL_FIELDS = ("iteration", "env_steps", "agent", "pieces", "wall_s", "eval/f1",
               "eval/precision", "eval/recall", "thumb_black_cost")


@dataclasses.dataclass
class Loop:
    """What a checkpoint keeps: the tracks' tables float32 [C * V, T, F, 3] (clip-major), their
    last rollouts (in the candidates' batch; under noise the mean scores over the draws and
    the first draw's trace), the round reached, env steps per clip, training
    seconds, the env steps of the next evaluation, the generator's state (JSON), and with
    `ILCConfig.verify` the tables' summed step F1 in the verification batch, float64 [C * V]
    (zeros without), and with `ILCConfig.horizon` the tracks' anchor states' leaves
    (`train.ilc_segments`) and the best sweep-end tables and their whole-clip rollouts in the
    evaluation's batch (what the run plays; None without)."""

    table: np.ndarray
    last: Rollout
    round: int
    env_steps: int
    wall_s: float
    next_eval: int
    rng_state: str
    verified: np.ndarray
    anchors: list[np.ndarray] | None = None
    best_table: np.ndarray | None = None
    best_last: Rollout | None = None

    def played(self) -> tuple[np.ndarray, Rollout]:
        """The tables the run plays (its evaluations, its specialists) and their rollouts:
        the best sweep-end tables of a segment search, else the current ones."""
        if self.best_table is None:
            return self.table, self.last
        return self.best_table, self.best_last


def run_description(env, names: tuple[str, ...], config: ILCConfig) -> dict:
    """What `ilc_run.json` holds: the clips, the random candidates' seed, the fingering
    variants and the scene settings of the run's env (its other settings are `EnvConfig`'s
    defaults)."""
    scene = env.config.scene
    described = {"pieces": list(names), "seed": config.seed,
                 "thumb_black_costs": list(config.thumb_black_costs),
                 "key_dynamics": scene.key_dynamics,
                 "solver_iterations": scene.solver_iterations,
                 "ls_iterations": scene.ls_iterations}
    if config.train_noise:
        described.update(train_noise=config.train_noise, noise_draws=config.noise_draws)
    if config.horizon:
        described.update(horizon=config.horizon, window=config.window)
    if config.random_candidates != 1:
        described.update(random_candidates=config.random_candidates)
    return {**described, "verify": True} if config.verify else described


def check_same_run(out: str, described: dict) -> None:
    """Raises ValueError if `out` already holds an ILC run described otherwise (other clips,
    fingerings or scene): a resume continues the same run only."""
    path = os.path.join(out, RUN_FILE)
    if not os.path.exists(path):
        return
    with open(path) as f:
        found = json.load(f)
    unset = {"verify": False, "random_candidates": 1}  # runs described before the fields
    unknown = {"seed"} - set(found)  # described before the seed was: any seed continues it
    changed = [k for k in {**described, **found} if k not in unknown
               and found.get(k, unset.get(k)) != described.get(k, unset.get(k))]
    if changed:
        raise ValueError(f"{out} holds an ILC run with other {', '.join(changed)} "
                         f"({', '.join(f'{k}={found.get(k, unset.get(k))}' for k in changed)}); "
                         "continue it with its own settings or use another --out")


def describe(out: str, env, names: tuple[str, ...], config: ILCConfig) -> None:
    """Writes `ilc_run.json` (`run_description`)."""
    with open(os.path.join(out, RUN_FILE), "w") as f:
        json.dump(run_description(env, names, config), f, indent=1)


def eval_rows(out: str) -> list[dict[str, str]]:
    """The rows of the run's `eval.csv` (one per clip and evaluation; [] without the file)."""
    path = os.path.join(out, EVAL_FILE)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def last_evaluated(out: str) -> int:
    """Env steps of the last row of `eval.csv` (-1 without one)."""
    rows = eval_rows(out)
    return int(rows[-1]["env_steps"]) if rows else -1


def save(out: str, loop: Loop) -> None:
    """Writes the checkpoint atomically (a temporary file, then a rename)."""
    path = os.path.join(out, STATE_FILE)
    with open(path + ".tmp", "wb") as f:
        np.savez(f, table=loop.table, **{f"last_{k}": v for k, v in loop.last._asdict().items()},
                 counters=np.array([loop.round, loop.env_steps, loop.next_eval], np.int64),
                 wall_s=np.float64(loop.wall_s), rng_state=np.array(loop.rng_state),
                 verified=loop.verified,
                 **{f"anchor_{i}": leaf for i, leaf in enumerate(loop.anchors or ())},
                 **({} if loop.best_table is None else
                    {"best_table": loop.best_table,
                     **{f"best_{k}": v for k, v in loop.best_last._asdict().items()}}))
    os.replace(path + ".tmp", path)


def load(out: str) -> Loop | None:
    """The checkpoint in `out` (None if none); drops `eval.csv` rows written after it."""
    path = os.path.join(out, STATE_FILE)
    if not os.path.exists(path):
        return None
    with np.load(path) as saved:
        last = Rollout(**{k: saved[f"last_{k}"] for k in Rollout._fields})
        rounds, env_steps, next_eval = (int(v) for v in saved["counters"])
        verified = (saved["verified"] if "verified" in saved.files
                    else np.zeros(saved["table"].shape[0]))  # a run from before `verify`
        anchors = [saved[f"anchor_{i}"] for i in range(len(saved.files))
                   if f"anchor_{i}" in saved.files] or None
        best = (None, None)
        if "best_table" in saved.files:
            best = (saved["best_table"],
                    Rollout(**{k: saved[f"best_{k}"] for k in Rollout._fields}))
        elif anchors:  # a segment run saved before the best was kept: its tables are its best
            best = (saved["table"].copy(), Rollout(*map(np.copy, last)))
        loop = Loop(saved["table"], last, rounds, env_steps, float(saved["wall_s"]), next_eval,
                    str(saved["rng_state"]), verified, anchors, *best)
    _trim_eval(out, loop.env_steps)
    return loop


def _trim_eval(out: str, env_steps: int) -> None:
    """Keeps the `eval.csv` rows at or before `env_steps`."""
    path = os.path.join(out, EVAL_FILE)
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    kept = [r for r in rows if int(r["env_steps"]) <= env_steps]
    if len(kept) < len(rows):
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, EVAL_FIELDS)
            writer.writeheader()
            writer.writerows(kept)


def played_arrays(saved) -> tuple[np.ndarray, np.ndarray]:
    """The tables a saved run plays and their step F1 (float32 [C * V, T, F, 3], [C * V, T]):
    a segment search's best sweep-end tables, else the current ones (`Loop.played`).

    Args:
        saved: the opened `ilc_state.npz` (`np.load`).
    """
    if "best_table" in saved.files:
        return saved["best_table"], saved["best_step_f1"]
    return saved["table"], saved["last_step_f1"]
