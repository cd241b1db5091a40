"""The generalist in the batched env: chunked Euler sampling inside one jitted scan; evaluation.

`rollout` plays E envs for `steps` control steps. Every `execute` steps it samples a new
chunk of `horizon` actions for all envs at once (Euler integration of the flow from noise,
conditioned on each env's last two observations) and executes its first `execute` actions
(temporal action chunking). Each env keeps its own observation history, restarted (the
observation repeated) when its episode ends, as in the training windows. The whole rollout
is the one rollout scan (`mjx_piano.rollout.play`) over executed steps, sampling under a
`lax.cond` every `execute` steps, with `vmap` over envs: one compiled program, deterministic
for a fixed key.

`evaluate_pieces` plays every piece of a list once (or `envs_per_piece` times) and returns
the metrics of each piece's first finished episode; `format_table` / `plot_scores` report them.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from mjx_piano.rollout import play
from train.generalist.flow import sample_chunks
from train.generalist.model import FlowTransformer

METRICS = ("f1", "precision", "recall", "sustain_f1")


@struct.dataclass
class RolloutResult:
    """What a rollout saw, per env.

    Attributes:
        last_episode: the env's episode metrics of each env's first finished episode
            (leaves [E]).
        completed: bool [E], whether that env finished an episode.
    """

    last_episode: Any
    completed: jax.Array


def to_physical(env: Any, actions: jax.Array) -> jax.Array:
    """Policy actions in [-1, 1] (clipped) [..., A] -> the env's [action_low, action_high]."""
    low = jnp.asarray(env.action_low, jnp.float32)
    high = jnp.asarray(env.action_high, jnp.float32)
    return low + (jnp.clip(actions, -1.0, 1.0) + 1.0) * 0.5 * (high - low)


