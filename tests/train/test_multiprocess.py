"""Many hosts through `jax.distributed`, as two processes on this machine (CPU, gloo).

Two processes with two CPU devices each form one mesh of four devices (one agent each). They
train four toy agents toward 6 iterations until SIGTERM reaches one of them (process 1, not the
one that writes: a preempted host), stop together after the same iteration with a checkpoint,
and resume to 6 iterations; a single process with four devices trains the same agents for 6
iterations without stopping. Agents are independent, so every logged loss and evaluation must
be the same, and only process 0 writes.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import socket
import subprocess
import sys
import time

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


def _run_two_processes(out: str, iterations: int, resume: bool, sigterm_to: int | None = None
                       ) -> list[subprocess.CompletedProcess]:
    """Both processes of a run to `iterations`; `sigterm_to`: the process that gets SIGTERM
    once the run has started (its config.json is written, after the trainer is built)."""
    address = f"127.0.0.1:{_free_port()}"
    procs = [subprocess.Popen(
        _command(out, iterations, ["--distributed", "--coordinator", address,
                                   "--num-processes", "2", "--process-id", str(i)]
                 + (["--resume"] if resume else [])),
        cwd=ROOT, env=_environment(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for i in range(2)]
    if sigterm_to is not None:
        deadline = time.monotonic() + 600
        while not os.path.exists(os.path.join(out, "config.json")) and \
                all(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.2)
        procs[sigterm_to].send_signal(signal.SIGTERM)
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
    first = _run_two_processes(distributed, 6, resume=False, sigterm_to=1)
    second = _run_two_processes(distributed, 6, resume=True)
    reference = subprocess.run(_command(single, 6, []), cwd=ROOT, env=_environment(4),
                               capture_output=True, text=True, timeout=600)
    return {"first": first, "second": second, "reference": reference,
            "distributed": distributed, "single": single}


@pytest.mark.slow
def test_two_processes_train_stop_and_resume_like_one(runs):
    # SIGTERM to process 1 stops both after the same iteration, each with exit code 143.
    stopped = []
    for proc, how in zip(runs["first"], ("SIGTERM on another host", "SIGTERM")):
        assert proc.returncode == 143, proc.stderr[-4000:]
        found = re.search(rf"stopped by {how} after iteration (\d+), with a checkpoint",
                          proc.stdout)
        assert found, proc.stdout[-2000:]
        stopped.append(int(found.group(1)))
    assert stopped[0] == stopped[1] < 6
    for proc in (*runs["second"], runs["reference"]):
        assert proc.returncode == 0, proc.stderr[-4000:]
    # The resume picks up the stop's checkpoint; process 0 reports; both ran the same mesh of
    # four devices over two processes.
    assert f"resumed at iteration {stopped[0]} of 6" in runs["second"][0].stderr
    assert "4 agent(s), 6 iterations" in runs["second"][0].stdout
    for kind in ("train", "eval"):
        distributed = _learned(os.path.join(runs["distributed"], f"{kind}.csv"))
        single = _learned(os.path.join(runs["single"], f"{kind}.csv"))
        # One row per agent and iteration (evaluations at 0, 2, 4, 6): nothing written twice.
        assert len(distributed) == 4 * (6 if kind == "train" else 4)
        assert distributed == single
    assert max(map(int, os.listdir(os.path.join(runs["distributed"], "checkpoints")))) == 6
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
