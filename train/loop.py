"""The host side of a specialist run: plan, (re)start, iterate, evaluate, checkpoint, report.

`plan_run` does every check that can fail on user input (env and piece names, agents vs pieces,
divisibility over the device mesh, minibatch sizes, a checkpoint from another configuration)
before anything is traced or compiled. `train_specialists` then drives the compiled
`Trainer` one iteration per call.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Any

import jax
import numpy as np

from mjx_piano import warp_buffers
from mjx_piano.paths import check_output_folder
from mjx_piano.pieces import PieceBank
from train import envs
from train.checkpoint import Checkpointer, check_resumable
from train.config import SpecialistConfig, learner_config, to_dict
from train.parallel import Trainer, get_trainer, make_mesh, mesh_shape
from train.ppo import TrainState
from train.report import MetricsLog, eval_scalars, iteration_scalars
from train.stop_signal import catch_stop_signals


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """A checked run, ready to compile.

    Attributes:
        config: the configuration with pieces and agents resolved (what checkpoints store).
        loaded: the env and where the run's pieces sit in its bank.
        agent_pieces: int [agents, k], indices into `loaded.bank` of the pieces each agent
            plays (k pieces per agent).
        piece_table: int32 [agents, envs], index into its agent's own pieces (0..k-1) of the
            piece each env plays.
        seeds: agent i starts from PRNGKey(seeds[i]).
        mesh_shape: (agents axis, envs axis).
        resume_from: iteration of the checkpoint to resume, or None for a fresh start.
    """

    config: SpecialistConfig
    loaded: envs.LoadedEnv
    agent_pieces: np.ndarray
    piece_table: np.ndarray
    seeds: tuple[int, ...]
    mesh_shape: tuple[int, int]
    resume_from: int | None

    @property
    def agent_bank(self) -> PieceBank:
        """Each agent's own pieces: `loaded.bank`'s rows `agent_pieces`, leaves [agents, k, ...]."""
        return self.loaded.bank.take(self.agent_pieces)

    @property
    def agent_labels(self) -> list[str]:
        """Each agent's pieces, joined with '+'."""
        names = dict(zip(self.loaded.piece_ids, self.loaded.piece_names))
        return ["+".join(names[int(p)] for p in row) for row in self.agent_pieces]


@dataclasses.dataclass
class RunResult:
    """What a run returns.

    Attributes:
        state: the final agent-batched `TrainState`.
        plan: the run's plan.
        iterations: iterations done in total (including those before a resume).
        compile_s: seconds of the first iteration call (compilation + one iteration).
        train_s: seconds of the other iteration calls.
        env_steps_per_s: env steps per second over all agents, excluding the first call.
        final_eval: {name: [agents]} of the last evaluation.
        summary: the summary table.
        interrupted: the run was stopped by Ctrl-C or a stop signal (a checkpoint was written).
        wall_s: wall-clock seconds of training so far, summed over resumes (the `wall_s`
            column of train.csv / eval.csv).
        out_of_time: the run stopped at `run.time_limit_s` before `run.iterations`.
        stopped_by: the signal ('SIGTERM', 'SIGINT') that stopped the run after an iteration
            and its checkpoint (`train.stop_signal`), or None.
    """

    state: TrainState
    plan: RunPlan
    iterations: int
    compile_s: float
    train_s: float
    env_steps_per_s: float
    final_eval: dict[str, np.ndarray]
    summary: str
    interrupted: bool = False
    wall_s: float = 0.0
    out_of_time: bool = False
    stopped_by: str | None = None


