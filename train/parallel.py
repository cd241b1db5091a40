"""Agents x envs over devices: a `jax.sharding.Mesh` with axes ('agents', 'envs').

`Trainer` vmaps a learner's `init` / `iteration` / `evaluate` (PPO, `train.ppo`, or SAC,
`train.sac`) over a leading agent axis and jits them with explicit shardings: every state leaf
is split along 'agents' (a SAC agent's replay buffer and its piece bank too), the env states and
piece table also along 'envs'. The pieces are an argument of `init` and live in the state, so a
trainer compiled once serves any pieces of the same shapes. The same code runs on 1 CPU, fake CPU devices, one
or many GPUs, and a TPU slice; on many hosts call `jax.distributed.initialize()` first and the
mesh spans `jax.devices()` of all of them.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from train.config import PPOConfig, SACConfig
from train.envs import Env
from train.episodes import EvalMetrics
from train.ppo import PPO
from train.sac import SAC

Learner = PPO | SAC

AXES = ("agents", "envs")


def mesh_shape(num_devices: int, agents: int, envs: int,
               requested: Sequence[int] = ()) -> tuple[int, int]:
    """Chooses (or checks) the mesh shape; never compiles anything.

    Without a request, as many devices as possible go to the agent axis (agents are
    independent, so that costs no communication) and the rest to the env axis.

    Args:
        num_devices: devices available.
        agents: number of agents.
        envs: envs per agent.
        requested: (agents_axis, envs_axis), or () to choose.

    Raises:
        ValueError: the shape does not use every device, or agents / envs do not divide.
    """
    if requested:
        if len(requested) != 2:
            raise ValueError(f"mesh must be (agents, envs), got {tuple(requested)}")
        shape = (int(requested[0]), int(requested[1]))
        if shape[0] * shape[1] != num_devices:
            raise ValueError(f"mesh {shape} needs {shape[0] * shape[1]} devices, "
                             f"but {num_devices} are available")
    else:
        on_agents = math.gcd(agents, num_devices)
        shape = (on_agents, num_devices // on_agents)
    if agents % shape[0]:
        raise ValueError(f"{agents} agents do not divide across the mesh's agent axis of "
                         f"{shape[0]} devices (mesh {shape} on {num_devices} devices)")
    if envs % shape[1]:
        raise ValueError(f"{envs} envs per agent do not divide across the mesh's env axis of "
                         f"{shape[1]} devices (mesh {shape} on {num_devices} devices); "
                         f"choose num_envs as a multiple of {shape[1]} or set the mesh")
    return shape


def make_mesh(shape: tuple[int, int], devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A mesh of `shape` over `devices` (default: all devices of all processes)."""
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.asarray(devices).reshape(shape), AXES)


def state_shardings(mesh: Mesh, state: Any, env_batched: Any) -> Any:
    """A `NamedSharding` per leaf of a batched learner state (or of its `jax.eval_shape`).

    Args:
        mesh: the device mesh.
        state: the (abstract) state: a dataclass with `env_state` and `pieces` (PPO's
            `TrainState`, SAC's `SACState`); every other leaf is split along 'agents' only.
        env_batched: per leaf of `state.env_state`, whether it has the agent and env axes
            (`batched_leaves`). MJX-Warp keeps some buffers (its contacts) shared by all
            envs of a call: those have neither axis and are replicated.
    """
    per_agent = NamedSharding(mesh, P("agents"))
    per_env = NamedSharding(mesh, P("agents", "envs"))
    replicated = NamedSharding(mesh, P())
    shardings = jax.tree_util.tree_map(lambda _: per_agent, state.replace(env_state=None))
    return shardings.replace(
        env_state=jax.tree_util.tree_map(lambda b: per_env if b else replicated, env_batched),
        pieces=per_env)


def batched_leaves(one: Any, two: Any) -> Any:
    """Per leaf: whether its shape differs between two (abstract) trees, i.e. whether it has
    the axis whose size differs between them."""
    return jax.tree_util.tree_map(lambda a, b: a.shape != b.shape, one, two)


def abstract_agents(learner: Learner, agents: int, pieces_per_agent: int, max_steps: int) -> Any:
    """Shapes and dtypes (no shardings) of `agents` agents' state: `learner.init` traced
    abstractly (nothing runs or compiles).

    Args:
        learner: the learner.
        agents: leading axis of every leaf.
        pieces_per_agent: k, the pieces in each agent's bank.
        max_steps: control steps of the longest piece (the bank's width less the lookahead).
    """
    keys = jax.ShapeDtypeStruct((agents, 2), jnp.uint32)
    pieces = jax.ShapeDtypeStruct((agents, learner.config.num_envs), jnp.int32)
    bank = jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct((agents, *s.shape), s.dtype),
                                  learner.env.bank_shape(pieces_per_agent, max_steps))
    return jax.eval_shape(jax.vmap(learner.init), keys, pieces, bank)


