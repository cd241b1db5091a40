"""Miniature end-to-end on the real env: scripted expert on self-playing keys -> windows ->
tiny transformer -> evaluation report (the specialists -> dataset half waits for issue 7)."""

from __future__ import annotations

import os

import jax

from train.envs import piece_catalogue
from train.generalist import config as cfg
from train.generalist.model import init_params
from train.generalist.pipeline import evaluate_splits, train_run, training_env
from train.generalist.rollout import format_table

PIECE = "etude/c-major-chords"


def test_scripted_piano_keys_to_generalist_report(tmp_path):
    assert PIECE in piece_catalogue("piano-keys")
    out = str(tmp_path / "run")
    config = cfg.GeneralistConfig(
        model=cfg.MODEL_SIZES["tiny"],
        optim=cfg.OptimConfig(batch_size=128, learning_rate=3e-3, warmup_steps=20,
                              decay_steps=300),
        data=cfg.DataConfig(source="scripted", env="piano-keys", pieces=(PIECE,)),
        run=cfg.RunConfig(steps=300, out=out, log_every=50, checkpoint_every=300,
                          progress=False))
    output = train_run(config, eval_splits=("id",))
    losses = [v for _, v in output.result.losses]
    assert losses[-1] < 0.5 * losses[0], losses
    trained = output.evaluation["id"]
    assert trained.completed[0] == 1.0
    observation_size = training_env(config).env.observation_size
    untrained_params = init_params(output.model, jax.random.PRNGKey(1), observation_size)
    untrained = evaluate_splits(config, output.model, untrained_params, ("id",),
                                str(tmp_path / "untrained"))["id"]
    print(format_table({"trained": trained, "untrained": untrained}))
    assert trained.scores["f1"][0] > 0.6, trained
    assert trained.scores["f1"][0] > untrained.scores["f1"][0] + 0.3, (trained, untrained)
    for name in ("eval_id.txt", "eval_id.json", "eval_id.png", "loss.png", "train.csv"):
        assert os.path.exists(os.path.join(out, name)), name
