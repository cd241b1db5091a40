"""The miniature end-to-end (`pipeline` at toy sizes: a pool of tiny specialists -> dataset ->
tiny transformer -> a DAgger round -> report) as CI runs it: one command, and again, resumed."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("train.dataset.loader")

from mjx_piano.cli import main  # noqa: E402
from train.dataset import store  # noqa: E402
from train.library import load_library  # noqa: E402


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
    with open(os.path.join(out, "generalist_dagger1", "eval_id_ood.json")) as f:
        dagger = json.load(f)
    assert f"| id | 4 | {report['id']['means']['eval/f1']:.3f} | " \
           f"{dagger['id']['means']['eval/f1']:.3f} |" in text
    _check_the_dagger_store(out, report["id"]["means"]["eval/f1"])
    assert os.path.getsize(os.path.join(out, "report.png")) > 0
    assert "Wall time: pool " in text and "generalist " in text
    # Run again: every stage finds its output complete and the report is the same (but for
    # the stages' wall time, which adds this run's seconds).
    assert main(["generalist", "miniature", "--out", out, "--steps", "300"]) == 0
    printed = capsys.readouterr().out
    assert "4 of 4 pieces finished" in printed and "nothing to do" in printed
    without_times = lambda t: [line for line in t.splitlines() if not line.startswith("Wall")]
    with open(os.path.join(out, "report.md")) as f:
        assert without_times(f.read()) == without_times(text)


def _check_the_dagger_store(out: str, generalist_f1: float) -> None:
    """The DAgger round's store: the first generalist acted, the specialists labelled."""
    relabelled = os.path.join(out, "dataset_dagger1")
    collection = store.load_manifest(relabelled)["collection"]
    assert collection["relabel_learner"] == os.path.join(out, "generalist")
    assert collection["learner_sha256"] and collection["specialists_sha256"]
    data = store.read_shard(relabelled, 0)
    # Each stored state's label is its piece's specialist's deterministic action there.
    library = load_library(os.path.join(out, "pool"))
    agent = np.repeat(data["specialist"], data["length"])
    pick = lambda tree: jax.tree_util.tree_map(lambda x: jnp.asarray(np.asarray(x)[agent]), tree)
    labels = jax.vmap(library.learner.mode_action)(pick(library.policy),
                                                   pick(library.normalizer),
                                                   jnp.asarray(data["observation"]))
    np.testing.assert_allclose(data["expert_action"], np.asarray(labels), atol=1e-5)
    # ... and the generalist, not the specialists, chose the actions played: they differ
    # from the labels, and the episodes score what the generalist scores on its own.
    assert np.abs(data["action"] - data["expert_action"]).mean() > 0.05
    assert abs(float(np.mean(data["f1"])) - generalist_f1) < 0.1, (data["f1"], generalist_f1)
