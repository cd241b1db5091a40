"""A pool of agent slots: many pieces' specialists through one compiled program.

K slots train at once (`train.parallel.Trainer`, one piece per agent). Every `run.eval_every`
iterations (a *round*) each slot is evaluated; a slot whose agent reached `run.target_f1`, or
whose piece used its env-step budget, is written to the library as that piece's specialist
(a one-agent specialists run folder, `library/<index>/`, which `dataset collect`, `perform`
and `play` read like any run) and its slot is refilled with the next piece of the queue: fresh
parameters, optimiser and normaliser from the piece's own seed (`run.seed` + its index in the
queue), its bank written into the slot's state. The pieces are data, so a refill compiles
nothing. A slot with no piece left idles until every slot is done.

Every round ends with a checkpoint of the pool (`pool/checkpoints/<round>`, the state of all
slots) and, written before it, the slots and the queue (`pool/round_<round>.json`); `--resume`
continues from the newest, so a kill -9 loses at most the round in flight, and a specialist
finished in that round is written again, the same. `pieces.csv` holds every piece's status,
F1, env steps and seconds.

A wall-clock budget (`budget_s`) counts the pool's rounds across resumes. The round that
spends it writes every slot's agent as it stands (status 'time') and leaves the pieces not
started queued; a resume with a larger budget fills the slots from the queue again.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from mjx_piano.paths import check_output_folder
from train import envs
from train.checkpoint import Checkpointer, check_resumable
from train.code_versions import installed_versions
from train.config import SpecialistConfig, learner_config
from train.dataset.store import write_json_atomic
from train.library import LIBRARY
from train.parallel import Trainer, get_trainer, make_mesh, mesh_shape
from train.plan import check_learner
from train.report import eval_scalars
from train.stop_signal import catch_stop_signals

POOL = "pool"
STATUS_COLUMNS = ("index", "piece", "seed", "status", "f1", "best_f1", "iterations",
                  "env_steps", "seconds", "folder")


@dataclasses.dataclass
class Slots:
    """The host's view of the pool (what `round_<r>.json` holds).

    Attributes:
        piece: per slot, the queue index of its piece, or -1 when idle.
        iterations: per slot, iterations its agent has trained.
        seconds: per slot, wall seconds of the rounds it trained in.
        best_f1: per slot, its agent's best evaluation F1 so far.
        next_piece: the queue index the next refill takes.
        rounds: rounds done.
        results: finished pieces, one dict per piece (`STATUS_COLUMNS`), in finishing order.
        elapsed: wall seconds of every round so far, across resumes (training, evaluation and
            the specialists written; not the checkpoints).
    """

    piece: list[int]
    iterations: list[int]
    seconds: list[float]
    best_f1: list[float]
    next_piece: int
    rounds: int = 0
    results: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    elapsed: float = 0.0

    @classmethod
    def fresh(cls, slots: int, pieces: int) -> "Slots":
        """The first min(slots, pieces) pieces in slots 0.., the rest idle."""
        taken = min(slots, pieces)
        return cls(piece=list(range(taken)) + [-1] * (slots - taken), iterations=[0] * slots,
                   seconds=[0.0] * slots, best_f1=[0.0] * slots, next_piece=taken)


@dataclasses.dataclass(frozen=True)
class PoolPlan:
    """A checked pool, ready to compile.

    Attributes:
        config: the base run (`env.pieces` = the queue, `run.agents` = the slots).
        loaded: the env with every queued piece in its bank.
        max_env_steps: a piece's env-step budget.
        resume_from: the round to resume, or None.
        budget_s: the pool's wall-clock budget in seconds (across resumes), or None.
    """

    config: SpecialistConfig
    loaded: envs.LoadedEnv
    max_env_steps: int
    resume_from: int | None
    budget_s: float | None = None

    @property
    def slots(self) -> int:
        """Agents trained at once."""
        return self.config.run.agents

    @property
    def steps_per_iteration(self) -> int:
        """Env steps one agent takes per iteration."""
        learner = learner_config(self.config)
        return learner.num_envs * learner.unroll_length


def plan_pool(config: SpecialistConfig, slots: int, max_env_steps: int,
              resume: bool = False, budget_s: float | None = None) -> PoolPlan:
    """Resolves and checks a pool without compiling anything.

    Raises:
        ValueError: sizes below 1, a budget not above 0, bad names, an output folder that
            holds a pool without `resume`, or (ConfigMismatchError) a pool of another
            configuration to resume.
    """
    if slots < 1 or max_env_steps < 1 or config.run.eval_every < 1:
        raise ValueError(f"--slots, --max-env-steps and --eval-every must be >= 1, got {slots}, "
                         f"{max_env_steps} and {config.run.eval_every}")
    if budget_s is not None and not budget_s > 0:
        raise ValueError(f"--budget-hours must be > 0, got {budget_s / 3600:g}")
    if config.env.impl == "warp":
        raise ValueError("the pool runs env.impl='jax' (MJX-Warp's contacts are sized per run)")
    if config.env.name == "piano-keys":
        raise ValueError("the pool trains the 'toy' and 'piano' envs: a 'piano-keys' scene holds "
                         "only its pieces' keys, so a slot could not take another piece")
    pieces = envs.resolve_pieces(config.env)
    resolved = dataclasses.replace(
        config, env=dataclasses.replace(config.env, pieces=pieces),
        run=dataclasses.replace(config.run, agents=slots), code=installed_versions())
    check_learner(resolved)
    mesh_shape(len(jax.devices()), slots, learner_config(config).num_envs, config.run.mesh)
    check_output_folder(config.run.out)
    loaded = envs.make_env(resolved.env, resolved.reward)
    resolved = dataclasses.replace(resolved, env=dataclasses.replace(
        resolved.env, pieces_sha256=envs.pieces_sha256(loaded)))
    checkpointer = Checkpointer(os.path.join(config.run.out, POOL), 1)
    try:
        if resume:
            resume_from = check_resumable(checkpointer, resolved)
            if resume_from is not None:
                stored = _read_slots(config.run.out, resume_from)[1]
                if stored != max_env_steps:
                    raise ValueError(f"the pool in {config.run.out} has --max-env-steps "
                                     f"{stored}, not {max_env_steps}; refusing to resume")
        elif checkpointer.latest_step() is not None:
            raise ValueError(f"{config.run.out} already holds a pool; pass --resume to continue "
                             "it or choose another --out")
        else:
            resume_from = None
    finally:
        checkpointer.close()
    return PoolPlan(config=resolved, loaded=loaded, max_env_steps=max_env_steps,
                    resume_from=resume_from, budget_s=budget_s)


def run_pool(plan: PoolPlan, on_finish: Any = None, on_round: Any = None,
             clock: Callable[[], float] = time.perf_counter) -> tuple[Slots, str | None]:
    """Trains every queued piece to its target or budget, or until the pool's time is spent.

    Args:
        plan: the checked pool.
        on_finish: called as `on_finish(result)` for each finished piece (its table row).
        on_round: called as `on_round(slots, env_steps, seconds)` after each round: the env
            steps its busy slots took and its wall seconds (checkpoint included).
        clock: seconds, for the rounds' durations and the budget.

    Returns:
        (the final slots, every finished piece in `results`; the signal, 'SIGTERM' or
        'SIGINT', that stopped the pool after the round in flight, with its checkpoint, or
        None)."""
    config, loaded = plan.config, plan.loaded
    learner = learner_config(config)
    mesh = make_mesh(mesh_shape(len(jax.devices()), plan.slots, learner.num_envs,
                                config.run.mesh))
    length = int(loaded.episode_length)
    trainer = get_trainer(loaded.base, learner, mesh, 1, length)
    checkpointer = Checkpointer(os.path.join(config.run.out, POOL), 2)
    if plan.resume_from is None:
        slots = Slots.fresh(plan.slots, len(loaded.piece_ids))
        state = _fresh_agents(plan, trainer, slots.piece)
    else:
        slots = _read_slots(config.run.out, plan.resume_from)[0]
        state = checkpointer.restore(plan.resume_from, trainer.abstract_state(plan.slots))
        if not _out_of_time(plan, slots):  # a larger budget: the idle slots take queued pieces
            state = _refill(plan, trainer, state, slots,
                            [s for s, p in enumerate(slots.piece) if p < 0])
    with catch_stop_signals() as stop:
        while any(p >= 0 for p in slots.piece) and not stop:
            tic, busy = clock(), sum(p >= 0 for p in slots.piece)
            state, slots = _round(plan, trainer, state, slots, on_finish, clock)
            path = os.path.join(config.run.out, POOL, f"round_{slots.rounds}.json")
            write_json_atomic(path, {"slots": dataclasses.asdict(slots),
                                     "max_env_steps": plan.max_env_steps})
            checkpointer.save(slots.rounds, state, config)
            _write_table(config.run.out, slots, loaded.piece_names)
            if on_round is not None:
                steps = busy * config.run.eval_every * plan.steps_per_iteration
                on_round(slots, steps, clock() - tic)
    checkpointer.close()
    return slots, stop.signal_name


def _out_of_time(plan: PoolPlan, slots: Slots) -> bool:
    """Whether the pool's rounds have spent its wall-clock budget."""
    return plan.budget_s is not None and slots.elapsed >= plan.budget_s


