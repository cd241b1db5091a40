"""The miniature end-to-end (`pipeline` at toy sizes: a pool of tiny specialists -> dataset ->
tiny transformer -> report) as CI runs it: one command, and again, resumed."""

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
    # The pipeline's report reads back: the specialists' pieces and the generalist by split.
    with open(os.path.join(out, "report.md")) as f:
        text = f.read()
    assert "Specialists (`pool/`): 4 pieces" in text
    assert f"| id | 4 | {report['id']['means']['eval/f1']:.3f} |" in text
    assert os.path.getsize(os.path.join(out, "report.png")) > 0
    # Run again: every stage finds its output complete and the report is the same.
    assert main(["generalist", "miniature", "--out", out, "--steps", "300"]) == 0
    printed = capsys.readouterr().out
    assert "4 of 4 pieces finished" in printed and "nothing to do" in printed
    with open(os.path.join(out, "report.md")) as f:
        assert f.read() == text
