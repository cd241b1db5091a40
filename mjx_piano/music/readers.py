"""Readers: MIDI files (via pretty_midi) and scores (MusicXML, .mxl, Humdrum, ABC, ... via music21).

Every reader returns a `Performance` (note events in seconds + sustain-pedal intervals) or raises
`MusicFileError` naming the file and the problem. Hands come from the source when it says so:
MIDI track/instrument names ('right', 'left', 'RH', 'treble', ...), or the two parts / staves of
a score (the higher one is the right hand); otherwise notes keep `hand=None` and the hand split of
`mjx_piano.music.hands` decides.
"""

from __future__ import annotations

import bisect
import os
import warnings
from typing import Any, Callable, Sequence

from mjx_piano.music.events import (
    Hand,
    MusicFileError,
    NoteEvent,
    Performance,
    SustainEvent,
    check_not_empty,
    check_range,
    make_performance,
)

MIDI_SUFFIXES = (".mid", ".midi", ".smf", ".kar")
SCORE_SUFFIXES = (
    ".xml", ".musicxml", ".mxl", ".krn", ".abc", ".mei", ".cap", ".capx", ".nwc", ".nwctxt",
    ".musedata", ".md", ".mus", ".rntxt", ".tntxt",
)
AUTO_MEDIAN_QPM = 100.0  # a score without tempo: the median note lasts 60 / 100 s
_SUSTAIN_CC = 64
_RIGHT_WORDS = ("right", "rh", "r.h", "treble", "upper", "melody", "soprano")
_LEFT_WORDS = ("left", "lh", "l.h", "bass", "lower")


def read_music(
    path: str | os.PathLike[str], *, allow_out_of_range: bool = False
) -> Performance:
    """Reads any supported file, choosing the reader by its extension.

    Args:
        path: a MIDI file (.mid, .midi) or a score music21 reads (.xml, .musicxml, .mxl, .krn, ...).
        allow_out_of_range: keep notes outside the 88 keys (to transpose them in later).

    Raises:
        MusicFileError: unknown extension, missing/empty/corrupt/truncated file, no notes, or
            notes outside the keyboard.
    """
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix in MIDI_SUFFIXES:
        return read_midi(path, allow_out_of_range=allow_out_of_range)
    if suffix in SCORE_SUFFIXES:
        return read_score(path, allow_out_of_range=allow_out_of_range)
    known = ", ".join(MIDI_SUFFIXES + SCORE_SUFFIXES)
    raise MusicFileError(path, f"unknown music format {suffix or '(no extension)'!r}; known: {known}")


def _check_file(path: str | os.PathLike[str]) -> None:
    if not os.path.isfile(path):
        raise MusicFileError(path, "no such file")
    if os.path.getsize(path) == 0:
        raise MusicFileError(path, "the file is empty (0 bytes)")


def _hand_from_name(name: str) -> Hand | None:
    words = name.lower().replace("-", " ").replace("_", " ").split()
    if any(w in _RIGHT_WORDS for w in words):
        return "right"
    if any(w in _LEFT_WORDS for w in words):
        return "left"
    return None


def _hands_for_groups(names: Sequence[str], mean_pitches: Sequence[float]) -> list[Hand | None]:
    """Hands of the note groups (tracks or parts): by name, else the higher of exactly two is right."""
    by_name = [_hand_from_name(name) for name in names]
    if sum(h is not None for h in by_name) == len(names) and len(set(by_name)) == 2:
        return by_name
    if len(names) == 2:
        high = 0 if mean_pitches[0] >= mean_pitches[1] else 1
        return ["right" if i == high else "left" for i in range(2)]
    return [None] * len(names)


