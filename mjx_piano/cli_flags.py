"""Command-line flags that many commands share, declared once: `--out`, `--key-dynamics`
(alias `--keys`) and `--impl`, with their choices from `mjx_piano.defaults` and the output
path checked before anything runs (argparse reports a bad one on one line, exit code 2).
"""

from __future__ import annotations

import argparse
import os
from typing import Callable

from mjx_piano.defaults import IMPLS, KEY_DYNAMICS
from mjx_piano.paths import output_folder_problem


def add_key_dynamics(parser: argparse.ArgumentParser, *, default: str | None = KEY_DYNAMICS[0],
                     many: bool = False, help: str = "") -> None:
    """`--key-dynamics {mjx,kernel}` (also `--keys`), into `args.key_dynamics`: who moves the
    keys, MJX hinge joints or the piano-key kernel; `many`: one or more, as a list."""
    described = help or ("key dynamics: MJX hinge joints ('mjx') or the piano-key kernel "
                         "('kernel', kernels/piano_keys.py, the fast path)")
    shown = f" (default {' '.join(default) if isinstance(default, list) else default})"
    parser.add_argument("--key-dynamics", "--keys", dest="key_dynamics", choices=KEY_DYNAMICS,
                        nargs="+" if many else None, default=default,
                        help=described + (shown if default else ""))


def add_impl(parser: argparse.ArgumentParser, *, default: str | list[str] | None = IMPLS[0],
             many: bool = False, help: str = "") -> None:
    """`--impl {jax,warp}` into `args.impl`: the MJX backend; `many`: one or more, as a list."""
    described = help or ("MJX backend: 'jax' (any device) or 'warp' (MJX-Warp, NVIDIA GPUs; "
                         "slowly on CPU)")
    shown = f" (default {' '.join(default) if isinstance(default, list) else default})"
    parser.add_argument("--impl", choices=IMPLS, nargs="+" if many else None, default=default,
                        help=described + (shown if default else ""))


def add_out(parser: argparse.ArgumentParser, *, kind: str = "folder",
            default: str | None = None, required: bool = False, help: str = "") -> None:
    """`--out PATH` into `args.out`, checked at parsing: a `kind` 'folder' must not be a file,
    a 'file' must not be a folder, and either must be creatable where it does not exist."""
    checks: dict[str, Callable[[str], str]] = {"folder": output_folder, "file": output_file}
    if kind not in checks:
        raise ValueError(f"kind must be 'folder' or 'file', got {kind!r}")
    shown = f" (default {default})" if default else ""
    parser.add_argument("--out", type=checks[kind], default=default, required=required,
                        metavar="FOLDER" if kind == "folder" else "FILE",
                        help=(help or f"output {kind}") + shown)


def output_folder(path: str) -> str:
    """`path` if it is a folder or can be made one (an argparse type; creates nothing).

    Raises:
        argparse.ArgumentTypeError: it is a file, or its nearest existing parent is not a
            writable folder (`mjx_piano.paths.output_folder_problem` says which).
    """
    problem = output_folder_problem(path)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return path


def output_file(path: str) -> str:
    """`path` if it is a file or can be written as one (an argparse type; creates nothing).

    Raises:
        argparse.ArgumentTypeError: it is a folder, or its folder cannot be made or written.
    """
    if os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{os.path.abspath(path)} is a folder, not a file")
    problem = output_folder_problem(os.path.dirname(os.path.abspath(path)))
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return path
