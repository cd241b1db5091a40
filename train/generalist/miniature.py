"""`mjx-piano generalist miniature`: the whole chain on CPU in one command (CI-sized).

`mjx-piano pipeline` at toy sizes: tiny PPO specialists on four toy pieces (`train pool`) -> a
trajectory store of their rollouts (`dataset collect`) -> the tiny transformer trained on it
(`generalist train --source dataset`) -> one DAgger round (the transformer plays, the
specialists label: `dataset collect --relabel-learner`; a new transformer on both stores) ->
their evaluation on the training and held-out pieces -> the pipeline's report. A few minutes
on 2 CPU cores.
"""

from __future__ import annotations

PIECES = ("toy-00", "toy-01", "toy-02", "toy-03")


def miniature_argv(out: str, steps: int = 300) -> list[str]:
    """The `pipeline` command line of the miniature: the four toy pieces in four pool slots
    (the cpu-smoke preset, at most 40 iterations each), 16 rollouts per piece, the tiny
    transformer for `steps` steps, one DAgger round."""
    return ["pipeline", "--env", "toy", "--pieces", *PIECES, "--slots", str(len(PIECES)),
            "--max-env-steps", str(40 * 32 * 16), "--rollouts", "16", "--size", "tiny",
            "--steps", str(steps), "--dagger-rounds", "1", "--out", out, "--no-progress"]


def run_miniature(out: str, steps: int = 300, resume: bool = False) -> int:
    """Runs the pipeline at toy sizes (every stage resumes what `out` holds, so `resume` is
    implied). Returns the exit code.

    Args:
        out: folder for the stages' outputs and the report.
        steps: transformer training steps.
        resume: accepted for the command line's `--resume`; the pipeline always resumes.
    """
    from mjx_piano.cli import main

    del resume
    return main(miniature_argv(out, steps))