def read_midi(path: str | os.PathLike[str], *, allow_out_of_range: bool = False) -> Performance:
    """Reads a standard MIDI file (type 0 or 1); tempo changes are honoured by pretty_midi.

    Notes of drum tracks are ignored. Sustain intervals are the union over all tracks of CC64
    >= 64; a pedal still down at the end is released at the end of the last note.

    Raises:
        MusicFileError: missing, empty, corrupt or truncated file; no notes; notes off the keyboard.
    """
    import pretty_midi

    _check_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            midi = pretty_midi.PrettyMIDI(os.fspath(path))
    except Exception as error:  # pretty_midi/mido raise many types for broken files
        detail = str(error) or ("unexpected end of the data" if isinstance(error, EOFError) else "")
        raise MusicFileError(
            path, f"not a readable MIDI file (corrupt or truncated?): {type(error).__name__}: {detail}"
        ) from error
    instruments = [inst for inst in midi.instruments if not inst.is_drum and inst.notes]
    hands = _hands_for_groups(
        [inst.name for inst in instruments],
        [sum(n.pitch for n in inst.notes) / len(inst.notes) for inst in instruments],
    )
    notes = [
        NoteEvent(float(n.start), float(n.end), int(n.pitch), int(n.velocity), hand)
        for inst, hand in zip(instruments, hands)
        for n in inst.notes
    ]
    end = max((n.offset_s for n in notes), default=0.0)
    sustain: list[SustainEvent] = []
    for inst in midi.instruments:
        sustain.extend(_pedal_intervals(inst.control_changes, end))
    performance = make_performance(
        notes, sustain, title=os.path.splitext(os.path.basename(path))[0], source=os.fspath(path)
    )
    check_not_empty(performance, os.fspath(path))
    if not allow_out_of_range:
        check_range(performance, os.fspath(path))
    return performance


def _pedal_intervals(control_changes: Sequence[Any], end_s: float) -> list[SustainEvent]:
    """CC64 messages (with .number, .value, .time) -> pedal-down intervals."""
    intervals = []
    down_since: float | None = None
    for cc in sorted((c for c in control_changes if c.number == _SUSTAIN_CC), key=lambda c: c.time):
        if cc.value >= 64 and down_since is None:
            down_since = float(cc.time)
        elif cc.value < 64 and down_since is not None:
            intervals.append(SustainEvent(down_since, float(cc.time)))
            down_since = None
    if down_since is not None:
        intervals.append(SustainEvent(down_since, max(end_s, down_since), released=False))
    return intervals


def read_score(path: str | os.PathLike[str], *, allow_out_of_range: bool = False) -> Performance:
    """Reads a score with music21 (MusicXML, .mxl, Humdrum .krn, ABC, ...).

    A file holding several pieces (an ABC or Humdrum opus) is read as its first piece.

    Raises:
        MusicFileError: missing, empty or unparsable file; no notes; notes off the keyboard.
    """
    from music21 import converter, stream

    _check_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = converter.parse(os.fspath(path), forceSource=True, storePickle=False)
    except Exception as error:  # music21 raises many types for broken files
        raise MusicFileError(
            path, f"music21 cannot parse it (corrupt or truncated?): {type(error).__name__}: {error}"
        ) from error
    if isinstance(parsed, stream.Opus):
        scores = list(parsed.scores)
        if not scores:
            raise MusicFileError(path, "the file holds an empty collection of pieces")
        parsed = scores[0]
    try:
        performance = score_to_performance(parsed, source=os.fspath(path))
    except Exception as error:  # content music21 parsed but that makes no sense as notes
        raise MusicFileError(path, f"cannot read notes: {type(error).__name__}: {error}") from error
    check_not_empty(performance, os.fspath(path))
    if not allow_out_of_range:
        check_range(performance, os.fspath(path))
    return performance