def make_learner(env: Env, config: PPOConfig | SACConfig) -> Learner:
    """PPO for a `PPOConfig`, SAC for a `SACConfig`."""
    return SAC(env, config) if isinstance(config, SACConfig) else PPO(env, config)


class Trainer:
    """Compiled, sharded, agent-batched learning for one env, one config and one mesh.

    Build it with `get_trainer` so that equal arguments share compiled functions.

    Args:
        env: the env.
        config: the learner's hyper-parameters (`PPOConfig` or `SACConfig`).
        mesh: device mesh with axes ('agents', 'envs').
        eval_pieces: pieces per agent k (one eval env each).
        eval_steps: control steps an evaluation runs: the longest piece's length, which with
            k fixes the shape of an agent's bank.
    """

    def __init__(self, env: Env, config: PPOConfig | SACConfig, mesh: Mesh, eval_pieces: int,
                 eval_steps: int):
        self.learner = make_learner(env, config)
        self.mesh = mesh
        self.eval_pieces = eval_pieces
        self.eval_steps = eval_steps
        self.per_agent = NamedSharding(mesh, P("agents"))
        self.per_env = NamedSharding(mesh, P("agents", "envs"))
        one, two = self._abstract_init(1), self._abstract_init(2)
        self.state_sharding = state_shardings(mesh, one,
                                              batched_leaves(one.env_state, two.env_state))
        self._init = jax.jit(jax.vmap(self.learner.init),
                             in_shardings=(self.per_agent, self.per_env, self.per_agent),
                             out_shardings=self.state_sharding)
        self._iteration = jax.jit(jax.vmap(self.learner.iteration),
                                  in_shardings=(self.state_sharding,),
                                  out_shardings=(self.state_sharding, self.per_agent),
                                  donate_argnums=0)
        self._evaluate = jax.jit(jax.vmap(self._evaluate_agent),
                                 in_shardings=(self.state_sharding,),
                                 out_shardings=self.per_agent)

    @property
    def ppo(self) -> PPO:
        """The learner, when it is PPO (what the dataset and performance code act with).

        Raises:
            TypeError: the run's learner is SAC.
        """
        if not isinstance(self.learner, PPO):
            raise TypeError("this run's learner is SAC; acting with its checkpoints here is "
                            "not supported yet (use a PPO run)")
        return self.learner

    def _abstract_init(self, agents: int) -> Any:
        return abstract_agents(self.learner, agents, self.eval_pieces, self.eval_steps)

    def _evaluate_agent(self, state: Any) -> EvalMetrics:
        return self.learner.evaluate(state, state.pieces[: self.eval_pieces], self.eval_steps)

    def init(self, seeds: Sequence[int], pieces: np.ndarray, bank: Any) -> Any:
        """Fresh agents.

        Args:
            seeds: agent i starts from PRNGKey(seeds[i]).
            pieces: int32 [agents, envs], index into the agent's bank of each env's piece.
            bank: `PieceBank` with leaves [agents, k, ...] (host arrays): each agent's pieces.
        """
        keys = np.stack([np.asarray(jax.random.PRNGKey(s)) for s in seeds])
        pieces = np.asarray(pieces, np.int32)
        bank = jax.tree_util.tree_map(lambda x: _global_array(np.asarray(x), self.per_agent),
                                      bank)
        return self._init(_global_array(keys, self.per_agent),
                          _global_array(pieces, self.per_env), bank)

    def abstract_state(self, agents: int) -> Any:
        """Shapes, dtypes and shardings of a state with `agents` agents (for restoring)."""
        shapes = self._abstract_init(agents)
        return jax.tree_util.tree_map(
            lambda s, sharding: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
            shapes, self.state_sharding)

    def iteration(self, state: Any) -> tuple[Any, Any]:
        """One iteration of every agent (the input state is donated)."""
        return self._iteration(state)

    def evaluate(self, state: Any) -> EvalMetrics:
        """Deterministic evaluation of every agent on its pieces; leaves [agents, ...]."""
        return self._evaluate(state)


def _global_array(value: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """`value` (the same on every process) as one array laid out by `sharding`."""
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


@functools.lru_cache(maxsize=8)
def get_trainer(env: Env, config: PPOConfig | SACConfig, mesh: Mesh, eval_pieces: int,
                eval_steps: int) -> Trainer:
    """A `Trainer`, shared between calls with equal arguments (so compiled code is reused)."""
    return Trainer(env, config, mesh, eval_pieces, eval_steps)
