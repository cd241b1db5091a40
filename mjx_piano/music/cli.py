"""The `repertoire` command group: `build`, `list`, `show NAME [--png out.png]`.

  python3 -m mjx_piano repertoire build [--limit N] [--workers 2] [--composer bach] [--out FILE]
                                        [--no-source-cache] [--no-progress]
  python3 -m mjx_piano repertoire build --from DIR [--name NAME]     # your own music files
  python3 -m mjx_piano repertoire list [--split train|test_id|test_ood|etude] [--long]
                                       [--repertoire NAME]
  python3 -m mjx_piano repertoire show etude/c-major-scale-rh --png roll.png
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

from mjx_piano.music.piece_args import add_music_options, error_text, one_piece_name
from mjx_piano.music.roll import CONTROL_HZ, NUM_KEYS, PianoRoll


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `repertoire` with its subcommands to the `mjx-piano` parser."""
    group = subparsers.add_parser("repertoire", help="build, list and show the clips the env can play")
    commands = group.add_subparsers(dest="repertoire_command", metavar="{build,list,show}")
    group.set_defaults(run=lambda args: (group.print_help(), 2)[1])

    build = commands.add_parser("build", help="turn music21's corpus (or a folder of your music "
                                              "files) into playable two-hand clips")
    build.add_argument("--from", dest="folder", default=None, metavar="DIR",
                       help="build from every MIDI / MusicXML / music21-readable file under DIR "
                            "instead of the corpus")
    build.add_argument("--name", default=None,
                       help="with --from: the repertoire's name (default: DIR's name); its "
                            "clips are NAME:<file>/<index>, its splits --repertoire NAME")
    build.add_argument("--limit", type=int, default=None, help="only the first N corpus scores")
    build.add_argument("--composer", action="append", default=None,
                       help="only this corpus folder (repeatable), e.g. bach, palestrina")
    build.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                       help="parallel processes (default: min(2, cores))")
    build.add_argument("--out", default=None, help="store file (default: $MJX_PIANO_CACHE/repertoire.npz)")
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    build.add_argument("--no-source-cache", action="store_true",
                       help="parse every score again (default: reuse $MJX_PIANO_CACHE/sources)")
    build.set_defaults(run=_run_build)

    listing = commands.add_parser("list", help="print clip names (etudes, then the built ones)")
    listing.add_argument("--split", default=None, choices=("train", "test_id", "test_ood", "etude"))
    listing.add_argument("--long", action="store_true", help="also steps, notes, split and title")
    listing.add_argument("--path", default=None, help="store file (default: the cache)")
    listing.add_argument("--repertoire", default=None, metavar="NAME",
                         help="a repertoire built with --from (default: the corpus one)")
    listing.set_defaults(run=_run_list)

    show = commands.add_parser("show", help="describe one clip; optionally draw its piano roll")
    show.add_argument("name", help="clip name (e.g. etude/c-major-scale-rh, bach/bwv356/00, or its "
                                   "first 100 control steps bach/bwv356/00@0:100) or a music file")
    show.add_argument("--png", default=None, help="write the piano roll as a PNG here")
    show.add_argument("--path", default=None, help="store file (default: the cache)")
    add_music_options(show)
    show.set_defaults(run=_run_show)


def _run_build(args: argparse.Namespace) -> int:
    from mjx_piano.music.builder import build_repertoire
    from mjx_piano.music.repertoire import cache_dir, repertoire_path

    try:
        sources, name = _build_sources(args)
        out = args.out or repertoire_path(name)
    except ValueError as error:  # MusicError too: a missing folder, a bad name
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not sources:
        print("error: no music files found" if args.folder else "no corpus scores match",
              file=sys.stderr)
        return 2 if args.folder else 1
    source_cache = None if args.no_source_cache else os.path.join(cache_dir(), "sources")
    manifest = build_repertoire(out, sources, workers=args.workers, progress=not args.no_progress,
                                source_cache=source_cache)
    stats = manifest["stats"]
    splits = {}
    for entry in manifest["clips"]:
        splits[entry["split"]] = splits.get(entry["split"], 0) + 1
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB, hash {manifest['hash'][:16]}): "
          f"{stats['pieces']} pieces, {stats['clips']} clips {splits}, "
          f"{stats['skipped']} of {stats['sources']} sources skipped, {stats['seconds']} s")
    if args.folder:
        print(f"its clips: python3 -m mjx_piano repertoire list --repertoire {name}")
    return 0


