"""Metrics out of a run: named scalars, CSV, TensorBoard, a summary table and a learning curve.

Names are namespaced: `train/<episode metric>` (episodes finished during rollouts, stochastic
policy), `reward/<term>` (per-step means of the env's reward terms), `loss/<name>`,
`eval/<episode metric>` and `eval/reward/<term>` (deterministic policy, one episode per piece),
`train/sps` (env steps per second, all agents). CSV files are long: one row per (iteration,
agent).
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any, Sequence

import jax
import numpy as np

from train.ppo import EvalMetrics, IterationMetrics

SUMMARY_FIELDS = ("eval/f1", "eval/precision", "eval/recall", "eval/sustain_f1")


def named_scalars(tree: Any, prefix: str) -> dict[str, np.ndarray]:
    """Flattens a dataclass pytree of [agents] arrays into {'prefix/field/sub': values}.

    A field named `reward_terms` is written `reward`, so terms read as `.../reward/<name>`.
    """
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        parts = [str(getattr(k, "name", getattr(k, "key", k))) for k in path]
        parts = ["reward" if p == "reward_terms" else p for p in parts]
        out["/".join([prefix, *parts])] = np.asarray(leaf, np.float64)
    return out


def iteration_scalars(metrics: IterationMetrics) -> dict[str, np.ndarray]:
    """All scalars of one iteration's metrics, [agents] each."""
    rollout = metrics.rollout
    out = named_scalars(rollout.last_episode, "train")
    out["train/reward"] = np.asarray(rollout.reward, np.float64)
    out["train/episodes"] = np.asarray(rollout.episodes, np.float64)
    out.update(named_scalars(rollout.reward_terms, "reward"))
    out.update(named_scalars(metrics.loss, "loss"))
    return out


def eval_scalars(metrics: EvalMetrics) -> dict[str, np.ndarray]:
    """All scalars of one evaluation, [agents] each."""
    out = named_scalars(metrics.last_episode, "eval")
    out["eval/completed"] = np.asarray(metrics.completed, np.float64)
    return out


