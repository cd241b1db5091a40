"""Many hosts through `jax.distributed`, as two processes on this machine (CPU, gloo).

Two processes with two CPU devices each form one mesh of four devices (one agent each). They
train four toy agents for 4 iterations, checkpoint, and resume to 6 iterations; a single process
with four devices trains the same agents for 6 iterations without stopping. Agents are
independent, so every logged loss and evaluation must be the same, and only process 0 writes.
"""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys

import pytest

from mjx_piano.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PIECES = ["toy-00", "toy-01", "toy-02", "toy-03"]
# Columns that hold wall-clock times or speeds, not what was learned.
TIMING_COLUMNS = {"wall_s", "train/sps"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(out: str, iterations: int, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "mjx_piano", "train", "specialists", "--env", "toy",
            "--preset", "cpu-smoke", "--pieces", *PIECES, "--iterations", str(iterations),
            "--eval-every", "2", "--checkpoint-every", "2", "--out", out, "--no-progress", *extra]


def _environment(devices: int) -> dict[str, str]:
    return dict(os.environ, JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES=str(devices),
                XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", PYTHONPATH=ROOT)


def _run_two_processes(out: str, iterations: int, resume: bool) -> list[subprocess.CompletedProcess]:
    address = f"127.0.0.1:{_free_port()}"
    procs = [subprocess.Popen(
        _command(out, iterations, ["--distributed", "--coordinator", address,
                                   "--num-processes", "2", "--process-id", str(i)]
                 + (["--resume"] if resume else [])),
        cwd=ROOT, env=_environment(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for i in range(2)]
    results = []
    for proc in procs:
        try:
            stdout, stderr = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return results


def _learned(path: str) -> list[dict[str, str]]:
    with open(path) as f:
        return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS}
                for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("multiprocess")
    distributed, single = str(base / "distributed"), str(base / "single")
    first = _run_two_processes(distributed, 4, resume=False)
    second = _run_two_processes(distributed, 6, resume=True)
    reference = subprocess.run(_command(single, 6, []), cwd=ROOT, env=_environment(4),
                               capture_output=True, text=True, timeout=600)
    return {"first": first, "second": second, "reference": reference,
            "distributed": distributed, "single": single}


@pytest.mark.slow
def test_two_processes_train_stop_and_resume_like_one(runs):
    for proc in (*runs["first"], *runs["second"], runs["reference"]):
        assert proc.returncode == 0, proc.stderr[-4000:]
    # Process 0 reports; both ran the same mesh of four devices over two processes.
    assert "4 agent(s), 4 iterations" in runs["first"][0].stdout
    assert "4 agent(s), 6 iterations" in runs["second"][0].stdout
    for kind in ("train", "eval"):
        distributed = _learned(os.path.join(runs["distributed"], f"{kind}.csv"))
        single = _learned(os.path.join(runs["single"], f"{kind}.csv"))
        # One row per agent and iteration (evaluations at 0, 2, 4, 6): nothing written twice.
        assert len(distributed) == 4 * (6 if kind == "train" else 4)
        assert distributed == single
    assert sorted(os.listdir(os.path.join(runs["distributed"], "checkpoints"))) == ["4", "6"]
    assert os.path.exists(os.path.join(runs["distributed"], "learning_curve.png"))


def test_cluster_flags_are_checked_before_anything_starts(capsys):
    base = ["train", "specialists", "--env", "toy", "--preset", "cpu-smoke"]
    assert main([*base, "--coordinator", "127.0.0.1:1234"]) == 2
    assert "need --distributed" in capsys.readouterr().err
    assert main([*base, "--distributed", "--coordinator", "127.0.0.1:1234"]) == 2
    assert "give all of" in capsys.readouterr().err
    assert main([*base, "--distributed", "--coordinator", "127.0.0.1:1234",
                 "--num-processes", "2", "--process-id", "2"]) == 2
    assert "0..1" in capsys.readouterr().err