@dataclasses.dataclass(frozen=True)
class ChunkedActor:
    """The generalist as a policy of E envs: temporal action chunking over an observation
    history (what `rollout` plays, and what a DAgger collection acts with).

    Attributes:
        model: the velocity model (its `history` must be 2 or more).
        execute: actions executed per sampled chunk, 1..model.horizon.
        flow_steps: Euler steps per chunk.
    """

    model: FlowTransformer
    execute: int
    flow_steps: int = 10

    def __post_init__(self) -> None:
        if not 1 <= self.execute <= self.model.horizon:
            raise ValueError(f"execute={self.execute} must be in 1..{self.model.horizon}")

    def start(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The carry for first observations [E, O]: (history [E, H, O] of the observation
        repeated, queue [E, execute, A])."""
        history = jnp.repeat(obs[:, None], self.model.history, axis=1)
        return history, jnp.zeros((obs.shape[0], self.execute, self.model.action_size),
                                  jnp.float32)

    def act(self, params: Any, carry: tuple[jax.Array, jax.Array], obs: jax.Array,
            done: jax.Array, i: jax.Array, chunk_key: jax.Array
            ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        """Step i's actions in [-1, 1] [E, A] and the new carry.

        The newest observation [E, O] joins each env's history (`done` [E]: a new episode
        restarts it). Every `execute` steps a new chunk is sampled from `chunk_key` for all
        envs at once; the other steps pop the queue.
        """
        history, queue = carry
        new = obs[:, None]
        history = jnp.where(done[:, None, None], jnp.repeat(new, self.model.history, axis=1),
                            jnp.concatenate([history[:, 1:], new], axis=1))

        def sample() -> jax.Array:  # [E, execute, A]
            chunk = sample_chunks(self.model, params, history, chunk_key, self.flow_steps)
            return jnp.clip(chunk[:, :self.execute], -1.0, 1.0)

        queue = jax.lax.cond(i % self.execute == 0, sample, lambda: queue)
        return queue[:, i % self.execute], (history, queue)


def rollout(model: FlowTransformer, params: Any, env: Any, pieces: jax.Array, key: jax.Array,
            steps: int, execute: int, flow_steps: int = 10, bank: Any = None) -> RolloutResult:
    """Plays `pieces` with the generalist (pure; jit with steps/execute/flow_steps static).

    Args:
        model: the velocity model (its `history` must be 2 or more).
        params: its parameters.
        env: an unbatched env (`train.envs.Env`).
        pieces: int32 [E], bank index each env plays.
        key: reset and sampling randomness.
        steps: control steps (rounded up to a multiple of `execute`).
        execute: actions executed per chunk, 1..model.horizon.
        flow_steps: Euler steps per chunk.
        bank: the pieces (`PieceBank`) to bind `env` to; None plays the env's own.
    """
    actor = ChunkedActor(model, execute, flow_steps)
    env = env if bank is None else env.bind(bank)
    reset_key, sample_key = jax.random.split(key)
    env_state = jax.vmap(env.reset)(jax.random.split(reset_key, pieces.shape[0]), pieces)
    chunks = math.ceil(steps / execute)
    chunk_keys = jax.random.split(sample_key, chunks)

    def policy(carry: tuple[jax.Array, jax.Array], state: Any, i: jax.Array):
        action, carry = actor.act(params, carry, state.obs, state.done, i,
                                  chunk_keys[i // execute])
        return to_physical(env, action), None, carry

    played = play(jax.vmap(env.step), policy, env_state, chunks * execute,
                  xs=jnp.arange(chunks * execute), policy_carry=actor.start(env_state.obs))
    return RolloutResult(last_episode=played.first_episode, completed=played.finished)


@functools.lru_cache(maxsize=8)
def compiled_rollout(model: FlowTransformer, env: Any, steps: int, execute: int,
                     flow_steps: int):
    """`rollout` jitted for one (model, env, sizes); cached so evaluations reuse it. Give it
    an unbound env (`env.base`) and the bank as an argument: one compile serves every split of
    the same shapes."""
    return jax.jit(functools.partial(rollout, model, env=env, steps=steps, execute=execute,
                                     flow_steps=flow_steps))


@dataclasses.dataclass(frozen=True)
class PieceScores:
    """Evaluation of each piece (means over its envs' first episodes).

    Attributes:
        names: piece names [P].
        scores: {'f1' | 'precision' | 'recall' | 'sustain_f1': float [P]}.
        completed: float [P], fraction of the piece's envs that finished an episode.
    """

    names: tuple[str, ...]
    scores: dict[str, np.ndarray]
    completed: np.ndarray

    def means(self, prefix: str = "eval") -> dict[str, float]:
        """{'eval/f1': mean over pieces, ...}."""
        return {f"{prefix}/{m}": float(np.mean(v)) for m, v in self.scores.items()}


def evaluate_pieces(model: FlowTransformer, params: Any, env: Any, piece_ids: Sequence[int],
                    piece_names: Sequence[str], steps: int, key: jax.Array, execute: int,
                    flow_steps: int = 10, envs_per_piece: int = 1) -> PieceScores:
    """Plays every piece `envs_per_piece` times in one batched rollout (envs split across
    devices when their number divides).

    Args:
        steps: control steps (>= the longest episode, so every env finishes one).
        Other arguments as in `rollout`.
    """
    pieces = np.repeat(np.asarray(piece_ids, np.int32), envs_per_piece)
    devices = jax.devices()
    if len(devices) > 1 and pieces.shape[0] % len(devices) == 0:
        # Envs split across devices; the vmapped rollout follows its input's sharding.
        mesh = Mesh(np.asarray(devices), ("data",))
        pieces = jax.device_put(pieces, NamedSharding(mesh, P("data")))
    result = compiled_rollout(model, env.base, steps + 1, execute, flow_steps)(
        params, pieces=pieces, key=key, bank=env.bank)
    per_env = {m: np.asarray(getattr(result.last_episode, m), np.float64) for m in METRICS}
    shape = (len(piece_ids), envs_per_piece)
    scores = {m: v.reshape(shape).mean(1) for m, v in per_env.items()}
    completed = np.asarray(result.completed, np.float64).reshape(shape).mean(1)
    return PieceScores(names=tuple(piece_names), scores=scores, completed=completed)


def format_table(results: dict[str, PieceScores]) -> str:
    """A text table: one row per (split, piece) and a mean row per split."""
    header = ["split", "piece", *METRICS, "completed"]
    rows = []
    for split, r in results.items():
        for i, name in enumerate(r.names):
            rows.append([split, name, *(f"{r.scores[m][i]:.3f}" for m in METRICS),
                         f"{r.completed[i]:.2f}"])
        rows.append([split, "MEAN", *(f"{np.mean(r.scores[m]):.3f}" for m in METRICS),
                     f"{np.mean(r.completed):.2f}"])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths))
                     for row in [header, *rows])


def plot_scores(results: dict[str, PieceScores], path: str, title: str = "") -> str:
    """Bar chart of mean F1, precision, recall and sustain F1 per split (with the per-piece
    F1 as dots); writes `path` and returns it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(results), 4))
    width = 0.8 / len(METRICS)
    for j, metric in enumerate(METRICS):
        x = np.arange(len(results)) + (j - (len(METRICS) - 1) / 2) * width
        means = [float(np.mean(r.scores[metric])) for r in results.values()]
        ax.bar(x, means, width, label=metric)
        if metric == "f1":
            for xi, r in zip(x, results.values()):
                ax.scatter(np.full(len(r.names), xi), r.scores["f1"], s=6, color="black",
                           zorder=3)
    ax.set_xticks(np.arange(len(results)), list(results))
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score (first episode, mean over pieces)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title or "generalist evaluation", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
