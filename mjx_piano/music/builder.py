"""The repertoire builder: music21's bundled corpus -> playable two-hand clips -> one store file.

Sources: every score of the corpus in MusicXML (.mxl, .xml, .musicxml) or Humdrum (.krn) with at
least two parts (ABC files hold one-line fiddle and folk tunes, .rntxt harmonic analyses; both
are left out). Per source (`process_source`): parse, events in seconds (tempo from the score, or
the median note lasts 0.6 s), leading silence trimmed, quantised at 20 Hz by RoboPianist's
rule (`pianoroll.CONVENTIONS`, `BuildConfig.convention`), hands from the parts when they say so
(piano staves, two parts, or part names like 'right'/'left'), else by pitch at the piece's median key, each with the fallbacks of `hands`;
notes neither hand can reach are dropped (on a sample of 60 scores 0.56% of the notes; giving the
upper half of the voices to the right hand a priori dropped 0.7%); a source that needs more than
`max_drop_fraction` of its notes dropped, has a note off the keyboard or fails to parse is
skipped with its reason. The piece is then cut into clips of at most 550 steps (`split_clips`),
and every clip is checked against the hand rule once more.

A folder of the user's own files (`folder_sources`, `repertoire build --from DIR`) is built by the
same rules, except that every file `read_music` reads is a source (MIDI too, and one part is
enough: a MIDI piano track holds both hands).

Across sources (`build_repertoire`, in source order, so the result does not depend on worker
timing): a clip whose notes equal an earlier clip's is dropped (the corpus holds some chorales
twice); splits are deterministic - a piece is out-of-distribution test (`test_ood`) when the
sha256 of its name falls in the first `ood_percent` of 100 buckets (whole pieces held out), else
each clip is in-distribution test (`test_id`) by the same rule on its own name, else `train`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import multiprocessing
import os
import sys
import time
import warnings
from typing import Any, Callable, Iterator, Sequence

from mjx_piano.music.events import MusicFileError, Performance, check_range
from mjx_piano.music.hands import HandRule, assign_hands, playability_problems
from mjx_piano.music.pianoroll import (DEFAULT_CONVENTION, MAX_CLIP_STEPS, quantize_steps,
                                      segments_to_roll, split_clips, trim_leading_silence)
from mjx_piano.music.readers import read_music, score_to_performance
from mjx_piano.music.roll import CONTROL_HZ
from mjx_piano.music.store import EncodedClip, Store, StoreError, encode_roll, save_store

CORPUS_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn")


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """Builder settings (all recorded in the manifest)."""

    max_clip_steps: int = MAX_CLIP_STEPS
    max_drop_fraction: float = 0.05
    min_parts: int = 2
    max_notes: int = 5
    max_span: int = 14
    ood_percent: int = 10
    id_test_percent: int = 10
    convention: str = DEFAULT_CONVENTION

    @property
    def rule(self) -> HandRule:
        """The per-hand limits."""
        return HandRule(self.max_notes, self.max_span)


@dataclasses.dataclass(frozen=True)
class Source:
    """One input file: `name` names its clips (`<name>/<index>`), `path` is read.

    `reader`: 'corpus' (a score of music21's corpus: parsed by music21, at least
    `BuildConfig.min_parts` parts) or 'file' (any file `read_music` reads: MIDI or a score).
    """

    name: str
    path: str
    reader: str = "corpus"


@dataclasses.dataclass(frozen=True)
class SourceResult:
    """What one source gave: clips (encoded) and provenance, or the reason it was skipped."""

    source: Source
    clips: tuple[EncodedClip, ...] = ()
    title: str = ""
    composer: str = ""
    notes: int = 0
    dropped: int = 0
    error: str | None = None


def corpus_sources(limit: int | None = None, composers: Sequence[str] | None = None) -> list[Source]:
    """The candidate scores of music21's bundled corpus, sorted by name (deterministic).

    Args:
        limit: keep the first `limit` after sorting (None: all).
        composers: keep only these top-level corpus folders (e.g. ['bach']).

    Returns:
        Sources named by their path inside the corpus without extension, e.g. 'bach/bwv356'.
    """
    from music21 import corpus

    sources: dict[str, Source] = {}
    for path in sorted(corpus.getCorePaths()):
        if path.suffix.lower() not in CORPUS_SUFFIXES:
            continue
        parts = path.parts
        relative = "/".join(parts[len(parts) - parts[::-1].index("corpus"):])
        if composers is not None and relative.split("/")[0] not in composers:
            continue
        name = relative.rsplit(".", 1)[0]
        if name in sources:  # one piece in two formats (.krn and .mxl): both, named apart
            name = relative
        sources[name] = Source(name, str(path))
    ordered = [sources[name] for name in sorted(sources)]
    return ordered[:limit] if limit is not None else ordered


def folder_sources(folder: str | os.PathLike[str]) -> tuple[list[Source], list[str]]:
    """Every music file under `folder` (recursively, sorted), and the other files' paths.

    Sources are named by their path inside the folder without the extension (with it when two
    files differ only by extension), e.g. 'jazz/autumn'.

    Raises:
        MusicFileError: `folder` is missing or not a folder.
    """
    from mjx_piano.music.readers import MIDI_SUFFIXES, SCORE_SUFFIXES

    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise MusicFileError(folder, "no such folder" if not os.path.exists(folder)
                             else "is a file, not a folder (play a file with --piece FILE)")
    music, others = [], []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for file in sorted(files):
            path = os.path.join(root, file)
            suffix = os.path.splitext(file)[1].lower()
            (music if suffix in MIDI_SUFFIXES + SCORE_SUFFIXES else others).append(path)
    stems = [os.path.splitext(os.path.relpath(p, folder))[0].replace(os.sep, "/") for p in music]
    sources = [Source(stem if stems.count(stem) == 1 else
                      os.path.relpath(path, folder).replace(os.sep, "/"), path, "file")
               for stem, path in zip(stems, music)]
    return sources, others


def process_source(source: Source, config: BuildConfig) -> SourceResult:
    """Parses one score and cuts it into playable clips; never raises (see `SourceResult.error`)."""
    try:
        return _process(source, config)
    except Exception as error:  # a bad file must not stop a batch build
        return SourceResult(source, error=f"{type(error).__name__}: {error}".strip()[:300])


def _read(source: Source, config: BuildConfig) -> Performance | str:
    """The source's notes, or why it is skipped."""
    from music21 import converter, stream

    if source.reader == "file":
        try:
            return read_music(source.path)
        except MusicFileError as error:
            return error.problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = converter.parse(source.path, forceSource=True, storePickle=False)
    if isinstance(score, stream.Opus):
        score = score.scores[0]
    num_parts = len(score.parts) if isinstance(score, stream.Score) else 1
    if num_parts < config.min_parts:
        return f"{num_parts} part(s); a two-hand piece needs {config.min_parts}"
    return score_to_performance(score, source=source.name)


