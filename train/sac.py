"""Pure-JAX SAC with DroQ critics for one agent over a batch of envs; the agent axis is a `vmap`.

One iteration is `collect` (a `lax.scan` of policy + env steps; uniform random actions during
warm-up) -> `replay.insert` -> observation-normaliser update -> `updates_per_iteration` x
`update` (sample a batch from the agent's replay buffer, one critic, actor and temperature
step each, Polyak-averaged target critics). The replay buffer is a leaf of the `SACState`,
so it lives on the device, is sharded with its agent, and is saved whole in checkpoints:
resuming continues exactly where the run stopped (`bytes_per_transition` says what that costs).
`train.parallel` vmaps and jits these functions exactly as it does PPO's.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from brax.training.acme import running_statistics
from flax import struct

from train import replay as replay_buffer
from train.config import SACConfig
from train.curriculum import training_bank
from train.envs import Env
from train.episodes import EvalMetrics, RolloutStats, play_pieces, rollout_stats
from train.sac_networks import Actor, CriticEnsemble, sample_action


@struct.dataclass
class SACParams:
    """Parameters of one agent: actor, critics, target critics, log temperature []."""

    actor: Any
    critic: Any
    target_critic: Any
    log_alpha: jax.Array


@struct.dataclass
class SACOptState:
    """optax states of the actor's, the critics' and the temperature's optimisers."""

    actor: Any
    critic: Any
    alpha: Any


@struct.dataclass
class SACState:
    """Everything one agent's training needs (give every leaf a leading agent axis to batch).

    Attributes:
        params, opt_state: networks and optimisers.
        normalizer: running mean/std of observations.
        replay: the agent's replay buffer (`train.replay.Replay`).
        env_state: the agent's envs, leaves [envs, ...].
        pieces: int32 [envs], index into `bank` of the piece each env plays.
        bank: the agent's own pieces (`PieceBank`, leaves [k, ...]), bound inside the jitted
            functions; the replay rebuilds goal blocks from it.
        rng: PRNG key (uint32 [2]).
        iteration: int32 [], iterations done.
    """

    params: SACParams
    opt_state: SACOptState
    normalizer: running_statistics.RunningStatisticsState
    replay: replay_buffer.Replay
    env_state: Any
    pieces: jax.Array
    bank: Any
    rng: jax.Array
    iteration: jax.Array


@struct.dataclass
class SACTransition:
    """One rollout, leaves [T, envs, ...] (see `train.replay.Replay` for the fields)."""

    obs: jax.Array
    next_obs: jax.Array
    piece: jax.Array
    t: jax.Array
    action: jax.Array
    reward: jax.Array
    done: jax.Array
    terminal: jax.Array
    valid: jax.Array


@struct.dataclass
class SACLossMetrics:
    """Means over the iteration's gradient steps (float32 scalars; 0 before learning starts)."""

    critic: jax.Array
    actor: jax.Array
    temperature: jax.Array
    alpha: jax.Array
    entropy: jax.Array
    q: jax.Array


@struct.dataclass
class SACIterationMetrics:
    """One iteration's metrics for one agent (the same layout as PPO's)."""

    rollout: RolloutStats
    loss: SACLossMetrics


