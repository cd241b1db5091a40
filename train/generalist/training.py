"""Training the flow-matching transformer: sharded steps, checkpoints, metrics, the loop.

`FlowTrainer` jits one optimiser step over a 1-D device mesh ('data'): the batch axis is
split across devices, parameters and optimiser state are replicated, and XLA inserts the
gradient all-reduce. Batches are drawn inside the step from the source's pure `sample` with
`fold_in(data_key, step)`, so training never waits on the host and a resumed run replays
exactly the batches (and noise) of an uninterrupted one; a host-side `StreamSource` (a
streaming loader) is fed batch by batch instead, from the resumed step on.
`train_generalist` is the loop: progress bar, CSV/TensorBoard rows (`train.report.MetricsLog`),
orbax checkpoints (`GeneralistCheckpointer`), periodic env evaluation and a loss-curve PNG.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Any, Callable, Iterator, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from train.generalist import config as cfg
from train.generalist.data import WindowSource
from train.generalist.flow import LossMetrics, flow_loss
from train.generalist.model import FlowTransformer, init_params
from train.stop_signal import catch_stop_signals
from train.windows import WindowBatch


class StreamSource(Protocol):
    """A host-side loader (e.g. issue 7's): batches from any step on, for exact resume."""

    observation_size: int
    action_size: int
    num_pieces: int

    def batches(self, start_step: int, batch_size: int) -> Iterator[WindowBatch]:
        """Batches for steps start_step, start_step + 1, ... (the same ones on every call)."""
        ...


@struct.dataclass
class GeneralistState:
    """Everything a generalist run carries between steps.

    Attributes:
        params: float32 model parameters.
        opt_state: optax state.
        rng: uint32 [2], root key; step s uses fold_in(rng, s) for its batch and noise.
        step: int32 [], optimiser steps done.
    """

    params: Any
    opt_state: Any
    rng: jax.Array
    step: jax.Array


def learning_rate_schedule(optim: cfg.OptimConfig) -> optax.Schedule:
    """Linear warm-up to the peak, then cosine decay to `final_lr_fraction` x peak."""
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=optim.learning_rate, warmup_steps=optim.warmup_steps,
        decay_steps=optim.warmup_steps + max(optim.decay_steps, 1),
        end_value=optim.learning_rate * optim.final_lr_fraction)


def make_optimizer(optim: cfg.OptimConfig) -> optax.GradientTransformation:
    """Global-norm clipping then AdamW on the schedule."""
    return optax.chain(
        optax.clip_by_global_norm(optim.max_grad_norm),
        optax.adamw(learning_rate_schedule(optim), b2=optim.b2, weight_decay=optim.weight_decay))


