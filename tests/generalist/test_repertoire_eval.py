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