def _round(plan: PoolPlan, trainer: Trainer, state: Any, slots: Slots, on_finish: Any,
           clock: Callable[[], float]) -> tuple[Any, Slots]:
    """`eval_every` iterations of every slot, an evaluation, and the finished slots written
    and refilled (all written, none refilled, when the round spends the pool's budget)."""
    every = plan.config.run.eval_every
    tic = clock()
    for _ in range(every):
        state, _metrics = trainer.iteration(state)
    f1 = eval_scalars(jax.device_get(trainer.evaluate(state)))["eval/f1"]
    elapsed = clock() - tic
    slots = dataclasses.replace(slots, rounds=slots.rounds + 1, elapsed=slots.elapsed + elapsed)
    out_of_time = _out_of_time(plan, slots)
    freed = []
    for slot, piece in enumerate(slots.piece):
        if piece < 0:
            continue
        slots.iterations[slot] += every
        slots.seconds[slot] += elapsed
        slots.best_f1[slot] = max(slots.best_f1[slot], float(f1[slot]))
        env_steps = slots.iterations[slot] * plan.steps_per_iteration
        solved = float(f1[slot]) >= plan.config.run.target_f1
        if not solved and env_steps < plan.max_env_steps and not out_of_time:
            continue
        status = "solved" if solved else "budget" if env_steps >= plan.max_env_steps else "time"
        result = _write_specialist(plan, state, slots, slot, float(f1[slot]), status)
        slots.results.append(result)
        if on_finish is not None:
            on_finish(result)
        slots.piece[slot] = -1
        freed.append(slot)
    slots.elapsed += clock() - tic - elapsed  # the specialists' writing
    if not out_of_time:
        state = _refill(plan, trainer, state, slots, freed)
    return state, slots