class FlowTrainer:
    """Compiled init and step for one model, optimiser, source and mesh.

    Args:
        model: the velocity model.
        optim: optimiser settings (`batch_size` must divide by the mesh size).
        source: a `WindowSource` (pure on-device `sample`, used by `step`) or a
            `StreamSource` (host batches, fed through `step_on`).
        mesh: 1-D mesh with axis 'data' (default: every device).
    """

    def __init__(self, model: FlowTransformer, optim: cfg.OptimConfig,
                 source: WindowSource | StreamSource, mesh: Mesh | None = None):
        self.model = model
        self.optim = optim
        self.source = source
        self.mesh = mesh or Mesh(np.asarray(jax.devices()), ("data",))
        devices = self.mesh.devices.size
        if optim.batch_size % devices:
            raise ValueError(f"optim.batch_size={optim.batch_size} does not divide across "
                             f"{devices} devices; choose a multiple of {devices}")
        self.optimizer = make_optimizer(optim)
        self.replicated = NamedSharding(self.mesh, P())
        self.batch_sharding = NamedSharding(self.mesh, P("data"))
        self._init = jax.jit(self._init_fn, static_argnums=0, out_shardings=self.replicated)
        self._step = jax.jit(self._step_fn, out_shardings=(self.replicated, self.replicated),
                             donate_argnums=0)
        self._batch_step = jax.jit(self._batch_step_fn,
                                   out_shardings=(self.replicated, self.replicated),
                                   donate_argnums=0)

    def _init_fn(self, seed: int) -> GeneralistState:
        key = jax.random.PRNGKey(seed)
        param_key, rng = jax.random.split(key)
        params = init_params(self.model, param_key, self.source.observation_size)
        return GeneralistState(params=params, opt_state=self.optimizer.init(params), rng=rng,
                          step=jnp.zeros((), jnp.int32))

    def init(self, seed: int) -> GeneralistState:
        """A fresh state (replicated on the mesh)."""
        return self._init(seed)

    def abstract_state(self) -> GeneralistState:
        """Shapes, dtypes and shardings of a state (for restoring a checkpoint)."""
        shapes = jax.eval_shape(lambda: self._init_fn(0))
        return jax.tree_util.tree_map(
            lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=self.replicated), shapes)

    def _update(self, state: GeneralistState,
                batch: WindowBatch) -> tuple[GeneralistState, LossMetrics]:
        noise_key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), 1)
        grad_fn = jax.grad(lambda p: flow_loss(self.model, p, batch, noise_key), has_aux=True)
        grads, metrics = grad_fn(state.params)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return state.replace(params=params, opt_state=opt_state, step=state.step + 1), metrics

    def _step_fn(self, state: GeneralistState) -> tuple[GeneralistState, LossMetrics]:
        data_key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), 0)
        batch = self.source.sample(data_key, self.optim.batch_size)
        batch = jax.lax.with_sharding_constraint(batch, self.batch_sharding)
        return self._update(state, batch)

    def _batch_step_fn(self, state: GeneralistState,
                       batch: WindowBatch) -> tuple[GeneralistState, LossMetrics]:
        return self._update(state, jax.lax.with_sharding_constraint(batch, self.batch_sharding))

    def step(self, state: GeneralistState) -> tuple[GeneralistState, LossMetrics]:
        """One optimiser step on the source's batch for `state.step` (`state` is donated)."""
        return self._step(state)

    def step_on(self, state: GeneralistState,
                batch: WindowBatch) -> tuple[GeneralistState, LossMetrics]:
        """One optimiser step on a given batch (e.g. from a host-side loader)."""
        return self._batch_step(state, jax.device_put(batch, self.batch_sharding))


class GeneralistCheckpointer:
    """Orbax checkpoints `<out>/checkpoints/<step>` holding `state` and the run's `config`.

    Args:
        out: the run's folder.
        keep: newest checkpoints kept.
    """

    def __init__(self, out: str, keep: int = 2):
        self.directory = os.path.join(os.path.abspath(out), "checkpoints")
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                               enable_async_checkpointing=False)
        self.manager = ocp.CheckpointManager(self.directory, options=options,
                                             item_names=("state", "config"))

    def latest_step(self) -> int | None:
        """Step of the newest complete checkpoint, or None."""
        return self.manager.latest_step()

    def save(self, step: int, state: GeneralistState, config: cfg.GeneralistConfig) -> None:
        """Writes checkpoint `step` (blocks until it is on disk)."""
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(cfg.to_dict(config))),
            force=True)
        self.manager.wait_until_finished()

    def stored_config(self, step: int) -> cfg.GeneralistConfig:
        """The configuration saved with checkpoint `step`."""
        restored = self.manager.restore(step, args=ocp.args.Composite(
            config=ocp.args.JsonRestore()))
        return cfg.from_dict(restored["config"])

    def restore(self, step: int, abstract_state: GeneralistState) -> GeneralistState:
        """Checkpoint `step`'s state laid out like `abstract_state`."""
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state)))
        return restored["state"]

    def close(self) -> None:
        """Finishes writes and releases the manager."""
        self.manager.wait_until_finished()
        self.manager.close()


@dataclasses.dataclass
class TrainResult:
    """What a run did.

    Attributes:
        state: the final state.
        losses: (step, flow loss) at each logged step.
        samples_per_s: training windows per second after the first (compiling) step.
        compile_s: seconds of the first step (compile + run).
        evaluations: (step, {'eval/f1': ..}) for each evaluation.
        stopped_by: 'SIGTERM' / 'SIGINT' when a stop signal ended the run early (after a
            checkpoint at its last step), else None.
    """

    state: GeneralistState
    losses: list[tuple[int, float]]
    samples_per_s: float
    compile_s: float
    evaluations: list[tuple[int, dict[str, float]]]
    stopped_by: str | None = None


def resume_step(checkpointer: GeneralistCheckpointer, config: cfg.GeneralistConfig) -> int | None:
    """Newest checkpoint step, after checking that it was written by the same identity.

    Raises:
        ValueError: the stored model/optim/data settings differ (listed in the message).
    """
    step = checkpointer.latest_step()
    if step is None:
        return None
    differences = cfg.identity_differences(checkpointer.stored_config(step), config)
    if differences:
        raise ValueError(f"checkpoint {step} in {checkpointer.directory} was written with "
                         "another configuration; refusing to resume:\n  "
                         + "\n  ".join(differences))
    return step


