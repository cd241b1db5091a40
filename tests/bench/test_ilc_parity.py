"""`bench ilc-parity` (`bench/ilc_parity.py`): the comparison finds where two plays part, and
bad input exits 2 before anything runs. The checks on a real env run in
`tests/train/test_ilc.py` beside the segment search's test (its compiled rollouts)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.ilc_parity import compare, table
from mjx_piano.cli import main


def _trace(tracks: int = 2, steps: int = 6, keys: int = 3, fingers: int = 2):
    rng = np.random.default_rng(0)
    return [rng.random((tracks, steps)).astype(np.float32),
            np.zeros((tracks, steps, keys), bool), rng.random((tracks, steps, keys)) > 0.5,
            np.zeros((tracks, steps, keys), np.int32),
            rng.random((tracks, steps, fingers, 3)).astype(np.float32)]


def test_equal_plays_agree_and_a_parted_one_is_found_at_its_first_step():
    a = _trace()
    same = compare("repeat", -1, 0, a, [v.copy() for v in a])
    assert (same.equal, same.first_step, same.first_tip_m, same.max_tip_m, same.max_f1_gap,
            same.pressed_share) == (True, -1, 0.0, 0.0, 0.0, 0.0)
    b = [v.copy() for v in a]
    b[4][1, 3, 0, 2] += 1e-4  # a fingertip parts at the replay's step 3
    b[0][1, 4] += 0.5
    b[2][0, 5, 1] = ~b[2][0, 5, 1]
    parted = compare("batch", 20, 19, a, b)
    assert not parted.equal and parted.first_step == 19 + 3
    assert parted.max_tip_m == pytest.approx(1e-4, rel=1e-2)
    assert parted.first_tip_m == pytest.approx(1e-4, rel=1e-2)  # the seed, at step 3
    b[4][0, 5, 1, 0] += 0.25  # grows later: the largest, not the first
    grown = compare("batch", 20, 19, a, b)
    assert grown.first_tip_m == parted.first_tip_m and grown.max_tip_m == pytest.approx(0.25)
    assert parted.max_f1_gap == pytest.approx(0.5, rel=1e-5)
    assert parted.pressed_share == pytest.approx(1 / (2 * 6 * 3))
    lines = table([same, parted]).splitlines()
    assert "| repeat | clip | yes | - |" in lines[2] and "| batch | 20 | no | 22 |" in lines[3]


def test_bad_input_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "")  # the command adds the determinism flag
    out = str(tmp_path / "p")
    assert main(["bench", "ilc-parity", "--windows", "0", "--out", out]) == 2
    assert "--windows" in capsys.readouterr().err
    assert main(["bench", "ilc-parity", "--pieces", "no/such-piece", "--out", out]) == 2
    assert "no/such-piece" in capsys.readouterr().err
    assert main(["bench", "ilc-parity", "--pieces", "etude/c-major-chords",
                 "etude/c-major-scale-rh", "--out", out]) == 2
    assert "equally long" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SystemExit) as stop:  # `add_out` checks the folder as it parses
        main(["bench", "ilc-parity", "--out", str(tmp_path / "afile")])
    assert stop.value.code == 2 and "is a file" in capsys.readouterr().err


def test_the_search_asks_for_deterministic_gpu_ops_unless_the_user_set_the_flag(monkeypatch):
    from train.determinism import DETERMINISM_FLAG, deterministic_gpu

    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_concurrency_optimized_scheduler=false")
    assert deterministic_gpu() == ("--xla_cpu_enable_concurrency_optimized_scheduler=false "
                                   f"--{DETERMINISM_FLAG}=true")
    assert deterministic_gpu().count(DETERMINISM_FLAG) == 1  # once
    monkeypatch.setenv("XLA_FLAGS", f"--{DETERMINISM_FLAG}=false")
    assert deterministic_gpu() == f"--{DETERMINISM_FLAG}=false"  # the user's wins
    monkeypatch.delenv("XLA_FLAGS")
    assert deterministic_gpu() == f"--{DETERMINISM_FLAG}=true"


def test_the_search_asks_for_float32_products_unless_the_precision_is_set():
    import jax

    from train.determinism import float32_matmuls

    suite = jax.config.jax_default_matmul_precision  # tests/conftest.py's
    try:
        jax.config.update("jax_default_matmul_precision", None)  # JAX's default: TF32 on GPUs
        assert float32_matmuls() == "highest" == jax.config.jax_default_matmul_precision
        jax.config.update("jax_default_matmul_precision", "tensorfloat32")
        assert float32_matmuls() == "tensorfloat32"  # the user's wins
    finally:
        jax.config.update("jax_default_matmul_precision", suite)
