"""An ILC run read as specialists (`train.ilc_specialists`): the tables each clip plays, the
policy-space map, and `dataset collect`'s refusal of an unfinished run. A collection end to end
is in tests/train/test_ilc.py (it shares that file's compiled rollouts)."""

from __future__ import annotations

import json
import os
import types

import jax.numpy as jnp
import numpy as np
import pytest

from mjx_piano.cli import main
from mjx_piano.paths import run_kind
from train.generalist.rollout import to_physical
from train.ilc_specialists import read_played_tables, to_policy


def test_to_policy_inverts_to_physical_and_clips_as_the_env_does():
    env = types.SimpleNamespace(action_low=np.array([-1.0, 0.0, 0.2], np.float32),
                                action_high=np.array([3.0, 1.0, 0.4], np.float32))
    physical = jnp.array([[2.0, 0.25, 0.3], [-5.0, 2.0, 0.2]])
    policy = to_policy(env, physical)
    np.testing.assert_allclose(policy, [[0.5, -0.5, 0.0], [-1.0, 1.0, -1.0]], atol=1e-6)
    np.testing.assert_allclose(to_physical(env, policy), np.clip(
        physical, env.action_low, env.action_high), atol=1e-6)


def _write_run(folder, tables: np.ndarray, step_f1: np.ndarray, costs=(1.0, 0.0)) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "ilc_run.json"), "w") as f:
        json.dump({"pieces": ["etude/c-major-chords", "etude/eb-major-chords"],
                   "thumb_black_costs": list(costs), "key_dynamics": "kernel",
                   "solver_iterations": 2, "ls_iterations": 4}, f)
    np.savez(os.path.join(folder, "ilc_state.npz"), table=tables, last_step_f1=step_f1,
             counters=np.array([3, 1200, 0], np.int64))


def test_each_clip_plays_the_table_of_its_better_variant(tmp_path):
    tables = np.arange(4, dtype=np.float32)[:, None, None, None] * np.ones((4, 5, 2, 3))
    step_f1 = np.array([[0.5] * 5, [0.9] * 5,   # clip 0: variant 1 (track 1)
                        [0.8] * 5, [0.1] * 5])  # clip 1: variant 0 (track 2)
    _write_run(tmp_path, tables, step_f1)
    played = read_played_tables(str(tmp_path))
    assert run_kind(str(tmp_path)) == "ilc"
    np.testing.assert_array_equal(played.table[:, 0, 0, 0], [1.0, 2.0])
    np.testing.assert_array_equal(played.thumb_black_cost, [0.0, 1.0])
    assert played.table.shape == (2, 5, 2, 3) and played.env_steps == 1200


def test_a_state_of_other_shape_is_refused(tmp_path):
    _write_run(tmp_path, np.zeros((3, 5, 2, 3), np.float32), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="3 tables, not 2 clips x 2 fingering variants"):
        read_played_tables(str(tmp_path))


def test_collecting_from_an_ilc_run_without_tables_exits_2_and_writes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    _write_run(run, np.zeros((4, 5, 2, 3), np.float32), np.zeros((4, 5)))
    os.remove(run / "ilc_state.npz")  # described, not yet trained
    store = tmp_path / "store"
    assert main(["dataset", "collect", "--run", str(run), "--out", str(store)]) == 2
    assert "ilc_state.npz" in capsys.readouterr().err
    assert not store.exists()


def _residual_spec(folder, **fields):
    from train.config import EnvSpec

    spec = dict(name="piano", pieces=("etude/eb-major-chords",), key_dynamics="kernel",
                solver_iterations=2, ls_iterations=4, residual_scale=0.1,
                residual_tables=str(folder))
    return EnvSpec(**{**spec, **fields})


def test_a_residual_env_on_an_ilc_run_carries_each_pieces_table_in_its_bank(tmp_path):
    """`env.residual_tables`: the bank holds the table each piece's clip plays in the run, the
    abstract bank the trainer restores checkpoints with has the same leaves, and the pieces'
    digest (what a resume checks) changes with the tables."""
    import jax

    from train.envs import make_env, pieces_sha256

    tables = np.arange(4, dtype=np.float32)[:, None, None, None] * np.ones((4, 5, 10, 3))
    step_f1 = np.array([[0.5] * 5, [0.9] * 5, [0.8] * 5, [0.1] * 5])  # eb: variant 0 (track 2)
    _write_run(tmp_path / "run", tables, step_f1)
    loaded = make_env(_residual_spec(tmp_path / "run"))
    bank = loaded.bank
    np.testing.assert_array_equal(bank.target_offset, tables[2:3])
    np.testing.assert_array_equal(bank.thumb_black_cost, [1.0])
    assert loaded.base.table_steps == 5
    abstract = loaded.base.bank_shape(1, int(loaded.episode_length))
    assert jax.tree.structure(abstract) == jax.tree.structure(bank)
    assert [a.shape for a in jax.tree.leaves(abstract)] == [
        np.shape(a) for a in jax.tree.leaves(bank)]
    plain = make_env(_residual_spec(tmp_path / "run", residual_tables=""))
    assert plain.bank.target_offset is None and plain.base.table_steps == 0
    assert pieces_sha256(loaded) != pieces_sha256(plain)
    _write_run(tmp_path / "other", tables + 1.0, step_f1)
    assert pieces_sha256(make_env(_residual_spec(tmp_path / "other"))) != pieces_sha256(loaded)


@pytest.mark.parametrize("fields, message", [
    ({"pieces": ("etude/c-major-scale-rh",)}, "has no table of \\['etude/c-major-scale-rh'\\]"),
    ({"solver_iterations": 4}, "env.solver_iterations 2 there, 4 here"),
    ({"residual_scale": 0.0}, "set env.residual_scale > 0 too"),
    ({"residual_tables": "/nonexistent/run"}, "holds no ILC run"),
])
def test_a_residual_env_on_tables_it_cannot_use_is_refused_naming_why(tmp_path, fields, message):
    from train.envs import make_env

    _write_run(tmp_path / "run", np.zeros((4, 5, 10, 3), np.float32), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="env.residual_tables") as error:
        make_env(_residual_spec(tmp_path / "run", **fields))
    assert error.match(message)


def test_tables_of_other_hands_are_refused(tmp_path):
    from train.envs import make_env

    _write_run(tmp_path / "run", np.zeros((4, 5, 2, 3), np.float32), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="move 2 fingertips; the hands have 10"):
        make_env(_residual_spec(tmp_path / "run"))


def test_collecting_from_specialists_on_an_ilc_runs_tables_is_refused(tmp_path, monkeypatch):
    """A store keeps no tables, so a generalist trained on it could not act as such
    specialists did: `dataset collect` refuses them before writing anything."""
    from train.dataset import collect as collect_module

    run = tmp_path / "run"
    (run / "checkpoints" / "5" / "config").mkdir(parents=True)
    (run / "checkpoints" / "5" / "config" / "metadata").write_text('{"env": {}}')
    env = types.SimpleNamespace(residual_tables="/runs/ilc", impl="jax")
    monkeypatch.setattr(collect_module, "load_specialists", lambda folder: types.SimpleNamespace(
        config=types.SimpleNamespace(env=env)))
    store = tmp_path / "store"
    with pytest.raises(ValueError, match="env.residual_tables /runs/ilc"):
        collect_module.collect(collect_module.CollectConfig(run=str(run), out=str(store)))
    assert not store.exists()
