"""The public repertoire API: clips by name from the etudes, the built repertoires and files.

Names: `etude/<tonic>-<mode>-<pattern>` (generated, always there; see `etudes`),
`<corpus folder>/<piece>/<clip index>` such as `bach/bwv356/00` (after
`python3 -m mjx_piano repertoire build`), `<repertoire>:<file>/<clip index>` such as
`mysongs:jazz/tune/00` (a repertoire built from a folder, `repertoire build --from DIR --name
mysongs`) and music files (`file_piece`). The corpus repertoire lives in
`$MJX_PIANO_CACHE/repertoire.npz` (default `~/.cache/mjx_piano/repertoire.npz`), the others in
`$MJX_PIANO_CACHE/repertoires/<name>.npz`; every function takes `path=` to use another file.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from typing import Any

from mjx_piano.music.clip_window import ClipWindow, cut, parse_window
from mjx_piano.music.etudes import etude_names, get_etude
from mjx_piano.music.file_piece import load_file_piece, parse_file_piece
from mjx_piano.music.pianoroll import MAX_CLIP_STEPS, split_clips, to_piano_roll
from mjx_piano.music.readers import read_music
from mjx_piano.music.roll import PianoRoll
from mjx_piano.music.store import Store, StoreError

CACHE_ENV = "MJX_PIANO_CACHE"
REPERTOIRE_FILE = "repertoire.npz"
SPLIT_NAMES = ("train", "test_id", "test_ood", "etude")
CORPUS = "corpus"  # the name of the repertoire built from music21's corpus
_REPERTOIRE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_PREFIXED = re.compile(r"^([A-Za-z0-9_.-]+):(.+)$")

_loaded: dict[str, tuple[tuple[float, int], Store]] = {}


def cache_dir() -> str:
    """The cache folder: $MJX_PIANO_CACHE, else ~/.cache/mjx_piano."""
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "mjx_piano")


def default_repertoire_path() -> str:
    """Where `repertoire build` writes and the loaders read by default."""
    return os.path.join(cache_dir(), REPERTOIRE_FILE)


def repertoire_path(name: str | None = None) -> str:
    """The store file of a named repertoire (None or 'corpus': the corpus one).

    Raises:
        ValueError: a name with characters other than letters, digits, '_', '.', '-'.
    """
    if name in (None, "", CORPUS):
        return default_repertoire_path()
    if not _REPERTOIRE_NAME.match(name) or name in (".", ".."):
        raise ValueError(f"repertoire name {name!r}: use letters, digits, '_', '.' and '-'")
    return os.path.join(cache_dir(), "repertoires", f"{name}.npz")


def repertoire_names() -> list[str]:
    """The repertoires built in the cache: 'corpus' (if built), then the others by name."""
    folder = os.path.join(cache_dir(), "repertoires")
    others = sorted(f[:-4] for f in os.listdir(folder) if f.endswith(".npz")) \
        if os.path.isdir(folder) else []
    return ([CORPUS] if os.path.exists(default_repertoire_path()) else []) + others


def split_prefix(name: str) -> tuple[str | None, str]:
    """`mysongs:jazz/tune/00` -> ('mysongs', 'jazz/tune/00'); a corpus or etude name -> (None,
    name)."""
    match = _PREFIXED.match(name)
    return (match.group(1), match.group(2)) if match else (None, name)


def open_repertoire(path: str | os.PathLike[str] | None = None) -> Store:
    """The built repertoire (cached in memory until the file changes).

    Raises:
        StoreError: not built yet, damaged, or of another format version.
    """
    path = os.fspath(path) if path is not None else default_repertoire_path()
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise StoreError(f"no repertoire at {path}; build it with "
                         "`python3 -m mjx_piano repertoire build` (or set $MJX_PIANO_CACHE)") from None
    stamp = (stat.st_mtime, stat.st_size)
    cached = _loaded.get(path)
    if cached is None or cached[0] != stamp:
        cached = (stamp, Store.load(path))
        _loaded[path] = cached
    return cached[1]


def list_clips(split: str | None = None, path: str | os.PathLike[str] | None = None,
               repertoire: str | None = None) -> list[str]:
    """Clip names, etudes first.

    Args:
        split: None (all: etudes, and the built clips if a repertoire was built), 'etude', or one of the
            built splits 'train', 'test_id', 'test_ood' (these need the built repertoire).
        path: the repertoire file (default: `default_repertoire_path()`).
        repertoire: a named repertoire instead of the corpus one (its clips come as
            `<repertoire>:<clip>`, and the etudes are left out).

    Raises:
        ValueError: unknown split, or a bad repertoire name.
        StoreError: a built split was asked for and there is no usable repertoire.
    """
    if split is not None and split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLIT_NAMES}")
    if repertoire not in (None, "", CORPUS):
        if split == "etude":
            raise ValueError(f"repertoire {repertoire!r} has no etudes; its splits are "
                             "train, test_id, test_ood")
        store = open_repertoire(path or repertoire_path(repertoire))
        return [f"{repertoire}:{entry['name']}" for entry in store.manifest["clips"]
                if split is None or entry["split"] == split]
    if split == "etude":
        return etude_names()
    if split is None:
        if not os.path.exists(path if path is not None else default_repertoire_path()):
            return etude_names()  # nothing built yet; a damaged file still raises below
        store = open_repertoire(path)
        return etude_names() + [entry["name"] for entry in store.manifest["clips"]]
    store = open_repertoire(path)
    return [entry["name"] for entry in store.manifest["clips"] if entry["split"] == split]


def clip_info(name: str, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The manifest entry of a built clip, or a summary of an etude; for a windowed name
    (`NAME@START:STOP`), its clip's entry with the window's name, steps, duration and notes.

    Raises:
        KeyError: unknown name (close matches listed).
        ValueError: a malformed window, or one past the clip's end.
    """
    window = parse_window(name)
    if window != ClipWindow(name):
        part = load_clip(name, path)
        return {**clip_info(window.base, path), "name": name, "steps": part.num_steps,
                "duration_s": part.duration_s, "notes": part.num_notes}
    if name.startswith("etude/"):
        roll = get_etude(name)
        return {"name": name, "title": roll.title, "composer": roll.composer, "source": roll.source,
                "steps": roll.num_steps, "duration_s": roll.duration_s, "notes": roll.num_notes,
                "split": "etude"}
    repertoire, clip = split_prefix(name)
    store = open_repertoire(path or (repertoire_path(repertoire) if repertoire else None))
    if clip not in store.index:
        raise KeyError(_unknown(name, list(store.index)))
    return dict(store.manifest["clips"][store.index[clip]])


