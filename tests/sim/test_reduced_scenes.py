"""Reduced variants from the same builder: self-playing keys, one hand, a few keys."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_piano.env import EnvConfig, PianoEnv
from mjx_piano.scene.builder import SceneConfig, build_spec
from tests.sim.conftest import make_roll


def test_self_playing_keys_press_exactly_where_the_action_says():
    roll = make_roll("three-keys", 6, {1: [39], 2: [39], 3: [41], 4: [39, 41]})
    scene = SceneConfig(hands="none", keys=(39, 40, 41), actuated_keys=True)
    env = PianoEnv(EnvConfig(scene=scene), [roll])
    assert env.action_size == 3 + 1
    assert env.observation_size == 11 * 4 + 3 + 1  # goal rows, key states, sustain
    step = jax.jit(env.step)
    state = jax.jit(env.reset)(jax.random.PRNGKey(0), jnp.int32(0))
    pressed = []
    for t in range(roll.num_steps):
        goal = np.asarray(env.bank.goal_keys[0, t], np.float32)
        state = step(state, jnp.append(jnp.asarray(goal) * env.action_high[:-1], 0.0))
        pressed.append(np.asarray(state.pressed))
    np.testing.assert_array_equal(np.array(pressed), roll.keys[:, [39, 40, 41]])
    assert float(state.last_episode.f1) == pytest.approx(1.0)


def test_scripted_player_also_plays_the_self_playing_keys():
    from mjx_piano.scripted import play_episode

    roll = make_roll("three-keys", 6, {1: [39], 2: [39], 3: [41], 4: [39, 41]}, sustain=(2, 3))
    scene = SceneConfig(hands="none", keys=(39, 40, 41), actuated_keys=True)
    env = PianoEnv(EnvConfig(scene=scene), [roll])
    state, pressed = jax.jit(lambda r: play_episode(env, r, jnp.int32(0), 6))(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(np.asarray(pressed), roll.keys[:, [39, 40, 41]])
    assert float(state.last_episode.f1) == pytest.approx(1.0)
    assert float(state.last_episode.sustain_f1) == pytest.approx(1.0)


def test_one_hand_scene_has_nineteen_actuators_and_its_own_fingertips():
    model = build_spec(SceneConfig(hands="left", keys=tuple(range(20, 40)))).compile()
    assert model.nu == 19
    assert model.njnt == 23 + 20
    assert model.site("lh/th_tip").id >= 0


def test_solver_settings_reach_the_model_of_every_hand():
    scene = SceneConfig(hands="both", keys=(40,), solver_iterations=3, ls_iterations=5,
                        solver_tolerance=1e-3)
    model = build_spec(scene).compile()
    assert (model.opt.iterations, model.opt.ls_iterations) == (3, 5)
    assert model.opt.tolerance == pytest.approx(1e-3)
    assert build_spec(SceneConfig(keys=(40,))).compile().opt.tolerance == pytest.approx(1e-8)


def test_a_piece_needing_a_missing_key_is_rejected_by_name():
    roll = make_roll("too-wide", 4, {0: [60]})
    scene = SceneConfig(hands="none", keys=(39, 40, 41), actuated_keys=True)
    with pytest.raises(ValueError, match=r"too-wide.*\[60\]"):
        PianoEnv(EnvConfig(scene=scene), [roll])


@pytest.mark.parametrize("bad", [dict(keys=()), dict(keys=(3, 3)), dict(keys=(88,)),
                                 dict(hands="none"), dict(solver_tolerance=-1.0),
                                 dict(solver_tolerance=float("nan"))])
def test_bad_scene_configs_are_clear_errors(bad):
    with pytest.raises(ValueError, match="SceneConfig|actuated_keys"):
        SceneConfig(**bad)


def test_env_step_with_fingering_compiles_once_under_jit_and_vmap():
    import chex

    roll = make_roll("right-hand", 5, {0: [39], 1: [41, 43], 3: [44]})
    scene = SceneConfig(hands="right", keys=tuple(range(36, 48)))
    env = PianoEnv(EnvConfig(scene=scene, fingering="exact", observe_fingering=True), [roll])
    traced_step = chex.assert_max_traces(env.step, n=1)
    step = jax.jit(jax.vmap(traced_step))
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), 2),
                                          jnp.zeros(2, jnp.int32))
    actions = jnp.zeros((2, env.action_size))
    for _ in range(3):
        states = step(states, actions)
    assert np.all(np.isfinite(np.asarray(states.reward_terms.fingering)))
    assert np.all(np.asarray(states.reward_terms.fingering) > 0)


def test_env_plays_a_built_repertoire_clip_by_name(tmp_path, monkeypatch):
    from mjx_piano.default_piece import load_piece
    from mjx_piano.music import builder, list_clips

    monkeypatch.setenv("MJX_PIANO_CACHE", str(tmp_path))
    builder.build_repertoire(tmp_path / "repertoire.npz", builder.corpus_sources(limit=2),
                             progress=False)
    name = next(n for n in list_clips() if not n.startswith("etude/"))
    roll = load_piece(name)
    keys = tuple(int(k) for k in np.flatnonzero(roll.keys.any(axis=0)))
    env = PianoEnv(EnvConfig(scene=SceneConfig(hands="none", keys=keys, actuated_keys=True)), [roll])
    step = jax.jit(env.step)
    state = jax.jit(env.reset)(jax.random.PRNGKey(0), jnp.int32(0))
    for t in range(roll.num_steps):
        goal = np.asarray(env.bank.goal_keys[0, t], np.float32)
        sustain = float(env.bank.goal_sustain[0, t])
        state = step(state, jnp.append(jnp.asarray(goal) * env.action_high[:-1], sustain))
    assert bool(state.done) and int(state.last_episode.length) == roll.num_steps
    assert float(state.last_episode.f1) == pytest.approx(1.0)  # e.g. bach/bwv1.6/00: 537 steps, 23 keys
