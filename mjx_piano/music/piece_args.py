"""Command-line glue: piece names or music files, with the music options for files.

`add_music_options(parser)` adds `--clip K`, `--stretch F`, `--transpose N`, `--hands H` and
`--drop-unplayable`; `piece_names(names, args)` turns what the user typed into full piece names
(`file_piece`): a file becomes its clips (or clip K), with the options and the file's sha256 in
the name, so that a run's config names one version of the file. A file name that carries its own
`?OPTIONS` (a full name copied from a run) keeps them, and its sha256 is checked. Repertoire and
etude names pass through unchanged (the options are refused with them: they apply to files).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from mjx_piano.music.clip_window import ClipWindow, parse_window
from mjx_piano.music.events import MusicError
from mjx_piano.music.file_piece import (FileOptions, check_digest, file_piece_names,
                                        parse_file_piece)
from mjx_piano.music.hands import HANDS_CHOICES, parse_hands
from mjx_piano.music.pianoroll import CONVENTIONS, DEFAULT_CONVENTION


def add_music_options(parser: argparse.ArgumentParser) -> None:
    """Adds the options that say how a music file given as a piece is read."""
    group = parser.add_argument_group(
        "music files", "a piece may be a MIDI / MusicXML / any file music21 reads; a file "
                       "longer than 550 control steps (27.5 s) is cut into clips #0, #1, ...")
    group.add_argument("--clip", type=int, default=None, metavar="K",
                       help="only clip K of each file (default: every clip; play and perform "
                            "take clip 0)")
    group.add_argument("--stretch", type=float, default=1.0, metavar="F",
                       help="tempo stretch of files (2 = half speed; default 1)")
    group.add_argument("--transpose", type=int, default=0, metavar="N",
                       help="transpose files by N semitones")
    group.add_argument("--hands", default="auto", metavar="H",
                       help=f"who plays a file: {HANDS_CHOICES} (default auto: the hands the "
                            "file names, else split at middle C)")
    group.add_argument("--convention", choices=CONVENTIONS, default=DEFAULT_CONVENTION,
                       help="how a file's times become control steps: robopianist (RoboPianist's "
                            "rule, the default) or nearest (this project's earlier rule)")
    group.add_argument("--drop-unplayable", action="store_true",
                       help="drop the notes no pair of hands can play (else such a file is "
                            "refused with their times and notes)")


def file_options(args: argparse.Namespace) -> FileOptions:
    """The `FileOptions` of parsed arguments.

    Raises:
        MusicError: a bad `--hands` or `--stretch`.
    """
    try:
        hands = parse_hands(args.hands)
    except ValueError as error:
        raise MusicError(f"--hands: {error}") from None
    if not args.stretch > 0:
        raise MusicError(f"--stretch must be a positive number, got {args.stretch}")
    return FileOptions(args.stretch, args.transpose, hands, args.drop_unplayable,
                       args.convention)


def piece_names(names: Sequence[str], args: argparse.Namespace, single: bool = False) -> list[str]:
    """Full piece names for what the user typed.

    Args:
        names: piece names and / or music file paths (a file may carry `#K`, `?OPTIONS` and
            a window `@START:STOP`, see `file_piece`).
        args: parsed arguments with the `add_music_options` fields.
        single: one piece wanted (play, perform): a file of several clips gives clip 0 (or
            `--clip`), with a line on stderr saying so.

    Returns:
        One name per repertoire name; one per clip for a file.

    Raises:
        MusicError: a file that cannot be read or played, a bad option, or a music option
            given with no file to apply it to.
    """
    options = file_options(args)
    result: list[str] = []
    files = 0
    for name in names:
        window = _window(name)
        piece = parse_file_piece(window.base)
        if piece is None:
            result.append(name)
            continue
        files += 1
        check_digest(piece)  # a full name from a run's config names one version of the file
        suffix = name[len(window.base):]
        clip = piece.clip if piece.clip is not None else args.clip
        chosen = options if piece.options == FileOptions() else piece.options
        if single and clip is None:
            clip = 0
        expanded = file_piece_names(piece.path, chosen, clip)
        if single and args.clip is None and piece.clip is None:
            count = len(file_piece_names(piece.path, chosen, report=False))
            if count > 1:
                print(f"{piece.path}: {count} clips of <= 550 control steps; playing clip 0 "
                      "(choose another with --clip K)", file=sys.stderr)
        result.extend(n + suffix for n in expanded)
    if not files and _has_file_options(args, options):
        raise MusicError("--clip, --stretch, --transpose, --hands, --convention and "
                         "--drop-unplayable apply to music files; no piece named here is a file")
    return result


def _window(name: str) -> ClipWindow:
    try:
        return parse_window(name)
    except ValueError as error:
        if parse_file_piece(name) is not None:  # a file whose path has an '@'
            return ClipWindow(name)
        raise MusicError(str(error)) from None


def _has_file_options(args: argparse.Namespace, options: FileOptions) -> bool:
    return args.clip is not None or options != FileOptions()


def one_piece_name(name: str | None, args: argparse.Namespace) -> str | None:
    """`piece_names([name], args, single=True)[0]`; None (the default piece) stays None.

    Raises:
        MusicError: see `piece_names`.
    """
    names = piece_names([] if name is None else [name], args, single=True)
    return names[0] if names else None


def error_text(error: Exception) -> str:
    """The message of a piece error for stderr (a KeyError's without its quotes)."""
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
