"""Stop + resume gives bit-identical parameters; checkpoints from another config are refused."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from tests.train.conftest import smoke
from train import envs as train_envs, loop
from train.checkpoint import ConfigMismatchError
from train.loop import train_specialists
from train.plan import plan_run


def _leaves(state) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(jax.device_get(state))]


def test_stop_and_resume_equals_uninterrupted(tmp_path, capsys):
    common = dict(run__checkpoint_every=3, run__eval_every=4)
    straight = train_specialists(smoke(str(tmp_path / "straight"), run__iterations=8, **common))
    out = str(tmp_path / "stopped")
    first = train_specialists(smoke(out, run__iterations=5, **common))
    assert first.iterations == 5
    capsys.readouterr()
    resumed = train_specialists(smoke(out, run__iterations=8, **common), resume=True)
    assert f"resumed at iteration 5 of 8 from {out}/checkpoints/5" in capsys.readouterr().err
    assert resumed.iterations == 8
    assert int(np.asarray(resumed.state.iteration)[0]) == 8
    for a, b in zip(_leaves(straight.state), _leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(a, b)
    # The CSVs hold each iteration once, as if the run had never stopped.
    rows = (tmp_path / "stopped" / "train.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [i for i in range(1, 9) for _ in range(2)]


def test_other_config_is_refused_before_compiling(tmp_path, monkeypatch):
    out = str(tmp_path)
    train_specialists(smoke(out, run__iterations=2, run__eval_every=0))

    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled before checking the checkpoint's config")

    monkeypatch.setattr(loop, "get_trainer", no_compiling)
    with pytest.raises(ConfigMismatchError, match="ppo.learning_rate: 0.003 -> 0.001(.|\n)*"
                                                  "add: --set ppo.learning_rate=0.003"):
        train_specialists(smoke(out, run__iterations=4, ppo__learning_rate=1e-3), resume=True)
    with pytest.raises(ConfigMismatchError, match="run.agents"):
        train_specialists(smoke(out, run__iterations=4, run__agents=4), resume=True)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train_specialists(smoke(out, run__iterations=4))
    # Rolls that changed under the same piece names (a rebuilt repertoire) are refused...
    with monkeypatch.context() as patch:
        patch.setattr(train_envs, "pieces_sha256", lambda loaded: "0123456789abcdef")
        with pytest.raises(ConfigMismatchError, match="env.pieces_sha256: '[0-9a-f]{16}' -> "
                                                      "'0123456789abcdef'"):
            train_specialists(smoke(out, run__iterations=4), resume=True)
    # --resume on a folder with no run says that it starts fresh.
    empty = str(tmp_path / "empty")
    assert loop.resume_line(plan_run(smoke(empty, run__iterations=2), resume=True)) == \
        f"--resume: no checkpoint in {empty}; starting fresh"
    # Fields that do not change what is learned may differ.
    assert plan_run(smoke(out, run__iterations=9, run__eval_every=3), resume=True).resume_from == 2


def test_pieces_digest_follows_the_rolls_and_the_names():
    from mjx_piano.pieces import PieceBank
    from train.envs import LoadedEnv, pieces_sha256

    keys = np.zeros((3, 5, 4), bool)
    keys[1, 2, 3] = True

    def digest(goal_keys, names=("a", "b")):
        bank = PieceBank(goal_keys=goal_keys, goal_sustain=np.zeros((3, 5), bool),
                         length=np.array([5, 4, 3], np.int32))
        return pieces_sha256(LoadedEnv(env=None, piece_ids=(1, 2), piece_names=names,
                                       episode_length=5, base=None, bank=bank))

    changed = keys.copy()
    changed[1, 2, 3] = False
    other_piece = keys.copy()
    other_piece[0, 0, 0] = True  # a piece the run does not play
    assert len(digest(keys)) == 16
    assert digest(changed) != digest(keys) and digest(other_piece) == digest(keys)
    assert digest(keys, ("a", "c")) != digest(keys)
