"""Named splits of the catalogues: the built repertoire's train / test_id / test_ood, the
etude splits, the toy splits, `--limit`, and their errors (no env is compiled here)."""

from __future__ import annotations

import pytest

from mjx_piano.music.repertoire import list_clips
from train.cli import config_from_args
from train.config import EnvSpec
from train.envs import piece_catalogue, resolve_pieces, split_pieces
from train.plan import plan_run


def _piece(clip: str) -> str:
    return clip.rsplit("/", 1)[0]


def test_piano_splits_are_the_repertoire_splits(small_repertoire):
    train, test_id, test_ood = (split_pieces("piano", s) for s in ("train", "test_id", "test_ood"))
    assert train == tuple(list_clips("train")) and len(train) == 19
    assert test_id == tuple(list_clips("test_id")) and len(test_id) == 2
    assert test_ood == tuple(list_clips("test_ood")) and len(test_ood) == 2
    assert split_pieces("piano", "test") == test_ood
    assert not set(train) & set(test_id) and not set(train) & set(test_ood)
    # test_id: unseen clips of training pieces; test_ood: pieces with no clip in training.
    assert {_piece(c) for c in test_id} <= {_piece(c) for c in train}
    assert not {_piece(c) for c in test_ood} & {_piece(c) for c in train}
    catalogue = piece_catalogue("piano")
    assert set(train + test_id + test_ood) <= set(catalogue)
    assert split_pieces("piano", "all") == catalogue
    assert split_pieces("piano-keys", "test_ood") == test_ood


def test_limit_takes_the_first_pieces_of_a_split(small_repertoire):
    assert resolve_pieces(EnvSpec(name="piano", split="train", limit=3)) == \
        split_pieces("piano", "train")[:3]
    assert resolve_pieces(EnvSpec(name="piano", split="test_id", limit=0)) == \
        split_pieces("piano", "test_id")
    with pytest.raises(ValueError, match="limit must be >= 0"):
        resolve_pieces(EnvSpec(name="piano", split="train", limit=-1))


def test_etude_splits_need_no_repertoire(tmp_path, monkeypatch):
    monkeypatch.setenv("MJX_PIANO_CACHE", str(tmp_path))  # nothing built there
    etude_train, etude_test = split_pieces("piano", "etude-train"), split_pieces("piano", "etude-test")
    assert len(etude_train) == 144 and len(etude_test) == 48  # keys A, Bb and B held out
    assert set(etude_train) | set(etude_test) == set(split_pieces("piano", "etude"))
    assert all(p.split("/")[1].split("-")[0] in ("a", "bb", "b") for p in etude_test)
    with pytest.raises(ValueError, match="repertoire build") as error:
        split_pieces("piano", "test_ood")
    assert "etude-train" in str(error.value)


def test_toy_splits():
    assert split_pieces("toy", "test") == split_pieces("toy", "test_ood") == \
        tuple(f"toy-{i}" for i in range(12, 16))
    assert len(split_pieces("toy", "train")) == 12
    with pytest.raises(ValueError, match="toy env has the splits"):
        split_pieces("toy", "test_id")
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        split_pieces("toy", "dev")


def test_unknown_piece_lists_close_matches(small_repertoire):
    with pytest.raises(ValueError, match=r"close matches: .*bach/bwv1\.6/00"):
        resolve_pieces(EnvSpec(name="piano", pieces=("bach/bwv1.6/0",)))


def test_specialists_on_a_repertoire_split_from_the_command_line(small_repertoire, tmp_path):
    import argparse

    from mjx_piano.cli import build_parser

    args = build_parser().parse_args(
        ["train", "specialists", "--env", "piano-keys", "--preset", "cpu-piano", "--split",
         "test_ood", "--limit", "1", "--out", str(tmp_path / "run")])
    assert isinstance(args, argparse.Namespace)
    plan = plan_run(config_from_args(args))  # --split wins over the preset's pieces
    assert plan.config.env.pieces == split_pieces("piano", "test_ood")[:1]
    assert plan.agent_labels == [plan.config.env.pieces[0]]
