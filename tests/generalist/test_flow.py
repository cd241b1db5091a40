"""The flow itself: it learns a known bimodal 2-D distribution, masks, determinism, sizes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.generalist.conftest import fit, mixture_transformer, smoothed
from train.generalist import config as cfg, flow
from train.generalist.data import MIXTURE_CENTRES, MixtureWindows, mixture_observations
from train.generalist.flow import flow_loss, sample_chunks
from train.generalist.model import init_params, make_model, parameter_count, token_segments
from train.windows import WindowBatch

SAMPLES = 256  # per condition


def mixture_report(model, params, key=jax.random.PRNGKey(7)) -> dict[str, float]:
    """Statistics of sampled chunks against the mixture (see `MixtureWindows`).

    Returns:
        near: fraction of sampled actions within 0.15 of a correct mode of their condition.
        balance: smaller of the two modes' shares (0.5 ideal; 0 = collapsed on one mode).
        coherent: fraction of chunks whose 4 actions lie in the same mode.
        spread: std of sampled actions around their nearest mode (data: 0.05).
    """
    c = jnp.repeat(jnp.arange(2), SAMPLES)
    x = np.asarray(sample_chunks(model, params, mixture_observations(c), key))  # [N, 4, 2]
    centres = MIXTURE_CENTRES[np.asarray(c)][:, None, :]  # [N, 1, 2]
    d_plus = np.linalg.norm(x - centres, axis=-1)
    d_minus = np.linalg.norm(x + centres, axis=-1)
    nearest = np.minimum(d_plus, d_minus)
    plus = d_plus < d_minus  # [N, 4]
    return {"near": float(np.mean(nearest < 0.15)),
            "balance": float(min(plus.mean(), 1 - plus.mean())),
            "coherent": float(np.mean(plus.all(1) | (~plus).all(1))),
            "spread": float(np.sqrt(np.mean(nearest ** 2) / 2))}


def test_learns_bimodal_conditional_chunks(mixture_model):
    losses = smoothed(mixture_model.losses)
    assert losses[-1] < 0.5 * losses[0], losses
    report = mixture_report(mixture_model.model, mixture_model.state.params)
    # A regression to the mean (all samples near 0), a collapsed mode, the other condition's
    # modes, or incoherent chunks all fail here.
    assert report["near"] > 0.85, report
    assert report["balance"] > 0.3, report
    assert report["coherent"] > 0.9, report
    assert report["spread"] < 0.1, report


def test_a_flipped_velocity_fails_the_check(monkeypatch):
    # The same training with the target's sign flipped (v = x0 - x1) must not pass the check
    # above: the check can tell a right flow from a wrong one.
    monkeypatch.setattr(flow, "velocity_target", lambda x0, x1: x0 - x1)
    model = mixture_transformer()
    state, _ = fit(model, MixtureWindows(), steps=150)
    report = mixture_report(model, state.params)
    assert report["near"] < 0.3, report


def test_sampling_is_deterministic_for_a_key(mixture_model):
    model, params = mixture_model.model, mixture_model.state.params
    obs = mixture_observations(jnp.array([0, 1, 0, 1]))
    sample = jax.jit(lambda o, k: sample_chunks(model, params, o, k))
    a, b = sample(obs, jax.random.PRNGKey(1)), sample(obs, jax.random.PRNGKey(1))
    c = sample(obs, jax.random.PRNGKey(2))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(c))
    assert a.shape == (4, 4, 2) and a.dtype == jnp.float32


def test_masked_steps_do_not_affect_loss_or_gradients(mixture_model):
    model, params = mixture_model.model, mixture_model.state.params
    batch = MixtureWindows().sample(jax.random.PRNGKey(3), 64)
    assert not bool(batch.action_mask.all()) and bool(batch.action_mask[:, 0].all())
    junk = jnp.where(batch.action_mask[..., None], batch.actions, -123.0)
    key = jax.random.PRNGKey(4)
    value_grad = jax.jit(jax.value_and_grad(
        lambda p, b: flow_loss(model, p, b, key)[0]))
    loss_a, grads_a = value_grad(params, batch)
    loss_b, grads_b = value_grad(params, batch.replace(actions=junk))
    assert float(loss_a) == float(loss_b)
    jax.tree_util.tree_map(np.testing.assert_array_equal, grads_a, grads_b)
    # ...while a valid step does change it.
    moved = batch.actions.at[0, 0].add(1.0)
    assert float(value_grad(params, batch.replace(actions=moved))[0]) != float(loss_a)


def test_loss_averages_over_valid_steps_only():
    # A model whose prediction is exactly the target has zero loss; with one valid step of
    # four, the loss is that step's squared error (not divided by 4).
    model = mixture_transformer()
    params = init_params(model, jax.random.PRNGKey(0), 3)
    params = jax.tree_util.tree_map(jnp.zeros_like, params)  # predicts v = 0 everywhere
    x1 = jnp.ones((1, 4, 2))
    batch = WindowBatch(observations=jnp.zeros((1, 2, 3)), actions=x1,
                        action_mask=jnp.array([[True, False, False, False]]),
                        piece=jnp.zeros(1, jnp.int32))
    key = jax.random.PRNGKey(5)
    loss, metrics = flow_loss(model, params, batch, key)
    x0 = jax.random.normal(jax.random.split(key)[0], x1.shape)
    expected = jnp.mean(jnp.square(x1[0, 0] - x0[0, 0]))
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)
    assert float(metrics.valid_fraction) == 0.25


@pytest.mark.parametrize("size", sorted(cfg.MODEL_SIZES))
def test_model_sizes_shapes_and_dtypes(size):
    from train.envs import make_env
    from train.config import EnvSpec

    env = make_env(EnvSpec(name="toy", pieces=("toy-00",))).env
    model = make_model(cfg.MODEL_SIZES[size], token_segments(env), env.action_size, 4, 2)
    params = jax.eval_shape(lambda: init_params(model, jax.random.PRNGKey(0),
                                                env.observation_size))
    assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(params))
    count = parameter_count(params)
    if size == "omnipianist":
        # Per decoder layer self + cross attention (4 D^2 each) and the MLP (8 D^2) = 16 D^2,
        # per encoder layer 12 D^2: (12 * 16 + 2 * 12) * 768^2 = 127M, plus embeddings.
        assert 80e6 < count < 200e6, count
    out = jax.eval_shape(lambda p: model.apply({"params": p}, jnp.zeros((3, 2, 19)),
                                               jnp.zeros((3, 4, 5)), jnp.zeros(3)), params)
    assert out.shape == (3, 4, 5) and out.dtype == jnp.float32