def train_generalist(config: cfg.GeneralistConfig, trainer: FlowTrainer, resume: bool = False,
                     evaluate: Callable[[Any], dict[str, float]] | None = None) -> TrainResult:
    """Runs (or resumes) training to `config.run.steps`.

    Args:
        config: the run.
        trainer: compiled steps for the run's model and source.
        resume: continue from the newest checkpoint in `config.run.out`.
        evaluate: params -> {'eval/f1': ..} scalars, logged to eval.csv every
            `run.eval_every` steps (none when 0).
    """
    from tqdm import tqdm

    from train.report import MetricsLog

    run = config.run
    checkpointer = GeneralistCheckpointer(run.out)
    start = resume_step(checkpointer, config) if resume else None
    if resume and jax.process_index() == 0:
        print(f"--resume: no checkpoint in {run.out}; starting fresh" if start is None else
              f"resumed at step {start} of {run.steps} from "
              f"{os.path.join(checkpointer.directory, str(start))}", file=sys.stderr, flush=True)
    state = (checkpointer.restore(start, trainer.abstract_state()) if start is not None
             else trainer.init(run.seed))
    log = MetricsLog(run.out, ["generalist"], start, per_agent_tensorboard=False)
    begin = int(state.step)
    losses, evaluations = [], []
    stream = (None if hasattr(trainer.source, "sample")
              else iter(trainer.source.batches(begin, config.optim.batch_size)))
    bar = tqdm(total=run.steps, initial=begin, disable=not run.progress, unit="step")
    # Throughput counts training steps only: evaluation and checkpoint time is subtracted.
    compile_s, clock, timed_from, paused = 0.0, time.perf_counter(), begin + 1, 0.0
    schedule = learning_rate_schedule(config.optim)
    stopped_by, last = None, begin
    with catch_stop_signals() as stop:
        for step in range(begin + 1, run.steps + 1):
            state, metrics = (trainer.step(state) if stream is None
                              else trainer.step_on(state, next(stream)))
            if step == begin + 1:
                jax.block_until_ready(state)
                compile_s, clock = time.perf_counter() - clock, time.perf_counter()
            if step % run.log_every == 0 or step == run.steps:
                loss = float(metrics.flow)
                elapsed = time.perf_counter() - clock - paused
                sps = ((step - timed_from) * config.optim.batch_size / elapsed
                       if elapsed > 0 else 0.0)
                losses.append((step, loss))
                log.log("train", step, step * config.optim.batch_size,
                        {"loss/flow": np.array([loss])},
                        extra={"train/samples_per_s": sps, "train/lr": float(schedule(step))})
                bar.set_postfix(loss=f"{loss:.4f}")
            pause = time.perf_counter()
            if evaluate is not None and run.eval_every and step % run.eval_every == 0:
                jax.block_until_ready(state)
                pause = time.perf_counter()
                scores = evaluate(state.params)
                evaluations.append((step, scores))
                log.log("eval", step, step * config.optim.batch_size,
                        {k: np.array([v]) for k, v in scores.items()})
            last = step
            # A stop signal (preemption): checkpoint this step and return at once.
            if stop and step < run.steps:
                stopped_by = stop.signal_name
            if step % run.checkpoint_every == 0 or step == run.steps or stopped_by:
                checkpointer.save(step, state, config)
            paused += time.perf_counter() - pause
            bar.update(1)
            if stopped_by:
                break
    jax.block_until_ready(state)
    elapsed = time.perf_counter() - clock - paused
    sps = max(last - timed_from, 0) * config.optim.batch_size / elapsed if elapsed else 0.0
    bar.close()
    log.close()
    checkpointer.close()
    if losses:
        plot_losses(losses, os.path.join(run.out, "loss.png"))
    return TrainResult(state=state, losses=losses, samples_per_s=sps, compile_s=compile_s,
                       evaluations=evaluations, stopped_by=stopped_by)


def plot_losses(losses: list[tuple[int, float]], path: str) -> str:
    """Writes the flow-loss curve (log scale) to `path`; returns it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([s for s, _ in losses], [v for _, v in losses], lw=1.5)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("flow loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
