"""The learning ladder's report: every run under one rung folder, side by side.

A run is a folder `<rung folder>/<recipe>/seed<k>` written by `train specialists` (its
`eval.csv`: one row per evaluation and agent, with `env_steps`, `wall_s`, `pieces`, `eval/f1`).
F1 "at a milestone" is the first evaluation at or past that many env steps per clip, so
milestones past a run's last evaluation stay empty; the table says at which env steps it was read.
One evaluation is noisy (a policy's F1 moves by a few hundredths between neighbouring ones), so
the report also gives each milestone's *window mean*: the mean over the evaluations from 3/4 of
the milestone's env steps up to the one read there, and averages it over a recipe's seeds.
Writes `ladder.json`, `ladder.md` and `ladder.png` in the rung folder.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import json
import os

import numpy as np


@dataclasses.dataclass(frozen=True)
class RunCurve:
    """One run's evaluations.

    Attributes:
        recipe: the recipe's name (the run's parent folder).
        seed: the seed (from the folder name `seed<k>`).
        pieces: the clips, agent order [agents].
        env_steps: int [evals], env steps per clip at each evaluation.
        wall_s: float [evals], training wall seconds at each evaluation.
        f1: float [evals, agents], eval F1 per clip.
    """

    recipe: str
    seed: int
    pieces: tuple[str, ...]
    env_steps: np.ndarray
    wall_s: np.ndarray
    f1: np.ndarray

    @property
    def median_f1(self) -> np.ndarray:
        """float [evals], the median over clips."""
        return np.median(self.f1, axis=1)

    def at(self, milestone: int) -> int | None:
        """Index of the first evaluation at or past `milestone` env steps, None if none."""
        hits = np.nonzero(self.env_steps >= milestone)[0]
        return int(hits[0]) if hits.size else None

    def window(self, milestone: int) -> np.ndarray | None:
        """bool [evals]: the evaluations from 3/4 of `milestone` env steps up to the one read at
        `milestone` (None if the run has not reached it)."""
        i = self.at(milestone)
        if i is None:
            return None
        return (self.env_steps >= 0.75 * milestone) & (self.env_steps <= self.env_steps[i])

    def window_f1(self, milestone: int) -> np.ndarray | None:
        """float [agents]: each clip's mean F1 over `window(milestone)` (None if not reached)."""
        window = self.window(milestone)
        return None if window is None else self.f1[window].mean(axis=0)

    def window_median_f1(self, milestone: int) -> float | None:
        """The mean of the median F1 over `window(milestone)` (None if not reached)."""
        window = self.window(milestone)
        return None if window is None else float(self.median_f1[window].mean())


def read_run(folder: str) -> RunCurve | None:
    """The run in `folder` (None without evaluations); evaluations of every agent only."""
    path = os.path.join(folder, "eval.csv")
    if not os.path.exists(path):
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    agents = sorted({int(r["agent"]) for r in rows})
    pieces = {int(r["agent"]): r["pieces"] for r in rows}
    by_step: dict[int, dict[int, tuple[float, float]]] = {}
    for r in rows:
        by_step.setdefault(int(float(r["env_steps"])), {})[int(r["agent"])] = (
            float(r["eval/f1"]), float(r.get("wall_s") or "nan"))
    steps = [s for s in sorted(by_step) if len(by_step[s]) == len(agents)]
    if not steps:
        return None
    seed_text = os.path.basename(folder.rstrip("/"))
    return RunCurve(
        recipe=os.path.basename(os.path.dirname(folder.rstrip("/"))),
        seed=int(seed_text[4:]) if seed_text[4:].isdigit() else 0,
        pieces=tuple(pieces[a] for a in agents),
        env_steps=np.asarray(steps, np.int64),
        wall_s=np.asarray([max(w for _, w in by_step[s].values()) for s in steps]),
        f1=np.asarray([[by_step[s][a][0] for a in agents] for s in steps]))


def read_rung(rung_folder: str) -> list[RunCurve]:
    """Every run under `rung_folder` (`<recipe>/seed<k>`), sorted by recipe and seed."""
    runs = [read_run(f) for f in sorted(glob.glob(os.path.join(rung_folder, "*", "seed*")))]
    return sorted((r for r in runs if r is not None), key=lambda r: (r.recipe, r.seed))


def summarize(run: RunCurve, milestones: tuple[int, ...]) -> dict:
    """One run's figures at the milestones (JSON-ready)."""
    out = {"recipe": run.recipe, "seed": run.seed, "pieces": list(run.pieces),
           "last_env_steps": int(run.env_steps[-1]), "last_wall_s": float(run.wall_s[-1]),
           "start_median_f1": float(run.median_f1[0]),
           "best_median_f1": float(run.median_f1.max()),
           "best_env_steps": int(run.env_steps[int(np.argmax(run.median_f1))]),
           "milestones": {}}
    for milestone in milestones:
        i = run.at(milestone)
        out["milestones"][str(milestone)] = None if i is None else {
            "env_steps": int(run.env_steps[i]), "wall_s": float(run.wall_s[i]),
            "median_f1": float(run.median_f1[i]), "f1": [float(v) for v in run.f1[i]],
            "window_median_f1": run.window_median_f1(milestone),
            "window_f1": [float(v) for v in run.window_f1(milestone)]}
    return out