def _refill(plan: PoolPlan, trainer: Trainer, state: Any, slots: Slots,
            free: list[int]) -> Any:
    """Gives the `free` slots (idle) the next queued pieces, fresh agents; returns the state
    (`slots` is updated in place)."""
    refill = np.zeros(plan.slots, bool)
    queued = len(plan.loaded.piece_ids)
    for slot in free:
        slots.piece[slot] = slots.next_piece if slots.next_piece < queued else -1
        slots.next_piece = min(slots.next_piece + 1, queued)
        slots.iterations[slot], slots.seconds[slot], slots.best_f1[slot] = 0, 0.0, 0.0
        refill[slot] = slots.piece[slot] >= 0
    if not refill.any():
        return state
    fresh = _fresh_agents(plan, trainer, slots.piece)
    return _selector(trainer)(jnp.asarray(refill), fresh, state)


def _fresh_agents(plan: PoolPlan, trainer: Trainer, pieces: list[int]) -> Any:
    """New agents for the slots' pieces (an idle slot gets piece 0's, unused), each from its
    piece's seed (`run.seed` + queue index)."""
    queue = np.maximum(np.asarray(pieces), 0)
    ids = np.asarray(plan.loaded.piece_ids)[queue][:, None]  # [slots, 1]
    table = np.zeros((plan.slots, learner_config(plan.config).num_envs), np.int32)
    seeds = [plan.config.run.seed + int(q) for q in queue]
    return trainer.init(seeds, table, plan.loaded.bank.take(ids))


