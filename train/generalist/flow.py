"""Rectified flow on action chunks: the training loss and Euler sampling.

Path: x_t = (1 - t) x0 + t x1 with x0 ~ N(0, I) (noise) and x1 the expert chunk; the model
regresses the constant velocity v = x1 - x0. Sampling integrates dx/dt = v(x, t) from t = 0
(noise) to t = 1 with `steps` Euler steps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from train.generalist.model import FlowTransformer
from train.windows import WindowBatch


@struct.dataclass
class LossMetrics:
    """Scalars of one step's loss (float32 [])."""

    flow: jax.Array
    valid_fraction: jax.Array


def velocity_target(x0: jax.Array, x1: jax.Array) -> jax.Array:
    """The rectified-flow regression target d x_t / d t = x1 - x0 (same shape as x0)."""
    return x1 - x0


def flow_loss(model: FlowTransformer, params: dict, batch: WindowBatch,
              key: jax.Array) -> tuple[jax.Array, LossMetrics]:
    """Masked rectified-flow MSE (float32), averaged over valid (example, step, action) entries.

    Args:
        model: the velocity model.
        params: its parameters.
        batch: windows, observations [B, H, O], actions [B, T, A], action_mask [B, T].
        key: noise and flow-time randomness.

    Returns:
        (loss [], metrics).
    """
    x1 = batch.actions.astype(jnp.float32)
    mask = batch.action_mask
    noise_key, time_key = jax.random.split(key)
    x0 = jax.random.normal(noise_key, x1.shape, jnp.float32)
    t = jax.random.uniform(time_key, x1.shape[:1], jnp.float32)
    # Padded steps' actions are zeroed so their content is irrelevant even as x_t input.
    x1 = jnp.where(mask[..., None], x1, 0.0)
    xt = (1.0 - t[:, None, None]) * x0 + t[:, None, None] * x1
    target = velocity_target(x0, x1)
    predicted = model.apply({"params": params}, batch.observations.astype(jnp.float32), xt, t,
                            mask)
    error = jnp.mean(jnp.square(predicted.astype(jnp.float32) - target), axis=-1)  # [B, T]
    weight = mask.astype(jnp.float32)
    loss = jnp.sum(error * weight) / jnp.maximum(jnp.sum(weight), 1.0)
    return loss, LossMetrics(flow=loss, valid_fraction=jnp.mean(weight))


def sample_chunks(model: FlowTransformer, params: dict, observations: jax.Array,
                  key: jax.Array, steps: int = 10) -> jax.Array:
    """Action chunks by Euler integration of the learned flow from Gaussian noise.

    Args:
        model: the velocity model.
        params: its parameters.
        observations: float32 [B, H, O].
        key: the initial noise (same key -> same chunks).
        steps: Euler steps (static).

    Returns:
        float32 [B, T, A], in the policy's action space (not clipped).
    """
    b = observations.shape[0]
    x = jax.random.normal(key, (b, model.horizon, model.action_size), jnp.float32)
    dt = 1.0 / steps
    # The observation encoder does not depend on x or t: run it once per chunk.
    memory = model.apply({"params": params}, observations.astype(jnp.float32),
                         method=FlowTransformer.encode)

    def euler(i: jax.Array, x: jax.Array) -> jax.Array:
        t = jnp.full((b,), i * dt, jnp.float32)
        v = model.apply({"params": params}, memory, x, t, method=_velocity_from_memory)
        return x + dt * v

    return jax.lax.fori_loop(0, steps, euler, x)


def _velocity_from_memory(module: FlowTransformer, memory: jax.Array, x: jax.Array,
                          t: jax.Array) -> jax.Array:
    """`FlowTransformer.__call__` after `encode` (same parameters, no action mask)."""
    return module.decode(memory, x, t, None)
