"""The GPU suite's report: every result is written the moment it is known.

A device command may be killed at its limit at any moment, so `SuiteLog.add` appends the
record to `results.jsonl` (one JSON object a line, flushed and fsynced) and then rewrites
`report.md` and `report.png` atomically (a temporary file, then `os.replace`). Whatever the
moment of the kill, the folder holds valid files with everything measured before it; a
half-written last line of `results.jsonl` is ignored when it is read back.

A record is a dict with at least
    section: one of `SECTIONS`; id: unique within the report (the suite's resume key);
    status: 'ok', 'overflow' (MJX-Warp dropped contacts or rows: the figure is invalid),
        'diverged' (some envs diverged under random actions), 'no parity' (a lever),
        'error' (the measurement raised; `note` says what), 'skipped' (not measurable in this
        run, e.g. warp-lang missing; retried on resume) or 'cut' (the budget ran out before
        it; retried on resume);
    note: free text.
The markdown is a section that drops into `bench/RESULTS.md` as it is.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable

SECTIONS = ("device", "env", "specialist", "transformer", "levers")
TITLES = {
    "device": "1. Device, versions, MuJoCo C on one env",
    "env": "2. Full task step (10 substeps, rewards, exact OT fingering, observation, metrics) "
           "and physics alone",
    "specialist": "3. A specialist for a fixed slice of the budget",
    "transformer": "4. Flow transformer: training windows/s and the generalist rollout",
    "levers": "5. Fast-path levers at the best batch, each with its parity check",
}
# Statuses that a resumed suite measures again.
RETRIED = ("skipped", "cut")
RESULTS_FILE, REPORT_FILE, PLOT_FILE = "results.jsonl", "report.md", "report.png"


def read_records(path: str) -> list[dict[str, Any]]:
    """The records of a `results.jsonl`, in order; a truncated last line is dropped.

    Returns:
        [] when the file does not exist.
    """
    if not os.path.exists(path):
        return []
    records = []
    with open(path) as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break  # only a kill mid-write leaves a bad line, and it is the last one
    return records


def latest(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{id: the newest record of that id} (a resumed suite re-measures cut or skipped rows)."""
    newest: dict[str, dict[str, Any]] = {}
    for record in records:
        newest.pop(record["id"], None)  # keep the order in which results became final
        newest[record["id"]] = record
    return newest


