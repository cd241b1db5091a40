"""A music file as a piece: `PATH[#K][?OPTIONS]` is clip K of the file at PATH.

Every command that takes a piece name takes a file (`load_clip` resolves it here):

    song.mid                              the file's only clip (a longer file: name one, below)
    song.mid#2                            its third clip of <= 550 control steps (`split_clips`)
    song.mid#0?stretch=1.5&transpose=-2   read with options (defaults are left out)
    song.mid#0?sha256=1f3a...             checked: refused if the file's sha256 no longer starts so
    song.mid#0@0:100                      a window of it (`clip_window`)

Options: `stretch=F` (tempo: 2 = half speed), `transpose=N` (semitones), `hands=auto|right|left|
split-at-NOTE` (`hands.parse_hands`), `drop-unplayable` (drop the notes no pair of hands can
play; without it such a file is refused with the times and notes, `UnplayableError`),
`convention=robopianist|nearest` (how times become steps; RoboPianist's rule by default). The
commands write the full name (`file_piece_names`): every clip index, the options and the first
16 hex digits of the file's sha256, so a run's config, a resume and a dataset name one version
of one file. Relative paths stay relative (a run folder moves with its music).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sys

from mjx_piano.music.events import MusicError, MusicFileError
from mjx_piano.music.hands import HandRule, HandsOption, parse_hands, playability_problems
from mjx_piano.music.pianoroll import CONVENTIONS, DEFAULT_CONVENTION
from mjx_piano.music.roll import PianoRoll

DIGEST_CHARS = 16  # hex digits of the sha256 kept in a name: 64 bits
_CLIP = re.compile(r"^(.*)#(\d+)$")


class UnplayableError(MusicError):
    """A file has notes one pair of hands cannot play (the message gives times and notes)."""


@dataclasses.dataclass(frozen=True)
class FileOptions:
    """How a file is read into clips.

    Attributes:
        stretch: tempo stretch (times multiplied by it).
        transpose: semitones.
        hands: who plays (`HandsOption`).
        drop_unplayable: drop notes no pair of hands can play (else refuse the file).
        convention: how times become control steps: 'robopianist' (RoboPianist's rule, the
            default) or 'nearest' (`pianoroll.CONVENTIONS`).
    """

    stretch: float = 1.0
    transpose: int = 0
    hands: HandsOption = HandsOption()
    drop_unplayable: bool = False
    convention: str = DEFAULT_CONVENTION


@dataclasses.dataclass(frozen=True)
class FilePiece:
    """A parsed file piece name.

    Attributes:
        path: the file, as written.
        clip: clip index; None = the file's only clip.
        options: how it is read.
        sha256: hex prefix the file's sha256 must start with; '' = not checked.
    """

    path: str
    clip: int | None = None
    options: FileOptions = FileOptions()
    sha256: str = ""

    @property
    def name(self) -> str:
        """The name that parses back to this piece."""
        text = self.path if self.clip is None else f"{self.path}#{self.clip}"
        options = _option_words(self.options)
        if self.sha256:
            options.append(f"sha256={self.sha256}")
        return f"{text}?{'&'.join(options)}" if options else text


def _option_words(options: FileOptions) -> list[str]:
    words = []
    if options.stretch != 1.0:
        words.append(f"stretch={options.stretch:g}")
    if options.transpose:
        words.append(f"transpose={options.transpose}")
    if options.hands != HandsOption():
        words.append(f"hands={options.hands.text}")
    if options.drop_unplayable:
        words.append("drop-unplayable")
    if options.convention != DEFAULT_CONVENTION:
        words.append(f"convention={options.convention}")
    return words


def _is_music_path(path: str) -> bool:
    from mjx_piano.music.readers import MIDI_SUFFIXES, SCORE_SUFFIXES

    return (os.path.splitext(path)[1].lower() in MIDI_SUFFIXES + SCORE_SUFFIXES
            or os.path.exists(path))


def parse_file_piece(name: str) -> FilePiece | None:
    """The file piece `name` names, or None when it names no file (a clip of the repertoire).

    A name is a file when its path part has a music file's extension or exists on disk.

    Raises:
        MusicError: a file name with an unknown or malformed option.
    """
    if os.path.isfile(name):
        return FilePiece(name)
    text, _, query = name.partition("?")
    match = _CLIP.match(text)
    path, clip = (match.group(1), int(match.group(2))) if match else (text, None)
    if not path or not _is_music_path(path):
        return None
    options, sha256 = _parse_options(query, name)
    return FilePiece(path, clip, options, sha256)


def is_file_piece(name: str) -> bool:
    """Whether `name` (perhaps with a window `@START:STOP`) names a music file."""
    from mjx_piano.music.clip_window import parse_window

    try:
        base = parse_window(name).base
    except ValueError:  # an '@' in the path, no window
        base = name
    try:
        return parse_file_piece(base) is not None or parse_file_piece(name) is not None
    except MusicError:
        return True  # a file name with a bad option: reading it says what is wrong


def _parse_options(query: str, name: str) -> tuple[FileOptions, str]:
    values: dict = {}
    sha256 = ""
    for word in filter(None, query.split("&")):
        key, _, value = word.partition("=")
        try:
            if key == "stretch":
                values["stretch"] = float(value)
            elif key == "transpose":
                values["transpose"] = int(value)
            elif key == "hands":
                values["hands"] = parse_hands(value)
            elif key == "drop-unplayable" and not value:
                values["drop_unplayable"] = True
            elif key == "convention" and value in CONVENTIONS:
                values["convention"] = value
            elif key == "sha256" and re.fullmatch(r"[0-9a-f]{1,64}", value):
                sha256 = value
            else:
                raise ValueError("unknown option")
        except ValueError as error:
            raise MusicError(f"piece {name!r}: bad option {word!r} ({error}); options are "
                             "stretch=F, transpose=N, hands=auto|right|left|split-at-NOTE, "
                             "drop-unplayable, convention=robopianist|nearest, sha256=HEX"
                             ) from None
    return FileOptions(**values), sha256


def file_sha256(path: str) -> str:
    """The sha256 of the file's bytes, 64 hex digits.

    Raises:
        MusicFileError: missing, a directory, or unreadable.
    """
    _check_readable(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_readable(path: str) -> None:
    if os.path.isdir(path):
        raise MusicFileError(path, "is a directory; give a music file (a folder of them is a "
                                   "repertoire: `mjx-piano repertoire build --from DIR`)")
    if not os.path.exists(path):
        raise MusicFileError(path, "no such file")
    if not os.access(path, os.R_OK):
        raise MusicFileError(path, "cannot be read (permission denied)")


_cache: dict[tuple, tuple[list[PianoRoll], int]] = {}


def read_file_clips(path: str, options: FileOptions = FileOptions(),
                    rule: HandRule = HandRule()) -> tuple[list[PianoRoll], int]:
    """The file's clips (`split_clips`, <= 550 steps each, named `<path>#<index>`) and the
    number of notes dropped as unplayable (0 unless `options.drop_unplayable`).

    Cached in memory per file version and options.

    Raises:
        MusicFileError: unreadable file (see `read_music`).
        UnplayableError: notes one pair of hands cannot play, without `drop_unplayable`.
        MusicError: transposed off the keyboard, a bad stretch.
    """
    from mjx_piano.music.pianoroll import MAX_CLIP_STEPS, draw_roll, split_clips
    from mjx_piano.music.readers import read_music

    _check_readable(path)
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size, options, rule)
    if key not in _cache:
        performance = read_music(path, allow_out_of_range=options.transpose != 0)
        roll, dropped = draw_roll(performance, path, stretch_factor=options.stretch,
                                  semitones=options.transpose, rule=rule, hands=options.hands,
                                  drop_unplayable=options.drop_unplayable,
                                  convention=options.convention)
        problems = playability_problems(roll, rule, limit=5)
        if problems:
            raise UnplayableError(
                f"{path}: notes one pair of hands cannot play ({options.hands.text} hands; "
                f"at most {rule.max_notes} keys and {rule.max_span} semitones per hand, hands "
                "not crossing), first at " + "; ".join(problems)
                + ". Play it anyway without those notes with --drop-unplayable, or choose "
                  "other hands with --hands")
        clips = split_clips(roll, MAX_CLIP_STEPS, min_steps=1, min_notes=1)
        clips = [dataclasses.replace(c, name=f"{path}#{i}") for i, c in enumerate(clips)]
        _cache[key] = (clips, dropped)
    return _cache[key]


def check_digest(piece: FilePiece) -> None:
    """Refuses a file whose sha256 does not start with the one its name records (if any).

    Raises:
        MusicFileError: changed since named, missing or unreadable.
    """
    if piece.sha256:
        now = file_sha256(piece.path)
        if not now.startswith(piece.sha256):
            raise MusicFileError(piece.path, f"changed since this piece was named: its sha256 "
                                             f"is {now[:DIGEST_CHARS]}..., the name says "
                                             f"{piece.sha256}...")


def load_file_piece(piece: FilePiece, name: str | None = None) -> PianoRoll:
    """The clip a file piece names, renamed `name` (default: `piece.name`).

    Raises:
        MusicFileError: unreadable, or changed since the name was made (sha256).
        UnplayableError, MusicError: see `read_file_clips`.
        MusicError: no such clip, or no clip index for a file of several clips.
    """
    check_digest(piece)
    clips, _ = read_file_clips(piece.path, piece.options)
    if piece.clip is None and len(clips) > 1:
        raise MusicError(f"{piece.path} has {len(clips)} clips of <= 550 control steps; name "
                         f"one: {piece.path}#0 .. {piece.path}#{len(clips) - 1}")
    index = piece.clip or 0
    if index >= len(clips):
        raise MusicError(f"{piece.path} has {len(clips)} clip(s): #0 .. #{len(clips) - 1}, "
                         f"not #{index}")
    return dataclasses.replace(clips[index], name=name or piece.name)


def file_piece_names(path: str, options: FileOptions = FileOptions(),
                     clip: int | None = None, report: bool = True) -> list[str]:
    """Full names (clip index, options, sha256) of a file's clips: all, or clip `clip`.

    Args:
        path: the music file.
        options: how to read it.
        clip: one clip index; None = every clip.
        report: print how many notes `drop_unplayable` dropped (to stderr).

    Raises:
        See `read_file_clips`; MusicError for a clip index past the last clip.
    """
    clips, dropped = read_file_clips(path, options)
    if report and dropped:
        notes = sum(c.num_notes for c in clips)
        print(f"{path}: dropped {dropped} unplayable note(s) of {notes + dropped}",
              file=sys.stderr)
    sha256 = file_sha256(path)[:DIGEST_CHARS]
    indices = range(len(clips)) if clip is None else [clip]
    if clip is not None and not 0 <= clip < len(clips):
        raise MusicError(f"{path} has {len(clips)} clip(s): #0 .. #{len(clips) - 1}, "
                         f"not #{clip}")
    return [FilePiece(path, i, options, sha256).name for i in indices]
