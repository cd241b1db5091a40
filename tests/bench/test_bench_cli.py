"""`mjx-piano bench --quick`: the whole benchmark report, as CI can afford it."""

from __future__ import annotations

import json

import pytest

from mjx_piano.cli import main


@pytest.mark.slow
def test_quick_bench_writes_tables_json_and_plot(tmp_path, capsys):
    # The transformer's rows are `bench gpu`'s too (tests/bench/test_gpu_suite.py measures
    # them for real): skipped here, they cost a minute of compiling.
    assert main(["bench", "--quick", "--skip", "transformer", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "| impl | mode | envs | compile (s) | env steps/s | physics steps/s |" in text
    report = json.loads((tmp_path / "bench.json").read_text())
    modes = {(row["impl"], row["mode"]) for row in report["env"]}
    assert modes == {("mujoco-c", "physics"), ("jax", "task"), ("jax", "physics")}
    assert all(row["env_steps_per_s"] > 0 and row["compile_s"] >= 0 for row in report["env"])
    assert report["ot"][0]["call_ms"] > 0 and report["ppo"]["env_steps_per_s"] > 0
    assert {r["mode"] for r in report["loader"]} == {"host", "device"}
    assert all(r["samples_per_s"] > 0 for r in report["loader"])
    assert "transformer" not in report and "## Dataset loader" in text
    assert (tmp_path / "scaling.png").stat().st_size > 1000
    assert (tmp_path / "bench.md").read_text().startswith("# mjx_piano benchmarks")


def test_skip_leaves_sections_out(tmp_path, capsys):
    assert main(["bench", "--quick", "--skip", "env", "ot", "ppo", "transformer",
                 "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    assert "env" not in report and "ppo" not in report and report["loader"]
    assert not (tmp_path / "scaling.png").exists()
    assert "## Env step" not in (tmp_path / "bench.md").read_text()
