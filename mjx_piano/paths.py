"""Checks of the folders a command is given, made before anything compiles or writes.

Every command that writes checks its output folder with `check_output_folder`, and every
command that reads a run checks it with `check_run_folder`: a bad path is refused with one
line that names the flag and the path (the command exits 2), and the check itself creates
nothing. A run folder says what it is by what it holds: a dataset store its `manifest.json`,
a training run the configuration beside its newest checkpoint (`checkpoints/<step>/config`:
sections `env` for specialists, `model` for a generalist).
"""

from __future__ import annotations

import json
import os

KINDS = ("specialists", "generalist", "dataset")


def output_folder_problem(path: str) -> str | None:
    """Why `path` cannot be (or become) a writable folder; None when it can."""
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        return f"{path} is a file, not a folder"
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        return f"{probe} is a file, so {path} cannot be created"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def check_output_folder(path: str, flag: str = "--out") -> None:
    """Raises ValueError ('--out: /x is a file, not a folder') if `path` cannot be written."""
    problem = output_folder_problem(path)
    if problem:
        raise ValueError(f"{flag}: {problem}")


def run_kind(path: str) -> str | None:
    """'specialists', 'generalist', 'dataset', 'ilc' (`mjx-piano train ilc`), or None for a
    folder that holds none of them."""
    if os.path.isfile(os.path.join(path, "manifest.json")):
        return "dataset"
    if os.path.isfile(os.path.join(path, "ilc_run.json")):
        return "ilc"
    checkpoints = os.path.join(path, "checkpoints")
    steps = sorted((int(n) for n in _listdir(checkpoints) if n.isdigit()), reverse=True)
    for step in steps:
        try:
            with open(os.path.join(checkpoints, str(step), "config", "metadata")) as f:
                sections = json.load(f)
        except (OSError, ValueError):
            continue
        if "model" in sections:
            return "generalist"
        if "env" in sections:
            return "specialists"
    return None


def check_run_folder(path: str, kind: str, flag: str) -> None:
    """Raises ValueError naming `flag` and `path` unless `path` is a folder holding a `kind`
    run (a run's `checkpoints/<step>` folder is accepted for its run)."""
    folder = os.path.abspath(path.rstrip("/") or "/")
    if os.path.basename(folder).isdigit() and \
            os.path.basename(os.path.dirname(folder)) == "checkpoints":
        if not os.path.isdir(folder):
            raise ValueError(f"{flag}: no checkpoint {folder}")
        folder = os.path.dirname(os.path.dirname(folder))
    elif os.path.basename(folder) == "checkpoints":
        folder = os.path.dirname(folder)
    if not os.path.exists(folder):
        raise ValueError(f"{flag}: {folder} does not exist")
    if not os.path.isdir(folder):
        raise ValueError(f"{flag}: {folder} is a file, not a run folder")
    found = run_kind(folder)
    if found is None:
        raise ValueError(f"{flag}: {folder} holds no {kind} run (no checkpoint with its "
                         "configuration)" if kind != "dataset" else
                         f"{flag}: {folder} holds no dataset store (no manifest.json)")
    if found != kind:
        raise ValueError(f"{flag}: {folder} holds a {found} run; this needs a {kind} run")


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
