"""The host side of a specialist run: (re)start, iterate, evaluate, checkpoint, report.

`train.plan.plan_run` does every check that can fail on user input before anything is traced
or compiled; `train_specialists` then drives the compiled `Trainer` one iteration per call.
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

from train.checkpoint import Checkpointer
from train.config import SpecialistConfig, learner_config, to_dict
from train.parallel import Trainer, get_trainer, make_mesh
from train.plan import RunPlan, plan_run
from train.ppo import TrainState
from train.report import MetricsLog, eval_scalars, iteration_scalars
from train.stop_signal import StopRequest, catch_stop_signals


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


def build_trainer(plan: RunPlan) -> Trainer:
    """The (cached) compiled trainer for a plan."""
    return get_trainer(plan.loaded.base, learner_config(plan.config), make_mesh(plan.mesh_shape),
                       int(plan.agent_pieces.shape[1]), int(plan.loaded.episode_length))


def initial_state(plan: RunPlan, trainer: Trainer, checkpointer: Checkpointer) -> TrainState:
    """Fresh agents, or the checkpoint to resume, placed on the mesh."""
    if plan.resume_from is None:
        return trainer.init(plan.seeds, plan.piece_table, plan.agent_bank)
    abstract = trainer.abstract_state(len(plan.seeds))
    return checkpointer.restore(plan.resume_from, abstract, plan.agent_bank)


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

    SIGTERM or SIGINT (to this process or, in a multi-process run, to any of them) from the
    start on, compilation included, stops every process after the same iteration, with a
    checkpoint there (`RunResult.stopped_by`).

    Args:
        config: the run (see `train.config`).
        resume: continue from the newest checkpoint in `config.run.out`.
    """
    with catch_stop_signals() as stop:
        return _train(config, resume, stop)


def _train(config: SpecialistConfig, resume: bool, stop: StopRequest) -> RunResult:
    """`train_specialists` under its stop-signal handlers."""
    plan = plan_run(config, resume)
    run = plan.config.run
    if plan.config.env.residual_tables:
        from train.determinism import float32_matmuls

        float32_matmuls()  # the products `train ilc` learned the tables with
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
    result = _iterate(plan, trainer, checkpointer, state, log, stop)
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
             log: MetricsLog | None, stop: StopRequest) -> RunResult:
    """The iteration loop (progress bar, evaluation and checkpoints at their intervals; after
    each iteration, whether a stop signal reached any process)."""
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
            if done < run.iterations:
                stopped_by = _stop_signal_on_any_host(stop)
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


def _stop_signal_on_any_host(stop: StopRequest) -> str | None:
    """The stop signal that reached this or any other process ('SIGTERM' wins over 'SIGINT';
    'SIGTERM on another host' when only another one got it), or None: every process gets the
    same answer, so all stop after the same iteration."""
    names = (None, "SIGINT", "SIGTERM")
    code = names.index(stop.signal_name)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        gathered = multihost_utils.process_allgather(np.asarray(code, np.int32))
        code = int(np.max(gathered))
    name = names[code]
    return name if name is None or name == stop.signal_name else f"{name} on another host"


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