def _process(source: Source, config: BuildConfig) -> SourceResult:
    if not os.path.isfile(source.path) or os.path.getsize(source.path) == 0:
        return SourceResult(source, error="missing or empty file")
    performance = _read(source, config)
    if isinstance(performance, str):
        return SourceResult(source, error=performance)
    if not performance.notes:
        return SourceResult(source, error="no notes")
    check_range(performance, source.name)
    segments, pedal, steps = quantize_steps(trim_leading_silence(performance), CONTROL_HZ,
                                            config.convention)
    # Parts without hands split at the piece's median key: vocal and chamber music sits in any
    # register (on a sample of 60 scores: 55% right-hand notes and 0.56% dropped, against 70% and
    # 0.61% for a split at middle C).
    split_key = sorted(s.key for s in segments)[len(segments) // 2]
    segments, dropped = assign_hands(segments, config.rule, drop=True, split_key=split_key)
    fraction = dropped / max(len(segments) + dropped, 1)
    if fraction > config.max_drop_fraction:
        return SourceResult(source, error=f"{fraction:.1%} of the notes out of reach of two hands")
    roll = segments_to_roll(source.name, segments, pedal, steps)
    clips = []
    for clip in split_clips(roll, config.max_clip_steps):
        problems = playability_problems(clip, config.rule, limit=1)
        if problems:  # cannot happen after assign_hands(drop=True); kept as a guard
            return SourceResult(source, error=f"clip {clip.name} unplayable: {problems[0]}")
        clips.append(encode_roll(clip))
    if not clips:
        return SourceResult(source, error="too short for a clip")
    return SourceResult(source, tuple(clips), performance.title or source.name.split("/")[-1],
                        performance.composer or source.name.split("/")[0], len(segments), dropped)


def _bucket(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 100


def split_of(piece: str, clip: str, config: BuildConfig) -> str:
    """'test_ood' (whole piece held out), 'test_id' or 'train'; a pure function of the names."""
    if _bucket(piece) < config.ood_percent:
        return "test_ood"
    return "test_id" if _bucket("clip:" + clip) < config.id_test_percent else "train"


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """sha256 of the code that turns a score into clips (and music21's version): a per-source
    cache entry made by other code is never reused."""
    import music21

    from mjx_piano.music import (events, hands, note_names, pianoroll, readers,
                                 robopianist_rule, roll, store)

    h = hashlib.sha256(str(music21.__version__).encode())
    for module in (events, hands, note_names, pianoroll, readers, robopianist_rule, roll, store,
                   sys.modules[__name__]):
        with open(module.__file__, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def source_key(source: Source, config: BuildConfig) -> str:
    """The per-source cache key: the file's bytes, its name, the config and the code."""
    h = hashlib.sha256(_code_digest().encode())
    h.update(json.dumps([source.name, source.reader, dataclasses.asdict(config)],
                        sort_keys=True).encode())
    with open(source.path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def cached_process_source(source: Source, config: BuildConfig, folder: str | None) -> SourceResult:
    """`process_source`, remembered in `folder` (one small .npz per source; None: no cache).

    A damaged entry is recomputed; entries are written atomically, so parallel builds are safe.
    """
    if folder is None or not os.path.isfile(source.path):
        return process_source(source, config)
    path = os.path.join(folder, source_key(source, config) + ".npz")
    if os.path.exists(path):
        try:
            entry = Store.load(path)
            meta = entry.manifest["result"]
            clips = tuple(entry.encoded(i) for i in range(len(entry.manifest["clips"])))
            return SourceResult(source, clips, meta["title"], meta["composer"], meta["notes"],
                                meta["dropped"], meta["error"])
        except (StoreError, KeyError, TypeError):
            pass
    result = process_source(source, config)
    meta = {"title": result.title, "composer": result.composer, "notes": result.notes,
            "dropped": result.dropped, "error": result.error}
    save_store(path, result.clips, {"clips": [{"name": str(i)} for i in range(len(result.clips))],
                                    "result": meta, "source": source.name})
    return result


def _worker(item: tuple[Source, BuildConfig, str | None]) -> SourceResult:
    return cached_process_source(*item)


def process_all(sources: Sequence[Source], config: BuildConfig, workers: int = 1,
                cache: str | None = None) -> Iterator[SourceResult]:
    """Processes sources in order, with `workers` processes (1: in this process).

    Args:
        sources: the scores.
        config: builder settings.
        workers: processes.
        cache: per-source cache folder (None: none).
    """
    items = [(source, config, cache) for source in sources]
    if workers <= 1:
        yield from map(_worker, items)
        return
    # spawn: the caller may hold threads (JAX, tqdm) that fork would copy in a broken state
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield from pool.map(_worker, items, chunksize=2)


def build_repertoire(
    path: str | os.PathLike[str],
    sources: Sequence[Source],
    config: BuildConfig | None = None,
    *,
    workers: int = 1,
    progress: bool = True,
    report: Callable[[str], None] | None = None,
    source_cache: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Builds the repertoire from `sources` and writes it atomically to `path`.

    Args:
        path: the store file (.npz) to write.
        sources: input scores (see `corpus_sources`).
        config: builder settings (None: defaults).
        workers: parallel processes.
        progress: show a tqdm progress bar on stderr.
        report: called with one line per skipped source (default: print to stderr).
        source_cache: folder remembering each source's clips (see `cached_process_source`), so a
            rebuild only parses new or changed scores; None: parse everything.

    Returns:
        The manifest written (with `hash`, `stats`, `skipped`).
    """
    from tqdm import tqdm

    config = config or BuildConfig()
    report = report or (lambda line: print(line, file=sys.stderr))
    started = time.perf_counter()
    cache = os.fspath(source_cache) if source_cache is not None else None
    results = tqdm(process_all(sources, config, workers, cache), total=len(sources), disable=not progress,
                   desc="repertoire", unit="piece", file=sys.stderr)
    clips, entries, pieces, skipped, seen = [], [], [], [], set()
    for result in results:
        if result.error is not None:
            skipped.append({"source": result.source.name, "reason": result.error})
            report(f"skipped {result.source.name} ({result.source.path}): {result.error}")
            continue
        kept = _add_piece(result, config, clips, entries, seen)
        if kept:
            pieces.append({"piece": result.source.name, "title": result.title,
                           "composer": result.composer, "clips": kept, "notes": result.notes,
                           "dropped_notes": result.dropped,
                           "split": "test_ood" if _bucket(result.source.name) < config.ood_percent
                           else "train"})
    manifest = {"config": dataclasses.asdict(config), "clips": entries, "pieces": pieces,
                "skipped": skipped, "control_hz": CONTROL_HZ}
    manifest["hash"] = save_store(path, clips, manifest)
    manifest["stats"] = {"sources": len(sources), "pieces": len(pieces), "clips": len(clips),
                         "skipped": len(skipped), "seconds": round(time.perf_counter() - started, 1)}
    return manifest


def _add_piece(result: SourceResult, config: BuildConfig, clips: list[EncodedClip],
               entries: list[dict[str, Any]], seen: set[str]) -> int:
    """Appends the piece's clips that are not duplicates; returns how many."""
    kept = 0
    for index, clip in enumerate(result.clips):
        digest = clip.key_digest()
        if digest in seen:
            continue
        seen.add(digest)
        name = f"{result.source.name}/{index:02d}"
        clips.append(clip)
        entries.append({
            "name": name, "piece": result.source.name, "index": index, "title": result.title,
            "composer": result.composer, "source": (
                f"music21 corpus: {result.source.name}" if result.source.reader == "corpus"
                else f"file: {result.source.path}"),
            "steps": clip.steps, "duration_s": round(clip.steps / CONTROL_HZ, 2),
            "notes": clip.notes, "split": split_of(result.source.name, name, config),
        })
        kept += 1
    return kept