class MetricsLog:
    """Writes `train.csv`, `eval.csv` and TensorBoard events under `out`; keeps eval history.

    Args:
        out: the run's folder.
        agent_labels: one label per agent (its pieces).
        resume_from: on resume, the iteration of the checkpoint; CSV rows after it are dropped.
        per_agent_tensorboard: also write `agent<i>/...` scalars (else only agent means).
    """

    def __init__(self, out: str, agent_labels: Sequence[str], resume_from: int | None,
                 per_agent_tensorboard: bool):
        from tensorboardX import SummaryWriter  # heavy import, only when a run starts

        os.makedirs(out, exist_ok=True)
        self.out = out
        self.labels = list(agent_labels)
        self.per_agent = per_agent_tensorboard
        self.paths = {kind: os.path.join(out, f"{kind}.csv") for kind in ("train", "eval")}
        self.rows: dict[str, list[dict[str, Any]]] = {}
        for kind, path in self.paths.items():
            rows = _read_csv(path) if resume_from is not None else []
            self.rows[kind] = [r for r in rows if int(float(r["iteration"])) <= (resume_from or 0)]
            _write_csv(path, self.rows[kind])
        self.writer = SummaryWriter(os.path.join(out, "tensorboard"))

    def log(self, kind: str, iteration: int, env_steps: int, values: dict[str, np.ndarray],
            extra: dict[str, float] | None = None) -> None:
        """Appends one row per agent to `<kind>.csv` and the agent means to TensorBoard.

        Args:
            kind: 'train' or 'eval'.
            iteration: iterations done.
            env_steps: env steps per agent so far (the TensorBoard step).
            values: {name: [agents]}.
            extra: run-wide scalars (e.g. 'train/sps'), same for every row.
        """
        extra = extra or {}
        new_rows = []
        for agent, label in enumerate(self.labels):
            row = {"iteration": iteration, "env_steps": env_steps, "agent": agent,
                   "pieces": label, **extra}
            row.update({name: float(v[agent]) for name, v in values.items()})
            new_rows.append(row)
        self.rows[kind].extend(new_rows)
        _append_csv(self.paths[kind], new_rows)
        for name, v in values.items():
            finite = np.isfinite(v)  # NaN = no episode ended in this rollout
            if finite.any():
                self.writer.add_scalar(name, float(np.mean(v[finite])), env_steps)
            if self.per_agent:
                for agent in np.nonzero(finite)[0]:
                    self.writer.add_scalar(f"agent{agent}/{name}", float(v[agent]), env_steps)
        for name, v in extra.items():
            self.writer.add_scalar(name, float(v), env_steps)

    def close(self) -> None:
        """Flushes TensorBoard."""
        self.writer.close()

    def last_wall_s(self) -> float:
        """The newest `wall_s` logged (0 if none): where a resumed run's clock goes on."""
        walls = [float(r["wall_s"]) for kind in ("train", "eval") for r in self.rows[kind]
                 if r.get("wall_s") not in (None, "")]
        return max(walls, default=0.0)

    def summary(self, target_f1: float = 0.8) -> str:
        """A table of each agent's last and best evaluation and when its F1 first reached
        `target_f1` (`time_to_target_s`, wall-clock seconds; '-' if never); also written to
        summary.txt/json."""
        first: dict[int, dict[str, Any]] = {}
        last: dict[int, dict[str, Any]] = {}
        best: dict[int, float] = {}
        reached: dict[int, str] = {}
        for row in self.rows["eval"]:
            agent = int(float(row["agent"]))
            first.setdefault(agent, row)
            last[agent] = row
            f1 = float(row.get("eval/f1", 0.0))
            best[agent] = max(best.get(agent, 0.0), f1)
            if f1 >= target_f1 and agent not in reached and row.get("wall_s") not in (None, ""):
                reached[agent] = f"{float(row['wall_s']):.1f}"
        header = ["agent", "pieces", "iteration", "start_f1",
                  *[f.split("/")[1] for f in SUMMARY_FIELDS], "best_f1",
                  f"time_to_f1_{target_f1:g}_s"]
        lines = []
        for agent, row in sorted(last.items()):
            lines.append([str(agent), str(row["pieces"]), str(int(float(row["iteration"]))),
                          f"{float(first[agent].get('eval/f1', float('nan'))):.3f}",
                          *[f"{float(row.get(f, float('nan'))):.3f}" for f in SUMMARY_FIELDS],
                          f"{best[agent]:.3f}", reached.get(agent, "-")])
        widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
                  for i, h in enumerate(header)]
        table = "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths))
                          for line in [header, *lines])
        with open(os.path.join(self.out, "summary.txt"), "w") as f:
            f.write(table + "\n")
        with open(os.path.join(self.out, "summary.json"), "w") as f:
            json.dump([dict(zip(header, line)) for line in lines], f, indent=1)
        return table

    def plot(self) -> str:
        """Writes learning_curve.png (eval F1 and train reward vs env steps); returns its path."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax_f1, ax_reward) = plt.subplots(1, 2, figsize=(11, 4))
        for ax, kind, name in ((ax_f1, "eval", "eval/f1"), (ax_reward, "train", "train/reward")):
            rows = [r for r in self.rows[kind] if name in r]
            agents = sorted({int(float(r["agent"])) for r in rows})
            for agent in agents:
                mine = [r for r in rows if int(float(r["agent"])) == agent]
                x = [float(r["env_steps"]) for r in mine]
                ax.plot(x, [float(r[name]) for r in mine], lw=1, alpha=0.6,
                        label=self.labels[agent] if len(agents) <= 8 else None)
            if len(agents) > 1:
                steps = sorted({float(r["env_steps"]) for r in rows})
                mean = [_finite_mean([float(r[name]) for r in rows
                                      if float(r["env_steps"]) == x]) for x in steps]
                ax.plot(steps, mean, color="black", lw=2.5, label="mean")
            ax.set_xlabel("env steps per agent")
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
            if len(agents) > 0:
                ax.legend(fontsize=7)
        ax_f1.set_ylim(0, 1)
        fig.suptitle(f"{len(self.labels)} specialist(s): {os.path.basename(self.out)}")
        fig.tight_layout()
        path = os.path.join(self.out, "learning_curve.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _read_csv(path: str) -> list[dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _write_csv(path: str, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        if rows:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def _append_csv(path: str, rows: list[dict[str, Any]]) -> None:
    fresh = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), extrasaction="ignore")
        if fresh:
            writer.writeheader()
        writer.writerows(rows)