def _build_sources(args: argparse.Namespace) -> tuple[list, str | None]:
    """(sources, repertoire name: None for the corpus); raises ValueError on bad input."""
    from mjx_piano.music.builder import corpus_sources, folder_sources
    from mjx_piano.music.repertoire import CORPUS, repertoire_path

    if args.folder is None:
        if args.name is not None:
            raise ValueError("--name names a repertoire built --from a folder")
        return corpus_sources(args.limit, args.composer), None
    if args.composer:
        raise ValueError("--composer picks corpus folders; with --from, point DIR at the folder")
    name = args.name or os.path.basename(os.path.normpath(args.folder))
    if name == CORPUS:
        raise ValueError(f"the name {CORPUS!r} is the corpus repertoire's; choose another --name")
    repertoire_path(name)  # checks the name
    sources, others = folder_sources(args.folder)
    for path in others:
        print(f"skipped {path}: not a music file (known: MIDI, MusicXML, and what music21 reads)",
              file=sys.stderr)
    return sources[:args.limit] if args.limit is not None else sources, name


def _run_list(args: argparse.Namespace) -> int:
    from mjx_piano.music.repertoire import clip_info, list_clips
    from mjx_piano.music.store import StoreError

    try:
        names = list_clips(args.split, args.path, args.repertoire)
    except StoreError as error:
        print(error, file=sys.stderr)
        return 1
    except ValueError as error:  # a bad name, or etudes of a user repertoire
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name in names:
        if args.long:
            info = clip_info(name, args.path)
            print(f"{name}\t{info['steps']}\t{info['notes']}\t{info['split']}\t"
                  f"{info['composer']}: {info['title']}")
        else:
            print(name)
    print(f"{len(names)} clips", file=sys.stderr)
    return 0


def _run_show(args: argparse.Namespace) -> int:
    from mjx_piano.music.file_piece import is_file_piece
    from mjx_piano.music.hands import playability_problems
    from mjx_piano.music.repertoire import clip_info, load_clip

    try:
        name = one_piece_name(args.name, args)
        roll = load_clip(name, args.path)
        info = {"split": "file"} if is_file_piece(name) else clip_info(name, args.path)
    except (KeyError, ValueError) as error:  # unknown name; a file that cannot be played
        print(f"error: {error_text(error)}", file=sys.stderr)
        return 2
    pressed = np.flatnonzero(roll.keys.any(axis=0))
    print(f"{roll.name}: {roll.composer}: {roll.title} ({roll.source})")
    print(f"  {roll.num_steps} steps ({roll.duration_s:.2f} s), {roll.num_notes} notes, "
          f"keys {pressed.min() if len(pressed) else '-'}..{pressed.max() if len(pressed) else '-'}, "
          f"at most {int(roll.keys.sum(axis=1).max(initial=0))} at once, "
          f"pedal {roll.sustain.mean():.0%} of the time, split {info['split']}")
    problems = playability_problems(roll)
    print("  playable by two hands" if not problems else f"  NOT playable: {problems[0]}")
    if args.png:
        write_png(roll, args.png)
        print(f"wrote {args.png}")
    return 0


def write_png(roll: PianoRoll, path: str) -> None:
    """Draws the roll (time across, keys up; right hand red, left blue, pedal below) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = np.ones((NUM_KEYS, roll.num_steps, 3))
    right = roll.right_hand if roll.right_hand is not None else np.zeros_like(roll.keys)
    image[(roll.keys & ~right).T] = (0.15, 0.35, 0.85)
    image[right.T] = (0.85, 0.2, 0.15)
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(max(6.0, roll.num_steps / 40), 5), sharex=True,
        gridspec_kw={"height_ratios": [10, 1]})
    top.imshow(image, origin="lower", aspect="auto", interpolation="nearest",
               extent=(0, roll.duration_s, -0.5, 87.5))
    top.set_ylabel("key (0 = A0)")
    top.set_title(f"{roll.name} - {roll.composer}: {roll.title}")
    bottom.fill_between(np.arange(roll.num_steps + 1) / CONTROL_HZ,
                        np.r_[roll.sustain, roll.sustain[-1:]].astype(float), step="post")
    bottom.set_yticks([])
    bottom.set_ylabel("pedal")
    bottom.set_xlabel("time (s)")
    figure.tight_layout()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".png", delete=False) as f:
        figure.savefig(f, format="png", dpi=100)
    plt.close(figure)
    os.replace(f.name, path)
