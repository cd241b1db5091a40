"""`mjx-piano generalist miniature`: the whole chain on CPU in one command (CI-sized).

tiny PPO specialists on toy pieces (`train specialists`) -> a trajectory store of their
rollouts (`dataset collect`, issue 7) -> the tiny transformer trained on it (`generalist
train --source dataset`) -> its evaluation report on the training and held-out pieces. Each
stage runs through its own command, so this module depends on the other stages only through
their command lines. About a minute on 2 CPU cores.
"""

from __future__ import annotations

import os
from typing import Sequence

PIECES = ("toy-00", "toy-01", "toy-02", "toy-03")


def stage_commands(out: str, pieces: Sequence[str] = PIECES, steps: int = 300,
                   rollouts: int = 16) -> list[list[str]]:
    """The three command lines (argv without the program name), in order."""
    specialists, store, generalist = (os.path.join(out, name) for name in
                                      ("specialists", "dataset", "generalist"))
    return [
        ["train", "specialists", "--env", "toy", "--pieces", *pieces, "--preset", "cpu-smoke",
         "--out", specialists, "--no-progress"],
        ["dataset", "collect", "--run", specialists, "--out", store, "--rollouts",
         str(rollouts), "--chunk-envs", str(rollouts), "--no-progress"],
        ["generalist", "train", "--source", "dataset", "--data", store, "--env", "toy",
         "--size", "tiny", "--steps", str(steps), "--batch", "128", "--lr", "3e-3",
         "--log-every", "50", "--out", generalist, "--no-progress",
         "--set", "optim.warmup_steps=20", "--set", f"optim.decay_steps={steps}"],
    ]


def run_miniature(out: str, steps: int = 300, resume: bool = False) -> int:
    """Runs the stages; stops at the first that fails. Returns the exit code.

    Args:
        out: folder for the three stages' outputs.
        steps: transformer training steps.
        resume: continue each stage from what `out` already holds (the stages resume).
    """
    from mjx_piano.cli import main

    for argv in stage_commands(out, steps=steps):
        if resume and argv[0] in ("train", "generalist"):
            argv = [*argv, "--resume"]
        print("$ mjx-piano " + " ".join(argv), flush=True)
        code = main(argv)
        if code:
            return code
    print(f"report: {os.path.join(out, 'generalist', 'eval_id_ood.txt')} (and .png, .json)")
    return 0
