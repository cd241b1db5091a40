"""Pure-JAX PPO for one agent over a batch of envs; the agent axis is a `vmap` of it.

One iteration is `collect` (a `lax.scan` of policy + env steps) -> `gae` -> `num_epochs` x
`epoch` (shuffle, then `update` on each minibatch) -> observation-normaliser update. Every
function is pure over an explicit `TrainState`; `train.parallel` vmaps them over agents and jits
them over a device mesh. Building blocks from brax: the policy/value MLPs and the tanh-normal
distribution (`brax.training.agents.ppo.networks`), the running observation statistics
(`brax.training.acme.running_statistics`) and GAE (`brax.training.agents.ppo.losses`).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from brax.training.acme import running_statistics
from brax.training.agents.ppo import losses as brax_losses
from brax.training.agents.ppo import networks as brax_networks
from brax.training import types as brax_types
from flax import linen, struct

from train.config import PPOConfig
from train.curriculum import training_bank
from train.envs import Env
from train.episodes import EvalMetrics, RolloutStats, play_pieces, rollout_stats


@struct.dataclass
class Params:
    """Network parameters of one agent."""

    policy: Any
    value: Any


MIN_STD = 1e-3  # brax's NormalTanhDistribution adds it to softplus(raw)


def zero_output_layer(policy: Any, std: float = 0.0) -> Any:
    """brax policy MLP parameters with the output layer (the highest `hidden_<k>`) set to 0:
    the policy's pre-tanh mean is 0 for every observation and its std `std` (brax's tanh-normal
    std, softplus(raw) + 0.001; `std` 0 leaves raw 0: softplus(0) + 0.001)."""
    layers = dict(policy["params"])
    last = max(layers, key=lambda name: int(name.rsplit("_", 1)[1]))
    zero = jax.tree_util.tree_map(jnp.zeros_like, layers[last])
    if std > 0:
        raw = float(np.log(np.expm1(max(std - MIN_STD, 1e-6))))  # softplus(raw) = std - MIN_STD
        half = zero["bias"].shape[-1] // 2
        zero = {**zero, "bias": zero["bias"].at[half:].set(raw)}
    layers[last] = zero
    return {**policy, "params": layers}


@struct.dataclass
class TrainState:
    """Everything one agent's training needs (give every leaf a leading agent axis to batch).

    Attributes:
        params: policy and value parameters.
        opt_state: optax state of the Adam optimiser.
        normalizer: running mean/std of observations.
        env_state: the agent's envs, leaves [envs, ...].
        pieces: int32 [envs], index into `bank` of the piece each env plays.
        bank: the agent's own pieces (`mjx_piano.pieces.PieceBank`, leaves [k, ...]): data
            the env is bound to inside the jitted functions.
        rng: PRNG key (uint32 [2]).
        iteration: int32 [], iterations done.
    """

    params: Params
    opt_state: Any
    normalizer: running_statistics.RunningStatisticsState
    env_state: Any
    pieces: jax.Array
    bank: Any
    rng: jax.Array
    iteration: jax.Array


@struct.dataclass
class Transition:
    """One rollout, leaves [T, envs, ...].

    Attributes:
        obs: float32 [T, E, O], observation the action was taken in.
        raw_action: float32 [T, E, A], pre-tanh action sample.
        log_prob: float32 [T, E], behaviour log-probability of `raw_action`.
        reward: float32 [T, E].
        done: bool [T, E], the step ended an episode.
        truncated: bool [T, E], it ended by the time limit.
    """

    obs: jax.Array
    raw_action: jax.Array
    log_prob: jax.Array
    reward: jax.Array
    done: jax.Array
    truncated: jax.Array


@struct.dataclass
class Batch:
    """Flattened training samples [N, ...] with their advantages and value targets."""

    obs: jax.Array
    raw_action: jax.Array
    log_prob: jax.Array
    advantage: jax.Array
    target: jax.Array


@struct.dataclass
class LossMetrics:
    """Means over the epochs' minibatches (float32 scalars)."""

    total: jax.Array
    policy: jax.Array
    value: jax.Array
    entropy: jax.Array
    approx_kl: jax.Array
    clip_fraction: jax.Array


@struct.dataclass
class IterationMetrics:
    """One iteration's metrics for one agent."""

    rollout: RolloutStats
    loss: LossMetrics


