"""The flow-matching transformer: predicts the velocity of a noisy action chunk.

Inputs per example: the observation history [H=2, O], the noisy chunk x_t [T=4, A] and the
flow time t in [0, 1]. Output: the velocity field v(x_t, t | obs) [T, A].

Observation tokens. Each observation is cut into *segments* of equal-width rows
(`TokenSegment(start, count, width)`); every row becomes one token through the segment's own
linear projection, plus a learned embedding of (segment, row) and of the history step. For the
piano env (`mjx_piano.observation`) the segments are: the 11 goal rows (each K keys + sustain:
one token per lookahead step, so attention can pick the step it needs), one key-state+sustain
token, and one body token (fingertips, hand joints and the optional fingering block); that is
13 tokens per observation, 26 for the history. Envs without a layout give one token per
observation (the whole vector). See `token_segments`.

Network. Observation tokens -> `encoder_depth` pre-LN self-attention blocks -> memory. The
flow time goes through sinusoidal features and an MLP; it is added to every action token and
appended to the memory as one more token. Action tokens (linear projection of x_t plus a
learned position embedding) -> `depth` pre-LN blocks of non-causal self-attention (padded
steps masked as keys), cross-attention to the memory and an MLP -> layer norm -> a float32
linear head. Matmuls run in `compute_dtype` (bf16 by default); parameters, layer norms,
attention softmax, the residual stream and the output head stay float32.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from train.generalist.config import ModelConfig


class TokenSegment(NamedTuple):
    """`count` consecutive rows of `width` features starting at `start` of the observation."""

    start: int
    count: int
    width: int


def token_segments(env: object) -> tuple[TokenSegment, ...]:
    """How to tokenise `env`'s observations (see the module docstring).

    Uses `env.layout` (`mjx_piano.observation.ObservationLayout`) for the piano env and
    `env.config` (`mjx_piano.toy_env.ToyConfig`: goal rows then key positions) for the toy env;
    any other env gets one token per observation.
    """
    layout = getattr(env, "layout", None)
    if layout is not None:
        s = layout.slices()
        rows, keys = layout.lookahead + 1, layout.num_keys
        body_start, body_stop = s["fingertips"].start, layout.size
        segments = [TokenSegment(0, rows, keys + 1),
                    TokenSegment(s["key_state"].start, 1, keys + 1)]
        if body_stop > body_start:
            segments.append(TokenSegment(body_start, 1, body_stop - body_start))
        return tuple(segments)
    config = getattr(env, "config", None)
    if config is not None and hasattr(config, "lookahead") and hasattr(config, "num_keys"):
        rows, keys = config.lookahead + 1, config.num_keys
        return (TokenSegment(0, rows, keys + 1), TokenSegment(rows * (keys + 1), 1, keys))
    return (TokenSegment(0, 1, int(env.observation_size)),)


def segments_size(segments: Sequence[TokenSegment]) -> int:
    """Observation features the segments cover (the end of the last one)."""
    return max(s.start + s.count * s.width for s in segments)


def time_features(t: jax.Array, features: int) -> jax.Array:
    """Sinusoidal features of the flow time.

    Args:
        t: float32 [B], flow time in [0, 1].
        features: output size (even).

    Returns:
        float32 [B, features]: sin then cos of t * 1000 at geometric frequencies 1 .. 1e-4.
    """
    half = features // 2
    freqs = jnp.exp(-math.log(10_000.0) * jnp.arange(half, dtype=jnp.float32) / half)
    angles = 1000.0 * t[:, None] * freqs[None, :]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class Mlp(nn.Module):
    """Dense -> GELU -> Dense, `ratio` x wider in the middle."""

    width: int
    ratio: int
    dtype: jnp.dtype

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = nn.Dense(self.width * self.ratio, dtype=self.dtype, name="up")(x)
        h = nn.gelu(h)
        return nn.Dense(self.width, dtype=self.dtype, name="down")(h)


class Block(nn.Module):
    """Pre-LN transformer block: self-attention, optional cross-attention, MLP.

    Attributes:
        config: model sizes.
        cross: whether to cross-attend to a memory.
    """

    config: ModelConfig
    cross: bool

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array | None = None,
                 memory: jax.Array | None = None) -> jax.Array:
        """Args: x float32 [B, N, D]; mask bool [B, 1, N, N] or None; memory [B, M, D]."""
        c = self.config
        dtype = jnp.dtype(c.compute_dtype)
        attention = lambda name: nn.MultiHeadDotProductAttention(  # noqa: E731
            num_heads=c.heads, dtype=dtype, param_dtype=jnp.float32,
            force_fp32_for_softmax=True, name=name)
        norm = lambda name: nn.LayerNorm(dtype=jnp.float32, name=name)  # noqa: E731
        h = norm("norm_self")(x)
        x = x + attention("self_attention")(h, h, mask=mask).astype(jnp.float32)
        if self.cross:
            h = norm("norm_cross")(x)
            x = x + attention("cross_attention")(h, memory).astype(jnp.float32)
        h = norm("norm_mlp")(x)
        return x + Mlp(c.width, c.mlp_ratio, dtype, name="mlp")(h).astype(jnp.float32)


class FlowTransformer(nn.Module):
    """Velocity field of action chunks given the observation history.

    Attributes:
        config: model sizes.
        segments: observation tokenisation (`token_segments`).
        action_size: A.
        horizon: T, actions per chunk.
        history: H, observations per example.
    """

    config: ModelConfig
    segments: tuple[TokenSegment, ...]
    action_size: int
    horizon: int
    history: int

    def setup(self) -> None:
        c = self.config
        dtype = jnp.dtype(c.compute_dtype)
        init = nn.initializers.normal(0.02)
        self.obs_in = [nn.Dense(c.width, dtype=dtype, name=f"obs_in_{i}")
                       for i in range(len(self.segments))]
        tokens = sum(s.count for s in self.segments)
        self.obs_position = self.param("obs_position", init, (tokens, c.width))
        self.obs_history = self.param("obs_history", init, (self.history, c.width))
        self.encoder = [Block(c, cross=False, name=f"encoder_{i}")
                        for i in range(c.encoder_depth)]
        self.time_in = nn.Dense(c.width, name="time_in")
        self.time_out = nn.Dense(c.width, name="time_out")
        self.action_in = nn.Dense(c.width, dtype=dtype, name="action_in")
        self.action_position = self.param("action_position", init, (self.horizon, c.width))
        self.decoder = [Block(c, cross=True, name=f"decoder_{i}") for i in range(c.depth)]
        self.out_norm = nn.LayerNorm(dtype=jnp.float32, name="out_norm")
        self.head = nn.Dense(self.action_size, dtype=jnp.float32, name="head")

    def encode(self, observations: jax.Array) -> jax.Array:
        """Observation tokens after the encoder.

        Args:
            observations: float32 [B, H, O].

        Returns:
            float32 [B, H * N, D], N tokens per observation.
        """
        b, h, _ = observations.shape
        parts = []
        for proj, s in zip(self.obs_in, self.segments):
            rows = observations[..., s.start: s.start + s.count * s.width]
            parts.append(proj(rows.reshape(b, h, s.count, s.width)).astype(jnp.float32))
        tokens = jnp.concatenate(parts, axis=2)  # [B, H, N, D]
        tokens = tokens + self.obs_position[None, None] + self.obs_history[None, :, None]
        tokens = tokens.reshape(b, -1, self.config.width)
        for block in self.encoder:
            tokens = block(tokens)
        return tokens

    def __call__(self, observations: jax.Array, noisy_actions: jax.Array, t: jax.Array,
                 action_mask: jax.Array | None = None) -> jax.Array:
        """Predicted velocity.

        Args:
            observations: float32 [B, H, O].
            noisy_actions: float32 [B, T, A], x_t.
            t: float32 [B], flow time (0 = noise, 1 = data).
            action_mask: bool [B, T] or None (all valid); invalid steps are hidden from the
                others' attention, so they cannot change the valid steps' predictions.

        Returns:
            float32 [B, T, A].
        """
        return self.decode(self.encode(observations), noisy_actions, t, action_mask)

    def decode(self, memory: jax.Array, noisy_actions: jax.Array, t: jax.Array,
               action_mask: jax.Array | None) -> jax.Array:
        """Velocity from encoded observations (`encode`); arguments as in `__call__`."""
        time = self.time_out(nn.silu(self.time_in(time_features(t, self.config.time_features))))
        memory = jnp.concatenate([memory, time[:, None]], axis=1)
        x = self.action_in(noisy_actions).astype(jnp.float32)
        x = x + self.action_position[None] + time[:, None]
        mask = None if action_mask is None else action_mask[:, None, None, :]
        for block in self.decoder:
            x = block(x, mask=mask, memory=memory)
        return self.head(self.out_norm(x))


def make_model(config: ModelConfig, segments: tuple[TokenSegment, ...], action_size: int,
               horizon: int, history: int) -> FlowTransformer:
    """The model for these sizes (hashable config and segments, so jit caches by them)."""
    return FlowTransformer(config=config, segments=tuple(TokenSegment(*s) for s in segments),
                           action_size=action_size, horizon=horizon, history=history)


def init_params(model: FlowTransformer, key: jax.Array, observation_size: int) -> dict:
    """Float32 parameters for `model` (shapes from one dummy example)."""
    obs = jnp.zeros((1, model.history, observation_size), jnp.float32)
    actions = jnp.zeros((1, model.horizon, model.action_size), jnp.float32)
    return model.init(key, obs, actions, jnp.zeros((1,), jnp.float32))["params"]


def parameter_count(params: dict) -> int:
    """Number of scalars in `params`."""
    return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))