def load_clip(name: str, path: str | os.PathLike[str] | None = None) -> PianoRoll:
    """The named clip: an etude, a clip of the built repertoire, or a music file
    (`PATH[#K][?OPTIONS]`, see `file_piece`); `NAME@START:STOP` is control steps [START, STOP)
    of clip NAME (`clip_window`).

    Returns:
        PianoRoll with keys [steps, 88], sustain [steps] and the hand split.

    Raises:
        KeyError: unknown name; the message lists close matches (and says if nothing is built).
        ValueError: a malformed window, or one past the clip's end.
        MusicError: a file that cannot be read or played (`MusicFileError`, `UnplayableError`).
    """
    try:
        window = parse_window(name)
    except ValueError:  # not a window: a file whose path has an '@'?
        window = ClipWindow(name)
        if parse_file_piece(name) is None:
            raise
    if window != ClipWindow(name) and not os.path.isfile(name):
        return cut(load_clip(window.base, path), window, name)
    piece = parse_file_piece(name)
    if piece is not None:
        return load_file_piece(piece, name)
    if name in set(etude_names()):
        return get_etude(name)
    repertoire, clip = split_prefix(name)
    try:
        store = open_repertoire(path or (repertoire_path(repertoire) if repertoire else None))
    except (StoreError, ValueError) as error:
        raise KeyError(f"{_unknown(name, etude_names())} ({error})") from None
    if clip not in store.index:
        known = [f"{repertoire}:{n}" for n in store.index] if repertoire else \
            etude_names() + list(store.index)
        raise KeyError(_unknown(name, known))
    return dataclasses.replace(store.roll(clip), name=name) if repertoire else store.roll(clip)


def clips_from_file(
    path: str | os.PathLike[str], *, stretch_factor: float = 1.0, semitones: int = 0,
    max_steps: int = MAX_CLIP_STEPS,
) -> list[PianoRoll]:
    """Any MIDI / score file as clips of at most `max_steps` steps, named `<file stem>/<index>`.

    Unlike the corpus builder, short pieces are kept (one note makes a clip) and no note is dropped
    for playability (check with `playability_problems`).

    Raises:
        MusicFileError: the file cannot be read (see `read_music`).
        MusicError: transposed off the keyboard, or a bad stretch.
    """
    stem = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    performance = read_music(path, allow_out_of_range=semitones != 0)
    roll = to_piano_roll(performance, stem, stretch_factor=stretch_factor, semitones=semitones)
    return split_clips(roll, max_steps, min_steps=1, min_notes=1)


def _unknown(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    return f"unknown clip {name!r}{hint} (list them: python3 -m mjx_piano repertoire list)"