class PPO:
    """PPO on one env type with one configuration; all methods are pure and unbatched in agents.

    Args:
        env: an env following the `train.envs.Env` protocol.
        config: hyper-parameters.
    """

    def __init__(self, env: Env, config: PPOConfig):
        batch = config.num_envs * config.unroll_length
        if batch % config.num_minibatches:
            raise ValueError(f"num_envs * unroll_length = {batch} is not divisible by "
                             f"num_minibatches = {config.num_minibatches}")
        self.env = env
        # Evaluations play whole pieces: the env without its training levers, if it has any.
        self.eval_env = env.evaluation_env() if hasattr(env, "evaluation_env") else env
        self.config = config
        # Clipped: an observation entry that barely moved so far (tiny running std) must not
        # blow up when it finally changes.
        normalize = (functools.partial(running_statistics.normalize,
                                       max_abs_value=config.observation_clip)
                     if config.normalize_observations
                     else brax_types.identity_observation_preprocessor)
        self.networks = brax_networks.make_ppo_networks(
            env.observation_size, env.action_size, preprocess_observations_fn=normalize,
            policy_hidden_layer_sizes=config.policy_hidden,
            value_hidden_layer_sizes=config.value_hidden, activation=linen.swish)
        self.distribution = self.networks.parametric_action_distribution
        self.optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                                     optax.adam(config.learning_rate))
        self._action_low = np.asarray(env.action_low, np.float32)
        self._action_scale = (np.asarray(env.action_high, np.float32) - self._action_low) / 2.0

    def init(self, key: jax.Array, pieces: jax.Array, bank: Any) -> TrainState:
        """A fresh agent.

        Args:
            key: PRNG key (uint32 [2]) of this agent.
            pieces: int32 [envs], index into `bank` of the piece each env plays.
            bank: the agent's pieces (`PieceBank`, leaves [k, ...]).
        """
        k_policy, k_value, k_env, k_rng = jax.random.split(key, 4)
        policy = self.networks.policy_network.init(k_policy)
        if self.config.zero_initial_action:
            policy = zero_output_layer(policy, self.config.initial_action_std)
        params = Params(policy=policy, value=self.networks.value_network.init(k_value))
        normalizer = running_statistics.init_state(
            jnp.zeros((self.env.observation_size,), jnp.float32))
        # brax leaves python scalars in the state; arrays keep vmap/orbax/jit uniform.
        normalizer = normalizer.replace(
            count=jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.uint32), normalizer.count),
            std_eps=jnp.asarray(normalizer.std_eps, jnp.float32))
        env_keys = jax.random.split(k_env, pieces.shape[0])
        return TrainState(params=params, opt_state=self.optimizer.init(params),
                          normalizer=normalizer,
                          env_state=jax.vmap(self.env.bind(bank).reset)(env_keys, pieces),
                          pieces=pieces.astype(jnp.int32), bank=bank, rng=k_rng,
                          iteration=jnp.zeros((), jnp.int32))

    def to_physical(self, action: jax.Array) -> jax.Array:
        """Maps the policy's [-1, 1] actions [..., A] to [action_low, action_high]."""
        return self._action_low + (action + 1.0) * self._action_scale

    def collect(self, state: TrainState, key: jax.Array) -> tuple[Any, Transition, RolloutStats]:
        """Runs the stochastic policy for `unroll_length` steps in every env.

        Returns:
            (env states after the rollout, the rollout [T, E, ...], its statistics).
        """
        policy = self.networks.policy_network
        env_steps = state.iteration * self.config.num_envs * self.config.unroll_length
        env = self.env.bind(training_bank(self.env, state.bank, env_steps))

        def step(env_state: Any, step_key: jax.Array):
            logits = policy.apply(state.normalizer, state.params.policy, env_state.obs)
            raw = self.distribution.sample_no_postprocessing(logits, step_key)
            action = self.to_physical(self.distribution.postprocess(raw))
            next_state = jax.vmap(env.step)(env_state, action)
            transition = Transition(
                obs=env_state.obs, raw_action=raw,
                log_prob=self.distribution.log_prob(logits, raw), reward=next_state.reward,
                done=next_state.done, truncated=next_state.truncated)
            return next_state, (transition, next_state.last_episode, next_state.reward_terms)

        keys = jax.random.split(key, self.config.unroll_length)
        env_state, (rollout, last, terms) = jax.lax.scan(step, state.env_state, keys)
        return env_state, rollout, rollout_stats(rollout, last, terms)

    def gae(self, normalizer: Any, params: Params, rollout: Transition,
            final_obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Value targets and advantages, float32 [T, E] each.

        Episodes that end by their time limit are masked (brax's convention): the env has
        already reset, so the next observation belongs to another episode.
        """
        obs = jnp.concatenate([rollout.obs, final_obs[None]], axis=0)
        values = self.networks.value_network.apply(normalizer, params.value, obs)
        truncated = rollout.truncated.astype(jnp.float32)
        terminated = (rollout.done & ~rollout.truncated).astype(jnp.float32)
        return brax_losses.compute_gae(
            truncation=truncated, termination=terminated,
            rewards=rollout.reward * self.config.reward_scaling, values=values[:-1],
            bootstrap_value=values[-1], lambda_=self.config.gae_lambda,
            discount=self.config.discount)

    def loss(self, params: Params, normalizer: Any, batch: Batch,
             key: jax.Array) -> tuple[jax.Array, LossMetrics]:
        """Clipped-surrogate PPO loss of one minibatch [M, ...]."""
        cfg = self.config
        logits = self.networks.policy_network.apply(normalizer, params.policy, batch.obs)
        log_ratio = self.distribution.log_prob(logits, batch.raw_action) - batch.log_prob
        ratio = jnp.exp(log_ratio)
        advantage = batch.advantage
        if cfg.normalize_advantages:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        clipped = jnp.clip(ratio, 1.0 - cfg.clip_epsilon, 1.0 + cfg.clip_epsilon)
        policy_loss = -jnp.mean(jnp.minimum(ratio * advantage, clipped * advantage))
        value = self.networks.value_network.apply(normalizer, params.value, batch.obs)
        value_loss = 0.5 * jnp.mean((batch.target - value) ** 2)
        entropy = jnp.mean(self.distribution.entropy(logits, key))
        total = policy_loss + cfg.value_cost * value_loss - cfg.entropy_cost * entropy
        return total, LossMetrics(
            total=total, policy=policy_loss, value=value_loss, entropy=entropy,
            approx_kl=jnp.mean((ratio - 1.0) - log_ratio),
            clip_fraction=jnp.mean((jnp.abs(ratio - 1.0) > cfg.clip_epsilon).astype(jnp.float32)))

    def update(self, params: Params, opt_state: Any, normalizer: Any, batch: Batch,
               key: jax.Array) -> tuple[Params, Any, LossMetrics]:
        """One gradient step on one minibatch."""
        grads, metrics = jax.grad(self.loss, has_aux=True)(params, normalizer, batch, key)
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, metrics

    def epoch(self, params: Params, opt_state: Any, normalizer: Any, batch: Batch,
              key: jax.Array) -> tuple[Params, Any, LossMetrics]:
        """Shuffles `batch` [N, ...] and updates once per minibatch.

        Returns:
            (params, opt_state, loss metrics stacked [num_minibatches]).
        """
        perm_key, update_key = jax.random.split(key)
        size = batch.obs.shape[0]
        order = jax.random.permutation(perm_key, size)
        minibatches = jax.tree_util.tree_map(
            lambda x: x[order].reshape((self.config.num_minibatches, -1) + x.shape[1:]), batch)
        keys = jax.random.split(update_key, self.config.num_minibatches)

        def step(carry, inputs):
            params, opt_state = carry
            minibatch, step_key = inputs
            params, opt_state, metrics = self.update(params, opt_state, normalizer, minibatch,
                                                     step_key)
            return (params, opt_state), metrics

        (params, opt_state), metrics = jax.lax.scan(step, (params, opt_state), (minibatches, keys))
        return params, opt_state, metrics

    def iteration(self, state: TrainState) -> tuple[TrainState, IterationMetrics]:
        """One PPO iteration of one agent: collect, normalise, GAE, epochs."""
        rng, collect_key, epochs_key = jax.random.split(state.rng, 3)
        env_state, rollout, stats = self.collect(state, collect_key)
        # The update uses the statistics the rollout was sampled with, so the probability
        # ratios start at 1; the new observations enter the statistics afterwards.
        normalizer = state.normalizer
        target, advantage = self.gae(normalizer, state.params, rollout, env_state.obs)
        flat = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), Batch(
            obs=rollout.obs, raw_action=rollout.raw_action, log_prob=rollout.log_prob,
            advantage=advantage, target=target))

        def one_epoch(carry, key):
            params, opt_state = carry
            params, opt_state, metrics = self.epoch(params, opt_state, normalizer, flat, key)
            return (params, opt_state), metrics

        keys = jax.random.split(epochs_key, self.config.num_epochs)
        (params, opt_state), losses = jax.lax.scan(
            one_epoch, (state.params, state.opt_state), keys)
        if self.config.normalize_observations:
            normalizer = running_statistics.update(normalizer, rollout.obs)
        state = state.replace(params=params, opt_state=opt_state, normalizer=normalizer,
                              env_state=env_state, rng=rng, iteration=state.iteration + 1)
        loss = jax.tree_util.tree_map(jnp.mean, losses)
        return state, IterationMetrics(rollout=stats, loss=loss)

    def policy_params(self, params: Params) -> Any:
        """The part of `params` that acts (the policy network's)."""
        return params.policy

    def mode_action(self, policy_params: Any, normalizer: Any, obs: jax.Array) -> jax.Array:
        """The deterministic (mode) action in the policy's [-1, 1] space [..., A] for
        observations [..., O]."""
        logits = self.networks.policy_network.apply(normalizer, policy_params, obs)
        return self.distribution.mode(logits)

    def act(self, policy_params: Any, normalizer: Any, obs: jax.Array) -> jax.Array:
        """The deterministic (mode) action in physical units [..., A] for observations [..., O]."""
        return self.to_physical(self.mode_action(policy_params, normalizer, obs))

    def evaluate(self, state: TrainState, pieces: jax.Array, steps: int) -> EvalMetrics:
        """Plays each piece once with the deterministic (mode) policy (`play_pieces`).

        Args:
            state: the agent (not modified; its rng is only folded, not advanced).
            pieces: int32 [V], one eval env per entry (indices into `state.bank`).
            steps: control steps to run (>= the longest episode).
        """
        act = functools.partial(self.act, state.params.policy, state.normalizer)
        return play_pieces(self.eval_env.bind(state.bank), act,
                           jax.random.fold_in(state.rng, 0x5EED), pieces, steps)