def markdown(runs: list[RunCurve], milestones: tuple[int, ...]) -> str:
    """The ladder table: median F1 at the first evaluation (the start) and per milestone, the
    best median on the way (and at which env steps), per-clip F1 at the last milestone
    reached, env steps and wall time of the last evaluation."""
    head = ["recipe", "seed", "median F1 @ start",
            *[f"median F1 @ {m // 1000}k" for m in milestones], "best median (env steps)",
            "per-clip F1 (last milestone reached)", "env steps", "wall s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in runs:
        best = int(np.argmax(run.median_f1))
        cells, last = [f"{run.median_f1[0]:.3f}"], None
        for milestone in milestones:
            i = run.at(milestone)
            cells.append("-" if i is None else f"{run.median_f1[i]:.3f}")
            last = i if i is not None else last
        cells.append(f"{run.median_f1[best]:.3f} ({run.env_steps[best]:,})")
        clips = "-" if last is None else " / ".join(f"{v:.2f}" for v in run.f1[last])
        lines.append("| " + " | ".join([run.recipe, str(run.seed), *cells, clips,
                                         f"{run.env_steps[-1]:,}",
                                         f"{run.wall_s[-1]:,.0f}"]) + " |")
    if runs:
        lines.append("")
        lines.append("Clips (per-clip order): " + ", ".join(f"`{p}`" for p in runs[0].pieces))
    return "\n".join(lines) + "\n"


def markdown_by_recipe(runs: list[RunCurve], milestones: tuple[int, ...]) -> str:
    """The seeds of each recipe together: the window mean of the median F1 at each milestone,
    averaged over the recipe's seeds (only where every seed reached it), and each clip's window
    mean at the last milestone every seed reached, averaged over the seeds."""
    head = ["recipe", "seeds", *[f"window mean @ {m // 1000}k" for m in milestones],
            "per-clip window mean (last milestone all seeds reached)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for recipe in sorted({r.recipe for r in runs}):
        seeds = [r for r in runs if r.recipe == recipe]
        cells, clips = [], "-"
        for milestone in milestones:
            if any(r.at(milestone) is None for r in seeds):
                cells.append("-")
                continue
            cells.append(f"{np.mean([r.window_median_f1(milestone) for r in seeds]):.3f}")
            per_clip = np.mean([r.window_f1(milestone) for r in seeds], axis=0)
            clips = " / ".join(f"{v:.2f}" for v in per_clip)
        lines.append("| " + " | ".join([recipe, ", ".join(str(r.seed) for r in seeds),
                                         *cells, clips]) + " |")
    return "\n".join(lines) + "\n"


def plot(runs: list[RunCurve], path: str) -> None:
    """Median F1 against env steps per clip and against wall seconds, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.figure_file import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for run in runs:
        label = f"{run.recipe} (seed {run.seed})"
        line, = axes[0].plot(run.env_steps, run.median_f1, lw=2, label=label)
        for clip in range(run.f1.shape[1]):
            axes[0].plot(run.env_steps, run.f1[:, clip], lw=0.6, alpha=0.35,
                         color=line.get_color())
        axes[1].plot(run.wall_s, run.median_f1, lw=2, label=label, color=line.get_color())
    axes[0].set_xlabel("env steps per clip (thin: each clip)")
    axes[1].set_xlabel("training wall seconds")
    axes[0].set_ylabel("median eval F1 over clips")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.set_ylim(0, 1)
    if runs:
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


def write_report(rung_folder: str, milestones: tuple[int, ...]) -> list[str]:
    """Reads every run of the rung and writes ladder.json, ladder.md and ladder.png there.

    Returns:
        The paths written.
    """
    runs = read_rung(rung_folder)
    os.makedirs(rung_folder, exist_ok=True)
    paths = [os.path.join(rung_folder, f"ladder.{ext}") for ext in ("json", "md", "png")]
    texts = (json.dumps([summarize(r, milestones) for r in runs], indent=1),
             f"# Learning ladder: {os.path.basename(rung_folder.rstrip('/'))}\n\n"
             + markdown(runs, milestones)
             + "\n## By recipe, seeds together (window means: from 3/4 of each milestone to it)"
             "\n\n" + markdown_by_recipe(runs, milestones))
    for path, text in zip(paths, texts):
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    plot(runs, paths[2])
    return paths
