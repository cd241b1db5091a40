"""The off-policy learner's networks: a tanh-Gaussian actor and an ensemble of DroQ critics.

DroQ (Hiraoka et al., 2022) puts dropout and layer normalisation after each hidden layer of the
critics, which lets a high update-to-data ratio work without REDQ's large ensembles; the
piano anchors (RoboPianist, RP1M, OmniPianist) trained their specialists with it. Inputs are
normalised observations; actions live in [-1, 1].
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class Actor(nn.Module):
    """obs [..., O] -> (mean [..., A], log_std [..., A]) of the pre-tanh Gaussian; with
    `zero_mean` the mean layer starts at zero (the first mean action is 0)."""

    hidden: Sequence[int]
    action_size: int
    zero_mean: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = obs
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        zero = nn.initializers.zeros
        mean = (nn.Dense(self.action_size, kernel_init=zero, bias_init=zero)(x)
                if self.zero_mean else nn.Dense(self.action_size)(x))
        log_std = jnp.clip(nn.Dense(self.action_size)(x), LOG_STD_MIN, LOG_STD_MAX)
        return mean, log_std


class Critic(nn.Module):
    """(obs [..., O], action [..., A]) -> Q [...]; Dense -> Dropout -> LayerNorm -> ReLU."""

    hidden: Sequence[int]
    dropout: float
    layer_norm: bool

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array, train: bool) -> jax.Array:
        x = jnp.concatenate([obs, action], axis=-1)
        for width in self.hidden:
            x = nn.Dense(width)(x)
            if self.dropout > 0:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = nn.relu(x)
        return nn.Dense(1)(x)[..., 0]


class CriticEnsemble(nn.Module):
    """`count` independent critics -> Q [count, ...]."""

    count: int
    hidden: Sequence[int]
    dropout: float
    layer_norm: bool

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array, train: bool) -> jax.Array:
        ensemble = nn.vmap(Critic, variable_axes={"params": 0},
                           split_rngs={"params": True, "dropout": True},
                           in_axes=None, out_axes=0, axis_size=self.count)
        return ensemble(self.hidden, self.dropout, self.layer_norm)(obs, action, train)


def sample_action(mean: jax.Array, log_std: jax.Array, key: jax.Array
                  ) -> tuple[jax.Array, jax.Array]:
    """A tanh-Gaussian action and its log-probability.

    Args:
        mean, log_std: float32 [..., A].
        key: PRNG key.

    Returns:
        (action [..., A] in (-1, 1), log-probability [...]).
    """
    std = jnp.exp(log_std)
    raw = mean + std * jax.random.normal(key, mean.shape)
    gaussian = -0.5 * (((raw - mean) / std) ** 2 + 2 * log_std + jnp.log(2 * jnp.pi))
    # log |d tanh(u) / du| = 2 (log 2 - u - softplus(-2u)), the numerically stable form.
    squash = 2.0 * (jnp.log(2.0) - raw - jax.nn.softplus(-2.0 * raw))
    return jnp.tanh(raw), jnp.sum(gaussian - squash, axis=-1)