def assign_pieces(piece_ids: tuple[int, ...], agents: int, num_envs: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Gives each agent its piece(s) and each env a piece of its agent.

    With P pieces: agents a multiple of P -> agent i plays piece i mod P (several seeds per
    piece); P a multiple of agents -> agent i plays k = P / agents consecutive pieces, its envs
    cycling through them.

    Returns:
        (agent_pieces int [agents, k], indices into `piece_ids`' bank; piece_table int32
        [agents, num_envs], env e of every agent playing its agent's piece e mod k).

    Raises:
        ValueError: neither divides the other, or num_envs is not a multiple of k.
    """
    count = len(piece_ids)
    ids = np.asarray(piece_ids)
    if agents % count == 0:
        agent_pieces = ids[np.arange(agents) % count][:, None]
    elif count % agents == 0:
        agent_pieces = ids.reshape(agents, count // agents)
    else:
        raise ValueError(f"{agents} agents and {count} pieces: one must be a multiple of the "
                         "other (each agent plays the same number of pieces)")
    per_agent = agent_pieces.shape[1]
    if num_envs % per_agent:
        raise ValueError(f"num_envs = {num_envs} is not a multiple of the {per_agent} pieces "
                         "each agent plays")
    table = np.tile(np.arange(num_envs) % per_agent, (agents, 1)).astype(np.int32)
    return agent_pieces, table


def plan_run(config: SpecialistConfig, resume: bool = False) -> RunPlan:
    """Resolves and checks a run without compiling anything.

    Raises:
        ValueError: bad names, sizes that do not divide, an output folder that already holds
            checkpoints without `resume`, or (ConfigMismatchError) a checkpoint from another
            configuration.
    """
    pieces = envs.resolve_pieces(config.env)
    agents = config.run.agents or len(pieces)
    if agents < 1:
        raise ValueError(f"agents must be >= 1, got {agents}")
    resolved = dataclasses.replace(
        config, env=dataclasses.replace(config.env, pieces=pieces),
        run=dataclasses.replace(config.run, agents=agents))
    learner = learner_config(config)
    _check_learner(config)
    shape = mesh_shape(len(jax.devices()), agents, learner.num_envs, config.run.mesh)
    if config.env.impl == "warp":
        resolved = _size_warp_contacts(resolved, shape)
    check_output_folder(config.run.out)
    loaded = envs.make_env(resolved.env)
    resolved = dataclasses.replace(resolved, env=dataclasses.replace(
        resolved.env, pieces_sha256=envs.pieces_sha256(loaded)))
    checkpointer = Checkpointer(config.run.out, config.run.keep_checkpoints)
    try:
        if resume:
            resume_from = check_resumable(checkpointer, resolved)
        elif checkpointer.latest_step() is not None:
            raise ValueError(f"{checkpointer.directory} already holds checkpoints; pass "
                             "--resume to continue that run or choose another --out")
        else:
            resume_from = None
    finally:
        checkpointer.close()
    agent_pieces, table = assign_pieces(loaded.piece_ids, agents, learner.num_envs)
    return RunPlan(config=resolved, loaded=loaded, agent_pieces=agent_pieces, piece_table=table,
                   seeds=tuple(config.run.seed + i for i in range(agents)), mesh_shape=shape,
                   resume_from=resume_from)


def _at_least(minimum: float, sizes: dict[str, float]) -> None:
    """Raises ValueError naming the first size below `minimum`."""
    for name, value in sizes.items():
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _check_learner(config: SpecialistConfig) -> None:
    """The learner's sizes, checked before anything compiles.

    Raises:
        ValueError: sizes that do not fit together.
    """
    algo = config.run.algo
    learner = learner_config(config)
    run = config.run
    _at_least(1, {f"{algo}.num_envs (--envs)": learner.num_envs,
                  f"{algo}.unroll_length (--unroll)": learner.unroll_length,
                  "run.iterations (--iterations)": run.iterations,
                  "run.keep_checkpoints": run.keep_checkpoints})
    _at_least(0, {"run.eval_every (--eval-every)": run.eval_every,
                  "run.checkpoint_every (--checkpoint-every)": run.checkpoint_every,
                  "run.time_limit_s (--time-limit)": run.time_limit_s,
                  "run.agents (--agents)": run.agents})
    if algo == "ppo":
        ppo = config.ppo
        _at_least(1, {"ppo.num_minibatches (--minibatches)": ppo.num_minibatches,
                      "ppo.num_epochs (--epochs)": ppo.num_epochs})
        if (ppo.num_envs * ppo.unroll_length) % ppo.num_minibatches:
            raise ValueError(f"num_envs * unroll_length = {ppo.num_envs * ppo.unroll_length} is "
                             f"not divisible by num_minibatches = {ppo.num_minibatches}")
        return
    sac = config.sac
    per_iteration = sac.num_envs * sac.unroll_length
    if min(sac.num_envs, sac.unroll_length, sac.batch_size, sac.num_critics) < 1 \
            or sac.updates_per_iteration < 0 or sac.warmup_steps < 0:
        raise ValueError("sac.num_envs, unroll_length, batch_size and num_critics must be >= 1, "
                         "updates_per_iteration and warmup_steps >= 0")
    if sac.buffer_size < per_iteration:
        raise ValueError(f"sac.buffer_size = {sac.buffer_size} cannot hold one iteration's "
                         f"{per_iteration} transitions (num_envs x unroll_length)")
    if not 0 <= sac.critic_dropout < 1:
        raise ValueError(f"sac.critic_dropout must lie in [0, 1), got {sac.critic_dropout}")


def _size_warp_contacts(config: SpecialistConfig, shape: tuple[int, int]) -> SpecialistConfig:
    """`config` with MJX-Warp's contact slots sized for every env of the run.

    Raises:
        ValueError: the mesh has more than one device (MJX-Warp's contact buffer is shared by
            all envs of a call, which one device steps).
    """
    if shape != (1, 1):
        raise ValueError(f"env.impl='warp' trains on one device (MJX-Warp's contact buffer is "
                         f"shared by all envs of a call); this run's mesh is {shape}: use "
                         "env.impl='jax' to shard over devices")
    if config.env.naconmax:
        return config
    envs_in_run = config.run.agents * learner_config(config).num_envs
    total = warp_buffers.contact_slots(config.env.keys, envs_in_run)
    return dataclasses.replace(config, env=dataclasses.replace(config.env, naconmax=total))


def build_trainer(plan: RunPlan) -> Trainer:
    """The (cached) compiled trainer for a plan."""
    return get_trainer(plan.loaded.base, learner_config(plan.config), make_mesh(plan.mesh_shape),
                       int(plan.agent_pieces.shape[1]), int(plan.loaded.episode_length))


def initial_state(plan: RunPlan, trainer: Trainer, checkpointer: Checkpointer) -> TrainState:
    """Fresh agents, or the checkpoint to resume, placed on the mesh."""
    if plan.resume_from is None:
        return trainer.init(plan.seeds, plan.piece_table, plan.agent_bank)
    abstract = trainer.abstract_state(len(plan.seeds))
    return checkpointer.restore(plan.resume_from, abstract)


def fetch(tree: Any) -> Any:
    """Device arrays -> numpy on this host (gathering across processes when there are many)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def _due(done: int, every: int, total: int) -> bool:
    return done == total or (every > 0 and done % every == 0)


def train_specialists(config: SpecialistConfig, resume: bool = False) -> RunResult:
    """Trains one PPO specialist per agent; writes metrics, checkpoints, summary and plot.

    Args:
        config: the run (see `train.config`).
        resume: continue from the newest checkpoint in `config.run.out`.
    """
    plan = plan_run(config, resume)
    run = plan.config.run
    if resume and jax.process_index() == 0:
        print(resume_line(plan), file=sys.stderr, flush=True)
    os.makedirs(run.out, exist_ok=True)
    checkpointer = Checkpointer(run.out, run.keep_checkpoints)
    trainer = build_trainer(plan)
    state = initial_state(plan, trainer, checkpointer)
    writer = jax.process_index() == 0
    log = MetricsLog(run.out, plan.agent_labels, plan.resume_from,
                     len(plan.seeds) <= run.per_agent_tensorboard) if writer else None
    if writer:
        with open(os.path.join(run.out, "config.json"), "w") as f:
            json.dump(to_dict(plan.config), f, indent=1)
    result = _iterate(plan, trainer, checkpointer, state, log)
    checkpointer.close()
    if log is not None:
        result.summary = log.summary(plan.config.run.target_f1)
        log.plot()
        log.close()
    return result


def resume_line(plan: RunPlan) -> str:
    """What a `--resume` picks up: 'resumed at iteration 20 of 30 from checkpoints/20', or that
    the folder holds no checkpoint and the run starts fresh."""
    run = plan.config.run
    if plan.resume_from is None:
        return f"--resume: no checkpoint in {run.out}; starting fresh"
    return (f"resumed at iteration {plan.resume_from} of {run.iterations} from "
            f"{os.path.join(run.out, 'checkpoints', str(plan.resume_from))}")


def _iterate(plan: RunPlan, trainer: Trainer, checkpointer: Checkpointer, state: TrainState,
             log: MetricsLog | None) -> RunResult:
    """The iteration loop (progress bar, evaluation and checkpoints at their intervals)."""
    from tqdm import tqdm

    run, learner = plan.config.run, learner_config(plan.config)
    steps_per_iteration = learner.num_envs * learner.unroll_length
    start = done = plan.resume_from or 0
    compile_s, train_s, interrupted, out_of_time, last_f1 = 0.0, 0.0, False, False, np.nan
    stopped_by: str | None = None
    clock = WallClock(log.last_wall_s() if log is not None and start else 0.0)
    final_eval = _evaluate(trainer, state, log, 0, 0, clock()) if start == 0 else {}
    bar = tqdm(total=run.iterations, initial=start, disable=not run.progress, unit="it",
               dynamic_ncols=True)
    try:
        with catch_stop_signals() as stop:
            while done < run.iterations and not out_of_time and not stopped_by:
                tic = time.perf_counter()
                state, metrics = trainer.iteration(state)
                scalars = iteration_scalars(fetch(metrics))
                elapsed = time.perf_counter() - tic
                compile_s, train_s = (elapsed, train_s) if done == start else (
                    compile_s, train_s + elapsed)
                done += 1
                sps = len(plan.seeds) * steps_per_iteration / elapsed
                if log is not None:
                    log.log("train", done, done * steps_per_iteration, scalars,
                            {"train/sps": sps, "wall_s": clock()})
                out_of_time = run.time_limit_s > 0 and done < run.iterations and \
                    _all_hosts_agree(run.time_limit_s <= clock())
                # A stop signal (preemption): checkpoint this iteration and return at once.
                if done < run.iterations and _all_hosts_agree(bool(stop)):
                    stopped_by = stop.signal_name or "a signal on another host"
                if _due(done, run.eval_every, run.iterations) or out_of_time:
                    final_eval = _evaluate(trainer, state, log, done,
                                           done * steps_per_iteration, clock())
                if _due(done, run.checkpoint_every, run.iterations) or out_of_time or stopped_by:
                    checkpointer.save(done, state, plan.config)
                finite = [v for v in np.ravel(scalars.get("train/f1", np.nan)) if np.isfinite(v)]
                last_f1 = float(np.mean(finite)) if finite else last_f1
                bar.update(1)
                bar.set_postfix({"f1": f"{last_f1:.3f}",
                                 "eval_f1": f"{np.mean(final_eval.get('eval/f1', np.nan)):.3f}",
                                 "sps": f"{sps:,.0f}"})
    except KeyboardInterrupt:
        interrupted = True
        done = _save_interrupted(checkpointer, state, plan.config, done)
    finally:
        bar.close()
    measured = done - start - 1
    sps_all = (len(plan.seeds) * steps_per_iteration * measured / train_s) if train_s else 0.0
    return RunResult(state=state, plan=plan, iterations=done, compile_s=compile_s,
                     train_s=train_s, env_steps_per_s=sps_all, final_eval=final_eval,
                     summary="", interrupted=interrupted or bool(stopped_by),
                     wall_s=clock(), out_of_time=out_of_time, stopped_by=stopped_by)


def _all_hosts_agree(flag: bool) -> bool:
    """Process 0's `flag` on every host (hosts' clocks differ; all must stop together)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.asarray(flag)))


class WallClock:
    """Seconds of training so far: this process's since construction plus `before` (resumes)."""

    def __init__(self, before: float = 0.0):
        self.origin = time.perf_counter() - before

    def __call__(self) -> float:
        return time.perf_counter() - self.origin


def _evaluate(trainer: Trainer, state: TrainState, log: MetricsLog | None, iteration: int,
              env_steps: int, wall_s: float) -> dict[str, np.ndarray]:
    """Evaluates every agent and logs the result; returns {name: [agents]}."""
    scalars = eval_scalars(fetch(trainer.evaluate(state)))
    if log is not None:
        log.log("eval", iteration, env_steps, scalars, {"wall_s": wall_s})
    return scalars


def _save_interrupted(checkpointer: Checkpointer, state: TrainState, config: SpecialistConfig,
                      done: int) -> int:
    """On Ctrl-C: checkpoints the newest complete state; returns its iteration."""
    try:
        # The interrupt may land after `state` was replaced but before `done` was counted.
        done = int(np.asarray(fetch(state.iteration)).reshape(-1)[0])
    except RuntimeError:  # the state was donated to an iteration that did not finish
        return done
    if done and done != checkpointer.latest_step():
        checkpointer.save(done, state, config)
    return done
