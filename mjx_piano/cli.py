"""The `mjx-piano` command line (also `python3 -m mjx_piano`).

Each command group lives next to the code it drives and exposes
`register(subparsers) -> None`; this module only assembles them, importing each lazily so
that `mjx-piano --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import types

# Modules that define a `register(subparsers)` function, in help order.
_COMMAND_MODULES = (
    "mjx_piano.commands",
    "train.play_cli",
    "train.perform_cli",
    "mjx_piano.music.cli",
    "train.cli",
    "train.generalist.cli",
    "train.dataset.cli",
    "train.pipeline",
    "bench.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """Builds the full argument parser from every command module that is present."""
    parser = argparse.ArgumentParser(prog="mjx-piano", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        module.register(subparsers)
    _configure(parser)
    return parser


def _configure(parser: argparse.ArgumentParser) -> None:
    """In every (sub)command: flags are taken whole (`--env` is not `--envs-per-piece`), and a
    bad argument is reported in two lines (the error, then where help is), not under the whole
    usage text."""
    parser.allow_abbrev = False
    parser.error = types.MethodType(_short_error, parser)  # type: ignore[method-assign]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                _configure(sub)


def _short_error(parser: argparse.ArgumentParser, message: str) -> None:
    """argparse's `error`, shorter: prints `PROG: error: MESSAGE` and a pointer to --help on
    stderr, exits 2."""
    parser.exit(2, f"{parser.prog}: error: {message}\n(see `{parser.prog} --help`)\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point: parses `argv` and runs the chosen command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    from mjx_piano.compile_cache import enable_compile_cache

    enable_compile_cache()
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