class SuiteLog:
    """The report folder: appends records and keeps `report.md` / `report.png` current.

    Args:
        out: the folder (created). Records already there are kept (resume); `final(id)`
            tells whether an id needs no new measurement.
        header: the run's description (device, versions, command), shown atop the markdown.
        plot: also draw `report.png` (needs matplotlib).
    """

    def __init__(self, out: str, header: dict[str, Any], plot: bool = True):
        os.makedirs(out, exist_ok=True)
        self.out = out
        self.header = header
        self.plot = plot
        self.path = os.path.join(out, RESULTS_FILE)
        kept = [r for r in read_records(self.path) if r.get("status") not in RETRIED]
        _atomic_write(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self.records = kept

    def final(self, record_id: str) -> dict[str, Any] | None:
        """The stored record of `record_id` if it needs no new measurement, else None."""
        found = latest(self.records).get(record_id)
        return found if found is not None and found.get("status") not in RETRIED else None

    def rows(self, section: str) -> list[dict[str, Any]]:
        """The newest record of each id in `section`, in order."""
        return [r for r in latest(self.records).values() if r["section"] == section]

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        """Appends one record (durably), then refreshes the markdown and the plot."""
        if record.get("section") not in SECTIONS or "id" not in record or "status" not in record:
            raise ValueError(f"a record needs a section of {SECTIONS}, an id and a status: "
                             f"{record}")
        with open(self.path, "a") as f:
            f.write(json.dumps(record, default=float) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.records.append(json.loads(json.dumps(record, default=float)))
        self.refresh()
        return record

    def refresh(self) -> None:
        """Rewrites report.md (and report.png) from the records."""
        _atomic_write(os.path.join(self.out, REPORT_FILE), markdown(self.header, self.records))
        if self.plot:
            plot_report(self.records, os.path.join(self.out, PLOT_FILE))


def _atomic_write(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _num(value: Any, digits: int = 0) -> str:
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}"
    return str(value)


def _status(record: dict[str, Any]) -> str:
    note = record.get("note") or ""
    return record["status"] + (f": {note}" if note else "")


def markdown(header: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """The report as markdown: a `## GPU ...` heading, then one subsection per section."""
    rows = list(latest(records).values())
    lines = [f"## {header.get('title', 'GPU suite')}", "",
             f"Command: `{header.get('command', '')}`", "",
             f"Device: {header.get('device', '?')}; {header.get('versions', '')}; "
             f"budget {header.get('budget_s', '?')} s; started {header.get('date', '?')}."]
    for section in SECTIONS:
        mine = [r for r in rows if r["section"] == section]
        lines += ["", f"### {TITLES[section]}", ""]
        if not mine:
            lines.append("(not reached)")
            continue
        lines += _SECTION_TABLES[section](mine)
    return "\n".join(lines) + "\n"


def _device_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| what | value | status |", "|---|---|---|"]
    for r in rows:
        if r["id"] == "device/mujoco-c":
            value = (f"{_num(r.get('env_steps_per_s'))} env steps/s, "
                     f"{_num(r.get('physics_steps_per_s'))} physics steps/s ({r.get('scene', '')})")
            lines.append(f"| MuJoCo C, 1 env, 1 core | {value} | {_status(r)} |")
        else:
            lines.append(f"| {r.get('what', r['id'])} | {r.get('value', '')} | {_status(r)} |")
    return lines


def _env_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| impl | lever | mode | envs | compile (s) | env steps/s | physics steps/s | "
             "diverged (random actions) | status |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        diverged = r.get("diverged_random")
        lines.append(f"| {r.get('impl', '-')} | {r.get('lever', '-')} | {r.get('mode', '-')} | "
                     f"{_num(r.get('batch'))} | {_num(r.get('compile_s'), 1)} | "
                     f"{_num(r.get('env_steps_per_s'))} | {_num(r.get('physics_steps_per_s'))} | "
                     f"{'-' if diverged is None or diverged != diverged else f'{diverged:.0%}'} | "
                     f"{_status(r)} |")
    return lines


def _specialist_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| piece | learner | impl | envs | time limit (s) | compile (s) | wall (s) | "
             "env steps | env steps/s | start F1 | best F1 | time_to_f1_0.8_s | status |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    curves = []
    for r in rows:
        lines.append(f"| {r.get('piece', '-')} | {r.get('algo', 'ppo')} | {r.get('impl', '-')} | "
                     f"{_num(r.get('envs'))} | "
                     f"{_num(r.get('time_limit_s'))} | {_num(r.get('compile_s'), 1)} | "
                     f"{_num(r.get('wall_s'), 1)} | {_num(r.get('env_steps'))} | "
                     f"{_num(r.get('env_steps_per_s'))} | {_num(r.get('start_f1'), 3)} | "
                     f"{_num(r.get('best_f1'), 3)} | {_num(r.get('time_to_f1_0.8_s'), 1)} | "
                     f"{_status(r)} |")
        if r.get("curve"):
            curves += ["", f"Evaluation F1 of {r.get('piece')} ({r.get('algo', 'ppo')}) against "
                           "wall seconds and env steps:",
                       "", "| wall (s) | env steps | eval F1 |", "|---|---|---|"]
            curves += [f"| {_num(p['wall_s'], 1)} | {_num(p['env_steps'])} | {p['f1']:.3f} |"
                       for p in r["curve"]]
    return lines + curves


def _transformer_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| size | parameters | batch | compile (s) | training windows/s | rollout env | "
             "envs | compile (s) | rollout env steps/s | status |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.get('size', '-')} | {_num(r.get('parameters'))} | {_num(r.get('batch'))} | "
              f"{_num(r.get('train_compile_s'), 1)} | {_num(r.get('windows_per_s'))} | "
              f"{r.get('env', '-')} | {_num(r.get('envs'))} | "
              f"{_num(r.get('rollout_compile_s'), 1)} | {_num(r.get('env_steps_per_s'))} | "
              f"{_status(r)} |" for r in rows]
    return lines


def _lever_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| lever | impl | envs | compile (s) | env steps/s | speed-up | scripted F1 | "
             "same keys | hands vs reference | hands vs MuJoCo C | diverged (random) | status |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "speedup" not in r:
            lines.append(f"| {r.get('name', r['id'])} | {r.get('impl', '-')} | "
                         f"{_num(r.get('batch'))} | - | - | - | - | - | - | - | - | {_status(r)} |")
            continue
        diverged = r.get("diverged_random")
        lines.append(
            f"| {r['name']} | {r['impl']} | {_num(r['batch'])} | {_num(r['compile_s'], 1)} | "
            f"{_num(r['env_steps_per_s'])} | {r['speedup']:.2f}x | {r['scripted_f1']:.3f} | "
            f"{'yes' if r['same_keys'] else 'no'} | {r['hand_agreement']:.3f} | "
            f"{r['hand_agreement_c']:.3f} ({r['hand_presses']} / {r['hand_presses_c']} presses) | "
            f"{'-' if diverged is None or diverged != diverged else f'{diverged:.0%}'} | "
            f"{_status(r)} |")
    return lines


_SECTION_TABLES = {"device": _device_table, "env": _env_table, "specialist": _specialist_table,
                   "transformer": _transformer_table, "levers": _lever_table}


def plot_report(records: list[dict[str, Any]], path: str) -> None:
    """report.png: env steps/s against envs (per impl and mode, MuJoCo C as a line) and the
    specialist's evaluation F1 against wall seconds. Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.figure_file import save_figure

    rows = list(latest(records).values())
    fig, (ax_env, ax_f1) = plt.subplots(1, 2, figsize=(11, 4))
    env_rows = [r for r in rows if r["section"] == "env" and r.get("env_steps_per_s")
                and r["status"] != "overflow"]
    for key in sorted({(r["impl"], r["lever"], r["mode"]) for r in env_rows}):
        mine = sorted((r for r in env_rows if (r["impl"], r["lever"], r["mode"]) == key),
                      key=lambda r: r["batch"])
        ax_env.plot([r["batch"] for r in mine], [r["env_steps_per_s"] for r in mine], "o-",
                    label=f"{key[0]} {key[1]} {key[2]}")
    for r in rows:
        if r["id"] == "device/mujoco-c" and r.get("env_steps_per_s"):
            ax_env.axhline(r["env_steps_per_s"], color="grey", ls="--", label="MuJoCo C, 1 env")
    ax_env.set(xscale="log", yscale="log", xlabel="parallel envs", ylabel="env steps / s",
               title="Env throughput")
    ax_env.grid(True, which="both", alpha=0.3)
    for r in rows:
        if r["section"] == "specialist" and r.get("curve"):
            ax_f1.plot([p["wall_s"] for p in r["curve"]], [p["f1"] for p in r["curve"]], "o-",
                       label=f"{r.get('piece')} ({r.get('algo', 'ppo')}, {r.get('impl')})")
    ax_f1.axhline(0.8, color="grey", ls=":", label="F1 0.8")
    ax_f1.set(ylim=(0, 1), xlabel="wall seconds (compile included)", ylabel="eval F1",
              title="Specialist")
    ax_f1.grid(alpha=0.3)
    for ax in (ax_env, ax_f1):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
