"""Planning a specialist run: every check that can fail on user input, before anything is
traced or compiled.

`plan_run` resolves env and piece names, agents against pieces (`assign_pieces`), the learner's
sizes, the device mesh, MJX-Warp's contact slots and the output folder, and compares a checkpoint
to resume with the configuration (`train.checkpoint.check_resumable`). `train.loop` then drives
the compiled `Trainer` from the `RunPlan`.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from mjx_piano import warp_buffers
from mjx_piano.paths import check_output_folder
from mjx_piano.pieces import PieceBank
from train import envs
from train.checkpoint import Checkpointer, check_resumable
from train.code_versions import installed_versions
from train.config import SpecialistConfig, learner_config
from train.parallel import mesh_shape


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
    check_learner(config)
    shape = mesh_shape(len(jax.devices()), agents, learner.num_envs, config.run.mesh)
    if config.env.impl == "warp":
        resolved = _size_warp_contacts(resolved, shape)
    check_output_folder(config.run.out)
    loaded = envs.make_env(resolved.env, resolved.reward)
    resolved = dataclasses.replace(resolved, env=dataclasses.replace(
        resolved.env, pieces_sha256=envs.pieces_sha256(loaded)), code=installed_versions())
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


def check_learner(config: SpecialistConfig) -> None:
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
        if ppo.initial_action_std < 0 or (ppo.initial_action_std and not ppo.zero_initial_action):
            raise ValueError(f"ppo.initial_action_std = {ppo.initial_action_std}: must be >= 0, "
                             "and > 0 only with ppo.zero_initial_action (it sets the std of the "
                             "zeroed output layer)")
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
    total = warp_buffers.contact_slots(config.env.key_dynamics, envs_in_run)
    return dataclasses.replace(config, env=dataclasses.replace(config.env, naconmax=total))
