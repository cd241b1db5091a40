"""Evaluation on the built repertoire's splits in the full two-hand env (`generalist eval
--split ...`): the right clips are played to their end, in one jitted rollout, and reported."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

from mjx_piano.music.repertoire import clip_info, list_clips
from train.generalist import config as cfg
from train.generalist.model import init_params
from train.generalist.pipeline import build_model, evaluate_splits, split_env, training_env


@pytest.mark.slow
def test_untrained_policy_on_repertoire_splits_in_the_full_env(small_repertoire, tmp_path):
    config = cfg.GeneralistConfig(
        model=cfg.MODEL_SIZES["tiny"],
        data=cfg.DataConfig(source="dataset", env="piano", pieces=("etude/c-major-chords",)),
        run=cfg.RunConfig(eval_limit=1, progress=False))
    loaded = training_env(config)
    model = build_model(config, loaded.env)
    params = init_params(model, jax.random.PRNGKey(0), loaded.env.observation_size)
    results = evaluate_splits(config, model, params, ("test_id", "ood"), str(tmp_path))

    for split, name in (("test_id", "test_id"), ("ood", "test_ood")):
        clip = list_clips(name)[0]  # --limit 1: the split's first clip
        assert results[split].names == (clip,) == split_env(config, split).piece_names
        assert split_env(config, split).episode_length == clip_info(clip)["steps"]
        assert results[split].completed[0] == 1.0  # played to the clip's end
        scores = {k: float(v[0]) for k, v in results[split].scores.items()}
        assert all(np.isfinite(v) and 0.0 <= v <= 1.0 for v in scores.values()), scores
        # An untrained policy presses few of the goal keys.
        assert scores["recall"] < 0.5, scores
    report = json.loads((tmp_path / "eval_test_id_ood.json").read_text())
    assert report["ood"]["pieces"] == [list_clips("test_ood")[0]]
    assert os.path.getsize(tmp_path / "eval_test_id_ood.png") > 0
    assert list_clips("test_id")[0] in (tmp_path / "eval_test_id_ood.txt").read_text()


def test_eval_splits_of_named_pieces_files_and_own_repertoires(tmp_path, monkeypatch):
    from mjx_piano.music.builder import build_repertoire, folder_sources
    from mjx_piano.music.file_piece import file_piece_names
    from mjx_piano.music.repertoire import repertoire_path
    from tests.music.conftest import write_midi
    from train.generalist.pipeline import split_env_config

    monkeypatch.setenv("MJX_PIANO_CACHE", str(tmp_path / "cache"))
    os.makedirs(tmp_path / "songs")
    song = write_midi(tmp_path / "songs" / "song.mid",
                      {"piano": [(i * 0.25, i * 0.25 + 0.2, 60 + i % 5) for i in range(40)]})
    build_repertoire(repertoire_path("songs"), folder_sources(tmp_path / "songs")[0],
                     progress=False)
    [file_name] = file_piece_names(song)
    run = cfg.RunConfig(eval_pieces=(file_name, "etude/c-major-chords"), eval_repertoire="songs")
    config = cfg.GeneralistConfig(data=cfg.DataConfig(env="piano"), run=run)
    assert split_env_config(config, "pieces").pieces == (file_name, "etude/c-major-chords")
    assert split_env_config(config, "all").pieces == ("songs:song/00",)
    with pytest.raises(ValueError, match="named with --pieces"):
        split_env_config(cfg.GeneralistConfig(data=cfg.DataConfig(env="piano")), "pieces")
