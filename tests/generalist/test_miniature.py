"""The miniature end-to-end (tiny specialists -> dataset -> tiny transformer -> report) as CI
runs it: one command. Skipped while the dataset package (issue 7) is absent."""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("train.dataset.loader")

from mjx_piano.cli import main  # noqa: E402


def test_miniature_end_to_end(tmp_path, capsys):
    out = str(tmp_path)
    assert main(["generalist", "miniature", "--out", out, "--steps", "300"]) == 0
    with open(os.path.join(out, "generalist", "eval_id_ood.json")) as f:
        report = json.load(f)
    assert report["id"]["pieces"] == ["toy-00", "toy-01", "toy-02", "toy-03"]
    # Specialists after 40 PPO iterations score F1 ~0.77; the generalist imitates them.
    assert report["id"]["means"]["eval/f1"] > 0.5, report["id"]["means"]
    assert os.path.exists(os.path.join(out, "generalist", "eval_id_ood.png"))
    assert "report:" in capsys.readouterr().out
