"""Rolls trained specialists (PPO, SAC or ILC) out on device into a trajectory store.

One chunk = every agent x `chunk_envs` envs playing one episode of their pieces, in one jitted
`lax.scan` (agents `vmap`ped over envs `vmap`ped). The acting policy is the specialist (its
deterministic mode action plus Gaussian noise of std `noise` in the policy's [-1, 1] space,
clipped), or in relabel mode a learner's policy, a specialists run's or the flow generalist's
(DAgger: the learner explores, the specialist labels every state it visits). The label is the
specialist's mode action (an ILC run's: the IK pianist's under the clip's table).

Chunk c draws everything from `fold_in(PRNGKey(seed), c)`, so a chunk is a pure function of
the run, the settings and c: a killed collection resumes at the first chunk missing from the
manifest and produces exactly the trajectories an uninterrupted one would have.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import NamedSharding, PartitionSpec as P

from mjx_piano.paths import check_output_folder, check_run_folder, run_kind
from mjx_piano.rollout import play
from train.config import learner_config
from train.dataset import store
from train.dataset.card import write_card
from train.dataset.provenance import open_store
from train.dataset.learners import load_generalist_actor, run_root
from train.determinism import float32_matmuls
from train.generalist.rollout import ChunkedActor
from train.ilc_specialists import ILCExpert, load_ilc_specialists
from train.parallel import make_mesh, mesh_shape
from train.ppo import PPO
from train.restore import Specialists, load_specialists
from train.sac import SAC
from train.stop_signal import catch_stop_signals


@dataclasses.dataclass(frozen=True)
class CollectConfig:
    """Settings of a collection (all but `out`/`progress` are checked equal on resume).

    Attributes:
        run: training run folder whose newest checkpoint holds the specialists.
        out: store folder.
        rollouts: trajectories per specialist.
        chunk_envs: envs per specialist per chunk (one shard per chunk).
        noise: std of the Gaussian action noise in the policy's [-1, 1] space.
        seed: root seed of the collection.
        min_f1: trajectories with a lower F1 are dropped (or flagged, see `keep_flagged`).
        keep_flagged: store trajectories under `min_f1` with `flagged` set instead of dropping.
        relabel_learner: run folder of a policy that acts: a specialists run (its agent
            i mod agents acts for specialist i) or a generalist run (the flow transformer,
            acting with its run's `execute` and `flow_steps` for every specialist); None =
            the specialists act.
        progress: show a progress bar.
    """

    run: str
    out: str
    rollouts: int = 64
    chunk_envs: int = 64
    noise: float = 0.0
    seed: int = 0
    min_f1: float = 0.0
    keep_flagged: bool = False
    relabel_learner: str | None = None
    progress: bool = True


@struct.dataclass
class StepRecord:
    """What a rollout keeps per step, leaves [agents, T, envs, ...] after the scan."""

    observation: jax.Array
    action: jax.Array
    expert_action: jax.Array
    pressed: jax.Array
    reward: jax.Array
    reward_terms: jax.Array
    valid: jax.Array


@dataclasses.dataclass(frozen=True)
class CollectResult:
    """What `collect` did.

    Attributes:
        chunks_written: chunks rolled out by this call (resumed ones excluded).
        chunks_skipped: chunks already committed before this call (and intact).
        chunks_repaired: committed chunks found damaged and queued to be written again
            (counted in chunks_written once rewritten).
        stopped_by: 'SIGTERM' / 'SIGINT' when a stop signal ended the collection after a
            committed chunk (a rerun of the same command continues), else None.
        env_steps: env steps simulated by this call (all envs, all agents).
        timed_env_steps: those of the chunks after the first (compiling) one.
        rollout_s: seconds in the jitted rollouts after the first (compiling) call.
        compile_s: seconds of the first rollout call.
        card: the dataset card after the collection.
    """

    chunks_written: int
    chunks_skipped: int
    chunks_repaired: int
    stopped_by: str | None
    env_steps: int
    timed_env_steps: int
    rollout_s: float
    compile_s: float
    card: dict[str, Any]

    @property
    def env_steps_per_s(self) -> float:
        """Env steps/s over the timed (non-compiling) chunks; NaN if none."""
        return self.timed_env_steps / self.rollout_s if self.rollout_s > 0 else float("nan")


def reward_term_names(env: Any) -> tuple[str, ...]:
    """Names of the env's reward terms, in the order `flatten_terms` stacks them."""
    state = jax.eval_shape(env.reset, jax.ShapeDtypeStruct((2,), jnp.uint32),
                           jax.ShapeDtypeStruct((), jnp.int32))
    paths, _ = jax.tree_util.tree_flatten_with_path(state.reward_terms)
    return tuple(jax.tree_util.keystr(p).lstrip(".") for p, _ in paths)


def flatten_terms(terms: Any) -> jax.Array:
    """A reward-terms pytree of scalars [...] -> float32 [..., R]."""
    return jnp.stack([x.astype(jnp.float32) for x in jax.tree_util.tree_leaves(terms)], -1)


def key_states(env: Any, state: Any) -> jax.Array:
    """bool [K]: the piano env's `pressed`, or the toy env's depth over its threshold."""
    if hasattr(state, "pressed"):
        return state.pressed
    return state.position >= env.config.press_threshold


def make_rollout(expert: PPO | SAC | ILCExpert, actor: PPO | SAC | ChunkedActor | None,
                 length: int) -> Callable[..., Any]:
    """The jitted rollout of one chunk for all agents.

    `expert` labels every step with its deterministic action (an `ILCExpert` reads the env
    state, the learners the observation). `actor` acts: None (the
    expert), a learner run's PPO or SAC (its own parameters per agent, acting by
    `mode_action` in [-1, 1]) or the flow generalist (`ChunkedActor`, one set of parameters
    for all agents, sampling action chunks from its observation history).

    Returns:
        fn(expert_policy, expert_norm, actor_policy, actor_norm, generalist_params,
        pieces int32 [agents, envs], key uint32 [2], noise float32 [], bank) -> (StepRecord
        [agents, T, envs, ...], f1 float32 [agents, envs] (NaN if the episode did not end),
        length int32 [agents, envs], reset keys uint32 [agents, envs, 2]). The per-agent
        policies have leaves [agents, ...]; `generalist_params` is None unless the actor is
        the generalist.
    """
    chunked = isinstance(actor, ChunkedActor)
    state_labels = isinstance(expert, ILCExpert)

    def agent(expert_p, expert_n, actor_p, actor_n, generalist_p, pieces, key, noise, env):
        reset_key, noise_key = jax.random.split(key)
        keys = jax.random.split(reset_key, pieces.shape[0])
        chunk_key = jax.random.fold_in(noise_key, length)  # the generalist's chunks

        def policy(carry: Any, state: Any, x: tuple[jax.Array, jax.Array]):
            step_key, i = x
            label = (jax.vmap(functools.partial(expert.state_action, expert_p, expert_n))(state)
                     if state_labels else expert.mode_action(expert_p, expert_n, state.obs))
            if chunked:
                behave, carry = actor.act(generalist_p, carry, state.obs, state.done, i,
                                          jax.random.fold_in(chunk_key, i // actor.execute))
            elif actor is None:
                behave = label
            else:
                behave = actor.mode_action(actor_p, actor_n, state.obs)
            action = jnp.clip(behave + noise * jax.random.normal(step_key, behave.shape), -1, 1)
            return expert.to_physical(action), (action, label), carry

        def record(state: Any, chosen: tuple[jax.Array, jax.Array], new: Any,
                   seen: jax.Array) -> StepRecord:
            action, label = chosen
            return StepRecord(
                observation=state.obs, action=action, expert_action=label,
                pressed=jax.vmap(functools.partial(key_states, env))(state),
                reward=new.reward, reward_terms=flatten_terms(new.reward_terms), valid=~seen)

        start = jax.vmap(env.reset)(keys, pieces)
        played = play(jax.vmap(env.step), policy, start, length,
                      xs=(jax.random.split(noise_key, length), jnp.arange(length)),
                      policy_carry=actor.start(start.obs) if chunked else None, record=record)
        f1 = jnp.where(played.finished, played.first_episode.f1, jnp.nan)
        steps = jnp.sum(played.records.valid, axis=0, dtype=jnp.int32)
        return played.records, f1, steps, keys

    def rollout(expert_p, expert_n, actor_p, actor_n, generalist_p, pieces, key, noise, bank):
        agent_keys = jax.vmap(functools.partial(jax.random.fold_in, key))(
            jnp.arange(pieces.shape[0]))
        played = functools.partial(agent, env=expert.env.bind(bank))
        return jax.vmap(played, in_axes=(0, 0, 0, 0, None, 0, 0, None))(
            expert_p, expert_n, actor_p, actor_n, generalist_p, pieces, agent_keys, noise)

    return jax.jit(rollout)


def to_trajectories(records: StepRecord, f1: np.ndarray, steps: np.ndarray, keys: np.ndarray,
                    piece_index: np.ndarray, min_f1: float, keep_flagged: bool
                    ) -> store.Trajectories:
    """Host-side: a chunk's padded records [agents, T, envs, ...] -> stored trajectories.

    Trajectories are ordered agent-major then env; unfinished episodes (F1 NaN) are dropped.

    Args:
        piece_index: int [agents, envs], each env's piece as an index into the store's pieces.
    """
    agents, _, envs = records.valid.shape
    order = lambda x: np.swapaxes(np.asarray(x), 1, 2).reshape((agents * envs, -1) + x.shape[3:])
    rec = jax.tree_util.tree_map(order, records)
    f1, steps = f1.reshape(-1), steps.reshape(-1)
    finished = ~np.isnan(f1)
    flagged = finished & (f1 < min_f1)
    keep = finished & (keep_flagged | ~flagged)
    mask = rec.valid & keep[:, None]
    length = steps[keep].astype(np.int32)
    start = np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64)
    pick = lambda x: np.ascontiguousarray(x[mask])
    return store.Trajectories(
        observation=pick(rec.observation).astype(np.float32),
        action=pick(rec.action).astype(np.float32),
        expert_action=pick(rec.expert_action).astype(np.float32),
        pressed=pick(rec.pressed).astype(bool), reward=pick(rec.reward).astype(np.float32),
        reward_terms=pick(rec.reward_terms).astype(np.float32), start=start, length=length,
        piece=np.asarray(piece_index).reshape(-1)[keep].astype(np.int32),
        specialist=np.repeat(np.arange(agents, dtype=np.int32), envs)[keep],
        seed=np.asarray(keys, np.uint32).reshape(-1, 2)[keep],
        f1=f1[keep].astype(np.float32), flagged=flagged[keep])


def placements(agents: int, env_counts: set[int]) -> dict[int, tuple[Any, Any]]:
    """Per chunk env count, (per-agent, per-env) shardings over all devices, as training lays
    them out (agents first); {} on one device.

    Raises:
        ValueError: agents or a chunk's env count do not divide across the devices.
    """
    if jax.device_count() == 1:
        return {}
    out = {}
    for envs in sorted(env_counts):
        mesh = make_mesh(mesh_shape(jax.device_count(), agents, envs))
        out[envs] = (NamedSharding(mesh, P("agents")), NamedSharding(mesh, P("agents", "envs")))
    return out


def collect(config: CollectConfig) -> CollectResult:
    """Rolls out the specialists of `config.run` into the store `config.out` (resumable).

    Raises:
        ValueError: the store holds a collection with other settings, specialists on an
            ILC run's tables (a store keeps none), a learner whose observation/action sizes
            differ, sizes that do not divide across the devices, or chunks larger than an
            MJX-Warp run's envs per agent (its contact slots).
    """
    if config.rollouts < 1 or config.chunk_envs < 1:
        raise ValueError(f"--rollouts and --chunk-envs must be >= 1, got {config.rollouts} and "
                         f"{config.chunk_envs}")
    if config.noise < 0:
        raise ValueError(f"--noise must be >= 0, got {config.noise}")
    from train.library import library_entries, load_library

    is_library = bool(library_entries(config.run))  # a pool's folder: every entry at once
    is_ilc = not is_library and run_kind(config.run) == "ilc"
    if not (is_library or is_ilc):
        check_run_folder(config.run, "specialists", "--run")
    learner_kind = config.relabel_learner and run_kind(run_root(config.relabel_learner))
    if config.relabel_learner and learner_kind != "generalist":
        check_run_folder(config.relabel_learner, "specialists", "--relabel-learner")
    check_output_folder(config.out)
    if is_ilc:
        float32_matmuls()  # the products `train ilc` learned the tables with
    specialists = (load_library(config.run) if is_library else
                   load_ilc_specialists(config.run) if is_ilc else load_specialists(config.run))
    if specialists.config.env.residual_tables:  # a generalist could not act as they did
        raise ValueError(f"{config.run}'s specialists correct ILC tables (env.residual_tables "
                         f"{specialists.config.env.residual_tables}); a store keeps none")
    warp = specialists.config.env.impl == "warp"
    trained_envs = learner_config(specialists.config).num_envs if warp else 0
    if warp and min(config.chunk_envs, config.rollouts) > trained_envs:
        raise ValueError(f"the specialists trained on MJX-Warp, whose contact slots hold "
                         f"{trained_envs} envs per agent: collect with chunk_envs <= "
                         f"{trained_envs}")
    learner = generalist = None
    if learner_kind == "generalist":
        generalist = load_generalist_actor(config.relabel_learner)
        sizes = (generalist.observation_size, generalist.actor.model.action_size)
    elif config.relabel_learner:
        learner = load_specialists(config.relabel_learner)
        sizes = (learner.learner.env.observation_size, learner.learner.env.action_size)
    env = specialists.loaded.env
    if config.relabel_learner and sizes != (env.observation_size, env.action_size):
        raise ValueError(f"the learner's env has other observation/action sizes ({sizes[0]}/"
                         f"{sizes[1]}) than the specialists' ({env.observation_size}/"
                         f"{env.action_size})")
    num_keys = int(jax.eval_shape(lambda: key_states(env, env.reset(
        jax.random.PRNGKey(0), jnp.zeros((), jnp.int32)))).shape[0])
    manifest = open_store(config, specialists, learner or generalist, reward_term_names(env),
                          num_keys)
    # A damaged or missing shard is recomputed: a chunk is a pure function of its index.
    damaged = store.damaged_shards(config.out) if manifest["shards"] else {}
    for index, problems in damaged.items():
        print(f"{config.out}: {store.shard_name(index)} is damaged ({problems[0]}"
              f"{'; ...' if len(problems) > 1 else ''}): recomputing it", file=sys.stderr)
    done = {s["index"] for s in manifest["shards"]} - set(damaged)
    chunk_envs = min(config.chunk_envs, config.rollouts)
    chunks = -(-config.rollouts // chunk_envs)
    # The last chunk may be smaller (one more compile).
    sizes = {c: min(chunk_envs, config.rollouts - c * chunk_envs) for c in range(chunks)}
    todo = [c for c in range(chunks) if c not in done]
    layouts = placements(specialists.agents, {sizes[c] for c in todo})
    actor = generalist.actor if generalist else learner.learner if learner else None
    rollout = make_rollout(specialists.learner, actor, int(specialists.loaded.episode_length))
    policies = (specialists.policy, specialists.normalizer, *_actor(specialists, learner))
    bar = _progress(config.progress, initial=len(done), total=chunks)
    env_steps, timed_steps, rollout_s, compile_s = 0, 0, 0.0, 0.0
    written, stopped_by = 0, None
    with catch_stop_signals() as stop:
        for count, chunk in enumerate(todo):
            data, steps, elapsed, mean_f1 = _run_chunk(
                config, specialists, rollout, policies, generalist and generalist.params,
                layouts, chunk, sizes[chunk])
            env_steps += steps
            if count == 0:
                compile_s = elapsed
            else:
                timed_steps, rollout_s = timed_steps + steps, rollout_s + elapsed
            manifest = store.commit_shard(config.out, manifest, chunk, data,
                                          store.write_shard(config.out, chunk, data))
            bar.update(1)
            bar.set_postfix(traj=manifest["totals"]["trajectories"], f1=f"{mean_f1:.3f}")
            written += 1
            # A stop signal (preemption): this chunk is committed; the rest waits for a rerun.
            if stop and written < len(todo):
                stopped_by = stop.signal_name
                break
    bar.close()
    return CollectResult(chunks_written=written, chunks_skipped=len(done),
                         chunks_repaired=len(damaged), stopped_by=stopped_by,
                         env_steps=env_steps,
                         timed_env_steps=timed_steps, rollout_s=rollout_s, compile_s=compile_s,
                         card=write_card(config.out))


def _actor(specialists: Specialists, learner: Specialists | None) -> tuple[Any, Any]:
    """The acting policy and normaliser per specialist (leaves [agents, ...]); (None, None)
    when the specialists or the generalist act."""
    if learner is None:
        return None, None
    pick = np.arange(specialists.agents) % learner.agents
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[pick],
                                  (learner.policy, learner.normalizer))


def _run_chunk(config: CollectConfig, specialists: Specialists, rollout: Callable[..., Any],
               policies: tuple[Any, ...], generalist_params: Any,
               layouts: dict[int, tuple[Any, Any]], chunk: int,
               envs: int) -> tuple[store.Trajectories, int, float, float]:
    """Rolls out chunk `chunk` (`envs` per specialist) and converts it for the store.

    Returns:
        (trajectories, env steps simulated, seconds on device, mean F1 of finished episodes).
    """
    per_agent = specialists.agent_pieces.shape[1]
    table = specialists.agent_pieces[:, np.arange(envs) % per_agent].astype(np.int32)
    pieces: Any = table
    if envs in layouts:
        per_agent_sharding, per_env_sharding = layouts[envs]
        policies = jax.device_put(policies, per_agent_sharding)
        pieces = jax.device_put(table, per_env_sharding)
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), chunk)
    began = time.perf_counter()
    records, f1, steps, keys = jax.device_get(rollout(
        *policies, generalist_params, pieces, key, jnp.float32(config.noise),
        specialists.loaded.bank))
    elapsed = time.perf_counter() - began
    bank_to_index = {b: i for i, b in enumerate(specialists.loaded.piece_ids)}
    index = np.vectorize(bank_to_index.__getitem__)(table)
    data = to_trajectories(records, f1, steps, keys, index, config.min_f1, config.keep_flagged)
    simulated = int(records.valid.shape[1]) * table.size
    return data, simulated, elapsed, float(np.nanmean(f1)) if np.isfinite(f1).any() else 0.0


def _progress(enabled: bool, initial: int, total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc="collect", unit="chunk")