@functools.lru_cache(maxsize=8)
def _selector(trainer: Trainer) -> Any:
    """`select(mask [slots], new, old)`: per leaf, the slots of `new` where `mask` holds, of
    `old` elsewhere, laid out as the trainer's states."""
    def select(mask: jax.Array, new: Any, old: Any) -> Any:
        return jax.tree_util.tree_map(
            lambda a, b: jnp.where(mask.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), new, old)

    return jax.jit(select, out_shardings=trainer.state_sharding)


def _write_specialist(plan: PoolPlan, state: Any, slots: Slots, slot: int, f1: float,
                      status: str) -> dict[str, Any]:
    """Writes the slot's agent as a one-agent specialists run, `library/<index>/`, whose
    config names its piece alone (a run of it trains the same agent); returns its row."""
    index = slots.piece[slot]
    name = plan.loaded.piece_names[index]
    seed = plan.config.run.seed + index
    folder = os.path.join(plan.config.run.out, LIBRARY, f"{index:05d}")
    one = envs.make_env(dataclasses.replace(plan.config.env, pieces=(name,)),
                        plan.config.reward)
    iterations = slots.iterations[slot]
    config = dataclasses.replace(
        plan.config,
        env=dataclasses.replace(plan.config.env, pieces=(name,),
                                pieces_sha256=envs.pieces_sha256(one)),
        run=dataclasses.replace(plan.config.run, agents=1, seed=seed, iterations=iterations,
                                out=folder))
    agent = jax.tree_util.tree_map(lambda x: jax.device_get(x[slot:slot + 1]), state)
    own_bank = one.bank.take(np.asarray(one.piece_ids)[None, :])  # the piece's own width
    checkpointer = Checkpointer(folder, 1)
    checkpointer.save(iterations, agent.replace(bank=own_bank), config)
    checkpointer.close()
    return {"index": index, "piece": name, "seed": seed, "status": status,
            "f1": round(f1, 6), "best_f1": round(slots.best_f1[slot], 6),
            "iterations": iterations, "env_steps": iterations * plan.steps_per_iteration,
            "seconds": round(slots.seconds[slot], 3), "folder": folder}


def _read_slots(out: str, round_: int) -> tuple[Slots, int]:
    """The slots and the env-step budget saved with round `round_`."""
    with open(os.path.join(out, POOL, f"round_{round_}.json")) as f:
        saved = json.load(f)
    return Slots(**saved["slots"]), int(saved["max_env_steps"])


def _write_table(out: str, slots: Slots, names: tuple[str, ...]) -> None:
    """`pieces.csv`: every finished piece, then the ones in slots ('training'), then the
    ones not started ('queued')."""
    rows = list(slots.results)
    rows += [{"index": p, "piece": names[p], "status": "training",
              "iterations": slots.iterations[s],
              "best_f1": round(slots.best_f1[s], 6), "seconds": round(slots.seconds[s], 3)}
             for s, p in enumerate(slots.piece) if p >= 0]
    rows += [{"index": p, "piece": names[p], "status": "queued"}
             for p in range(slots.next_piece, len(names))]
    path = os.path.join(out, "pieces.csv")
    with open(path + ".tmp", "w", newline="") as f:
        writer = csv.DictWriter(f, STATUS_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(path + ".tmp", path)
