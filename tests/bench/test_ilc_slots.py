"""`bench.ilc_slots`: each clip's F1 is gathered from its own slots of every batch and
summarized per batch size (each batch weighted equally), and a missing run is refused."""

from __future__ import annotations

import numpy as np
import pytest

from bench.ilc_slots import main, markdown, slot_f1, summary


def test_each_clip_gets_its_own_slots_of_every_batch():
    batches = []

    def play(pieces, costs, tables):  # F1 = the clip's own table value + the slot / 1000
        batches.append(len(pieces))
        assert np.array_equal(costs, np.array([1.0, 0.0, 1.0])[pieces])
        return tables[:, 0, 0, 0] + np.arange(len(pieces)) / 1000

    tables = np.zeros((3, 2, 1, 3), np.float32)
    tables[:, 0, 0, 0] = [0.1, 0.5, 0.9]
    per_clip = slot_f1(play, tables, np.array([1.0, 0.0, 1.0], np.float32), (1, 2))
    assert batches == [3, 6]
    # clip 1 sits in slot 1 of the first batch and slots 1 and 4 of the second
    np.testing.assert_allclose(per_clip[1], [0.501, 0.501, 0.504], atol=1e-6)
    report = summary(("a", "b", "c"), per_clip, (1, 2))
    assert report["batch_sizes"] == [3, 6]
    b = report["clips"][1]
    assert b["by_batch"] == {"3": pytest.approx(0.501), "6": pytest.approx(0.5025)}
    assert b["spread_within"] == pytest.approx(0.003)  # slots 1 and 4 of the batch of 6
    assert b["mean"] == pytest.approx((0.501 + 0.5025) / 2)  # each batch weighs the same
    assert (b["min"], b["max"]) == (pytest.approx(0.501), pytest.approx(0.5025))
    assert report["median_of_means"] == pytest.approx(b["mean"])
    assert "| b | 0.501 | 0.502 | 0.502 | 0.501 | 0.502 | 0.003 |" in markdown(report)


def test_a_run_that_is_not_there_is_refused(tmp_path, capsys):
    assert main(["--out", str(tmp_path)]) == 2
    assert "ilc_state.npz" in capsys.readouterr().err