def score_to_performance(
    score: Any, *, source: str = "", default_qpm: float | None = None
) -> Performance:
    """Turns a parsed music21 Score (or Part) into note events in seconds.

    Tied notes are merged; grace notes and chord symbols (lead-sheet harmony) are skipped.
    Tempo: metronome marks of the first part (with the score's own). Before the first mark the
    tempo is `default_qpm`, or when that is None, chosen so the median note lasts 0.6 s
    (100 qpm for quarter notes, 200 for half notes; clamped to 60..200 qpm) - old scores such as
    Palestrina's are notated in long values and would otherwise crawl.
    Hands: see `_hands_for_groups` over the parts (staves of a piano part are parts in music21).

    Args:
        score: a `music21.stream.Score` or `Part`.
        source: file or corpus id recorded as provenance.
        default_qpm: quarter notes per minute before the first metronome mark (None: auto).
    """
    from music21 import stream

    parts = list(score.parts) if isinstance(score, stream.Score) else [score]
    parts = [p for p in parts if p.recurse().notes] or parts
    groups = [_part_notes(part.flatten()) for part in parts]
    lengths = sorted(off - on for group in groups for on, off, _, _ in group)
    if default_qpm is None:
        median = lengths[len(lengths) // 2] if lengths else 1.0
        default_qpm = min(max(AUTO_MEDIAN_QPM * median, 60.0), 200.0)
    to_seconds = _tempo_map(score, parts, default_qpm)
    names = [str(p.partName or p.id or "") for p in parts]
    means = [sum(g[2] for g in group) / max(len(group), 1) for group in groups]
    hands = _hands_for_groups(names, means)
    notes = [
        NoteEvent(to_seconds(on), to_seconds(off), pitch, velocity, hand)
        for group, hand in zip(groups, hands)
        for on, off, pitch, velocity in group
    ]
    metadata = score.metadata
    title = (metadata.title or metadata.movementName or "") if metadata else ""
    composer = (metadata.composer or "") if metadata else ""
    title = str(title)
    if title.lower().endswith(SCORE_SUFFIXES):  # music21 falls back to the file name
        title = title.rsplit(".", 1)[0]
    return make_performance(notes, title=title, composer=str(composer), source=source)


def _part_notes(flat: Any) -> list[tuple[float, float, int, int]]:
    """(onset, offset, pitch, velocity) in quarter notes of one flattened part, ties merged.

    music21's `stripTies` does this too, but is ~100x slower on long quartet movements.
    """
    from music21 import harmony

    notes: list[tuple[float, float, int, int]] = []
    open_ties: dict[int, list] = {}  # pitch -> [onset, offset, velocity]
    for element in flat.notes:
        if isinstance(element, harmony.ChordSymbol) or element.duration.isGrace:
            continue
        start = float(element.offset)
        end = start + float(element.quarterLength)
        if end <= start:
            continue
        velocity = element.volume.velocity if element.volume.velocity is not None else 80
        members = element.notes if element.isChord else ([element] if hasattr(element, "pitch") else [])
        for member in members:
            if not hasattr(member, "pitch"):  # unpitched percussion inside a chord
                continue
            pitch = int(round(member.pitch.ps))
            tie = member.tie or element.tie
            kind = tie.type if tie is not None else None
            held = open_ties.get(pitch)
            if held is not None and kind in ("stop", "continue") and abs(held[1] - start) < 1e-6:
                held[1] = end
                if kind == "stop":
                    notes.append(tuple(open_ties.pop(pitch)))
                continue
            if held is not None:  # a tie that never stopped
                notes.append(tuple(open_ties.pop(pitch)))
            if kind in ("start", "continue"):
                open_ties[pitch] = [start, end, pitch, int(velocity)]
            else:
                notes.append((start, end, pitch, int(velocity)))
    notes.extend(tuple(held) for held in open_ties.values())
    return notes


def _tempo_map(score: Any, parts: Sequence[Any], default_qpm: float) -> Callable[[float], float]:
    """A function quarter-note offset -> seconds from the metronome marks (piecewise constant tempo)."""
    from music21 import tempo

    marks: dict[float, float] = {}
    holders = [score] + list(parts[:1])
    for holder in holders:
        for mark in holder.recurse().getElementsByClass(tempo.MetronomeMark):
            qpm = mark.getQuarterBPM()
            if qpm:
                marks[float(mark.getOffsetInHierarchy(holder))] = min(max(float(qpm), 20.0), 400.0)
    if 0.0 not in marks:
        marks[0.0] = default_qpm
    starts = sorted(marks)
    seconds_at = [0.0]
    for previous, start in zip(starts, starts[1:]):
        seconds_at.append(seconds_at[-1] + (start - previous) * 60.0 / marks[previous])

    def to_seconds(quarters: float) -> float:
        i = max(bisect.bisect_right(starts, quarters) - 1, 0)
        return seconds_at[i] + (quarters - starts[i]) * 60.0 / marks[starts[i]]

    return to_seconds