class SAC:
    """SAC-DroQ on one env type with one configuration; pure methods, unbatched in agents.

    Args:
        env: an env following the `train.envs.Env` protocol (with `goal_size` and
            `goal_observation` the replay stores compact observations).
        config: hyper-parameters.
    """

    def __init__(self, env: Env, config: SACConfig):
        steps = config.num_envs * config.unroll_length
        if config.buffer_size < steps or config.batch_size < 1:
            raise ValueError(f"sac.buffer_size ({config.buffer_size}) must hold one iteration's "
                             f"{steps} transitions (num_envs x unroll_length) and "
                             f"sac.batch_size must be >= 1")
        self.env = env
        # Evaluations play whole pieces: the env without its training levers, if it has any.
        self.eval_env = env.evaluation_env() if hasattr(env, "evaluation_env") else env
        self.config = config
        self.goal_size = int(getattr(env, "goal_size", 0))
        self.actor = Actor(config.policy_hidden, env.action_size, config.zero_initial_action)
        self.critic = CriticEnsemble(config.num_critics, config.critic_hidden,
                                     config.critic_dropout, config.critic_layer_norm)
        self.actor_optimizer, self.critic_optimizer, self.alpha_optimizer = (
            optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                        optax.adam(config.learning_rate)) for _ in range(3))
        self.target_entropy = -config.target_entropy_scale * env.action_size
        self._action_low = np.asarray(env.action_low, np.float32)
        self._action_scale = (np.asarray(env.action_high, np.float32) - self._action_low) / 2.0

    def init(self, key: jax.Array, pieces: jax.Array, bank: Any) -> SACState:
        """A fresh agent: key uint32 [2]; pieces int32 [envs], the index into `bank` (the
        agent's `PieceBank`, leaves [k, ...]) of each env's piece."""
        k_actor, k_critic, k_env, k_rng = jax.random.split(key, 4)
        obs = jnp.zeros((self.env.observation_size,), jnp.float32)
        action = jnp.zeros((self.env.action_size,), jnp.float32)
        critic = self.critic.init(k_critic, obs, action, False)
        params = SACParams(actor=self.actor.init(k_actor, obs), critic=critic,
                           target_critic=critic,
                           log_alpha=jnp.log(jnp.asarray(self.config.initial_temperature,
                                                         jnp.float32)))
        normalizer = running_statistics.init_state(obs)
        normalizer = normalizer.replace(
            count=jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.uint32), normalizer.count),
            std_eps=jnp.asarray(normalizer.std_eps, jnp.float32))
        return SACState(
            params=params,
            opt_state=SACOptState(actor=self.actor_optimizer.init(params.actor),
                                  critic=self.critic_optimizer.init(params.critic),
                                  alpha=self.alpha_optimizer.init(params.log_alpha)),
            normalizer=normalizer,
            replay=replay_buffer.empty(self.config.buffer_size, self.env.observation_size,
                                       self.goal_size, self.env.action_size),
            env_state=jax.vmap(self.env.bind(bank).reset)(
                jax.random.split(k_env, pieces.shape[0]), pieces),
            pieces=pieces.astype(jnp.int32), bank=bank, rng=k_rng, iteration=jnp.zeros((), jnp.int32))

    def to_physical(self, action: jax.Array) -> jax.Array:
        """Maps actions [..., A] in [-1, 1] to [action_low, action_high]."""
        return self._action_low + (action + 1.0) * self._action_scale

    def normalize(self, normalizer: Any, obs: jax.Array) -> jax.Array:
        """Observations [..., O] as the networks see them."""
        if not self.config.normalize_observations:
            return obs
        return running_statistics.normalize(obs, normalizer,
                                            max_abs_value=self.config.observation_clip)

    def collect(self, state: SACState, key: jax.Array
                ) -> tuple[Any, SACTransition, RolloutStats]:
        """Runs `unroll_length` steps in every env: uniform random actions while the agent's
        env steps are below `warmup_steps`, else the stochastic policy."""
        cfg = self.config
        env_steps = state.iteration * cfg.num_envs * cfg.unroll_length
        warm = env_steps < cfg.warmup_steps
        env = self.env.bind(training_bank(self.env, state.bank, env_steps))

        def step(env_state: Any, step_key: jax.Array):
            k_policy, k_random = jax.random.split(step_key)
            mean, log_std = self.actor.apply(state.params.actor,
                                             self.normalize(state.normalizer, env_state.obs))
            action, _ = sample_action(mean, log_std, k_policy)
            action = jnp.where(warm, jax.random.uniform(k_random, action.shape, minval=-1.0,
                                                        maxval=1.0), action)
            next_state = jax.vmap(env.step)(env_state, self.to_physical(action))
            diverged = (next_state.num_diverged > env_state.num_diverged
                        if hasattr(env_state, "num_diverged") else jnp.zeros_like(next_state.done))
            terminal = next_state.done & ~next_state.truncated & ~diverged
            transition = SACTransition(
                obs=env_state.obs, next_obs=next_state.obs, piece=env_state.piece,
                t=env_state.t, action=action, reward=next_state.reward, done=next_state.done,
                terminal=terminal, valid=~next_state.done | terminal)
            return next_state, (transition, next_state.last_episode, next_state.reward_terms)

        keys = jax.random.split(key, cfg.unroll_length)
        env_state, (rollout, last, terms) = jax.lax.scan(step, state.env_state, keys)
        return env_state, rollout, rollout_stats(rollout, last, terms)

    def critic_loss(self, critic: Any, params: SACParams, normalizer: Any,
                    batch: replay_buffer.Sample, key: jax.Array) -> jax.Array:
        """Soft Bellman error of every critic on a batch [B, ...]; transitions whose next
        observation is another episode's (`valid` False) are left out."""
        cfg = self.config
        k_next, k_target, k_online = jax.random.split(key, 3)
        obs = self.normalize(normalizer, batch.obs)
        next_obs = self.normalize(normalizer, batch.next_obs)
        next_action, next_log_prob = sample_action(*self.actor.apply(params.actor, next_obs),
                                                   k_next)
        target_q = self.critic.apply(params.target_critic, next_obs, next_action, True,
                                     rngs={"dropout": k_target})
        next_value = jnp.min(target_q, axis=0) - jnp.exp(params.log_alpha) * next_log_prob
        target = jax.lax.stop_gradient(
            batch.reward * cfg.reward_scaling
            + cfg.discount * (1.0 - batch.terminal.astype(jnp.float32)) * next_value)
        q = self.critic.apply(critic, obs, batch.action, True, rngs={"dropout": k_online})
        weight = batch.valid.astype(jnp.float32)
        return 0.5 * jnp.sum(weight * (q - target) ** 2) / jnp.maximum(jnp.sum(weight), 1.0)

    def actor_loss(self, actor: Any, params: SACParams, normalizer: Any, obs: jax.Array,
                   key: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        """alpha * log pi - mean critic Q, on observations [B, O]; aux (log-probs [B], Q)."""
        k_action, k_dropout = jax.random.split(key)
        obs = self.normalize(normalizer, obs)
        action, log_prob = sample_action(*self.actor.apply(actor, obs), k_action)
        q = self.critic.apply(params.critic, obs, action, True, rngs={"dropout": k_dropout})
        q = jnp.mean(q, axis=0)  # DroQ / REDQ: the ensemble's mean for the actor
        return jnp.mean(jnp.exp(params.log_alpha) * log_prob - q), (log_prob, jnp.mean(q))

    def update(self, params: SACParams, opt_state: SACOptState, normalizer: Any,
               batch: replay_buffer.Sample, key: jax.Array
               ) -> tuple[SACParams, SACOptState, SACLossMetrics]:
        """One critic, actor and temperature step on one batch, then the target critics."""
        cfg = self.config
        k_critic, k_actor = jax.random.split(key)
        critic_loss, grads = jax.value_and_grad(self.critic_loss)(
            params.critic, params, normalizer, batch, k_critic)
        updates, critic_opt = self.critic_optimizer.update(grads, opt_state.critic, params.critic)
        params = params.replace(critic=optax.apply_updates(params.critic, updates))
        (actor_loss, (log_prob, q)), grads = jax.value_and_grad(self.actor_loss, has_aux=True)(
            params.actor, params, normalizer, batch.obs, k_actor)
        updates, actor_opt = self.actor_optimizer.update(grads, opt_state.actor, params.actor)
        entropy_gap = jax.lax.stop_gradient(jnp.mean(log_prob) + self.target_entropy)
        temperature_loss, grads = jax.value_and_grad(lambda a: -a * entropy_gap)(params.log_alpha)
        alpha_updates, alpha_opt = self.alpha_optimizer.update(grads, opt_state.alpha,
                                                               params.log_alpha)
        target = optax.incremental_update(params.critic, params.target_critic, cfg.tau)
        params = params.replace(actor=optax.apply_updates(params.actor, updates),
                                log_alpha=optax.apply_updates(params.log_alpha, alpha_updates),
                                target_critic=target)
        metrics = SACLossMetrics(critic=critic_loss, actor=actor_loss,
                                 temperature=temperature_loss, alpha=jnp.exp(params.log_alpha),
                                 entropy=-jnp.mean(log_prob), q=q)
        return params, SACOptState(actor=actor_opt, critic=critic_opt, alpha=alpha_opt), metrics

    def iteration(self, state: SACState) -> tuple[SACState, SACIterationMetrics]:
        """One iteration of one agent: collect, store, normalise, gradient steps."""
        cfg = self.config
        rng, k_collect, k_updates = jax.random.split(state.rng, 3)
        env_state, rollout, stats = self.collect(state, k_collect)
        replay = replay_buffer.insert(state.replay, self.goal_size, rollout.obs, rollout.next_obs,
                                      rollout.piece, rollout.t, rollout.action, rollout.reward,
                                      rollout.terminal, rollout.valid)
        normalizer = state.normalizer
        if cfg.normalize_observations:
            normalizer = running_statistics.update(normalizer, rollout.obs)
        env_steps = (state.iteration + 1) * cfg.num_envs * cfg.unroll_length
        ready = (replay.size >= cfg.batch_size) & (env_steps >= cfg.warmup_steps)

        def one_update(carry, key):
            params, opt_state = carry
            k_sample, k_update = jax.random.split(key)
            batch = replay_buffer.sample(replay, self.env.bind(state.bank), self.goal_size,
                                         k_sample, cfg.batch_size)
            new_params, new_opt, metrics = self.update(params, opt_state, normalizer, batch,
                                                       k_update)
            keep = lambda new, old: jnp.where(ready, new, old)  # noqa: E731
            carry = jax.tree_util.tree_map(keep, (new_params, new_opt), (params, opt_state))
            return carry, jax.tree_util.tree_map(lambda m: jnp.where(ready, m, 0.0), metrics)

        keys = jax.random.split(k_updates, cfg.updates_per_iteration)
        (params, opt_state), losses = jax.lax.scan(one_update, (state.params, state.opt_state),
                                                   keys)
        state = state.replace(params=params, opt_state=opt_state, normalizer=normalizer,
                              replay=replay, env_state=env_state, rng=rng,
                              iteration=state.iteration + 1)
        return state, SACIterationMetrics(rollout=stats,
                                          loss=jax.tree_util.tree_map(jnp.mean, losses))

    def policy_params(self, params: SACParams) -> Any:
        """The part of `params` that acts (the actor's)."""
        return params.actor

    def mode_action(self, actor_params: Any, normalizer: Any, obs: jax.Array) -> jax.Array:
        """The deterministic action tanh(mean) in [-1, 1] [..., A] for observations [..., O]."""
        mean, _ = self.actor.apply(actor_params, self.normalize(normalizer, obs))
        return jnp.tanh(mean)

    def act(self, actor_params: Any, normalizer: Any, obs: jax.Array) -> jax.Array:
        """The deterministic action tanh(mean) in physical units [..., A] for obs [..., O]."""
        return self.to_physical(self.mode_action(actor_params, normalizer, obs))

    def evaluate(self, state: SACState, pieces: jax.Array, steps: int) -> EvalMetrics:
        """Plays each piece once with the deterministic policy (`play_pieces`)."""
        act = functools.partial(self.act, state.params.actor, state.normalizer)
        return play_pieces(self.eval_env.bind(state.bank), act,
                           jax.random.fold_in(state.rng, 0x5EED), pieces,
                           steps)
