"""Preemption: SIGTERM stops a specialists run after an iteration with a checkpoint, and
`--resume` continues to exactly the uninterrupted run."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

from train.stop_signal import StopRequest, catch_stop_signals

# Columns that depend on the clock, not on what was learned.
CLOCK_COLUMNS = {"wall_s", "train/sps"}


def _train(out: str, iterations: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mjx_piano", "train", "specialists", "--env", "toy",
            "--preset", "cpu-smoke", "--pieces", "toy-00", "--iterations", str(iterations),
            "--eval-every", "0", "--checkpoint-every", "0", "--no-progress", "--out", out,
            *extra]


def _rows(path: str) -> list[dict[str, str]]:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _learned(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in CLOCK_COLUMNS} for row in rows]


@pytest.mark.slow
def test_sigterm_checkpoints_and_resume_matches_the_uninterrupted_run(tmp_path):
    out = str(tmp_path / "stopped")
    process = subprocess.Popen(_train(out, 100_000), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(_rows(os.path.join(out, "train.csv"))) < 3:  # compiled and iterating
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run never started iterating"
        time.sleep(0.5)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert time.monotonic() - sent < 30  # one toy iteration and a checkpoint
    assert process.returncode == 143, stderr
    stopped_at = len(_rows(os.path.join(out, "train.csv")))
    assert f"stopped by SIGTERM after iteration {stopped_at}" in stdout
    assert "Traceback" not in stderr
    assert os.listdir(os.path.join(out, "checkpoints")) == [str(stopped_at)]

    total = stopped_at + 3
    resumed = subprocess.run(_train(out, total, "--resume"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    straight_out = str(tmp_path / "straight")
    straight = subprocess.run(_train(straight_out, total), capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr
    assert _learned(_rows(os.path.join(out, "train.csv"))) == \
        _learned(_rows(os.path.join(straight_out, "train.csv")))


def test_the_first_signal_asks_and_the_second_interrupts():
    request = StopRequest()
    assert not request
    request.handle(signal.SIGTERM, None)
    assert request and request.signal_name == "SIGTERM"
    with pytest.raises(KeyboardInterrupt):
        request.handle(signal.SIGINT, None)


def test_handlers_are_restored_after_the_run():
    before = signal.getsignal(signal.SIGTERM)
    with catch_stop_signals() as request:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert request.signal_name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before
