"""Note and pedal events: what every reader returns, before quantisation to the control rate.

Times are in seconds from the start of the piece. Pitches are MIDI numbers; the piano covers
MIDI 21 (A0) to 108 (C8). `Performance` bundles the events of one piece with its provenance.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal, Sequence

from mjx_piano.music.roll import LOWEST_MIDI, NUM_KEYS

Hand = Literal["left", "right"]
HIGHEST_MIDI = LOWEST_MIDI + NUM_KEYS - 1  # 108, C8


class MusicError(ValueError):
    """A piece of music cannot be turned into a piano roll (bad content or arguments)."""


class MusicFileError(MusicError):
    """A music file cannot be read: corrupt, truncated, empty, unknown format or bad content.

    Attributes:
        path: the file that was being read.
        problem: what is wrong with it, in words.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclasses.dataclass(frozen=True)
class NoteEvent:
    """One sounding note.

    Attributes:
        onset_s: start time in seconds.
        offset_s: end time in seconds (> onset_s).
        pitch: MIDI pitch number (21..108 on the piano).
        velocity: MIDI velocity 1..127.
        hand: 'left' or 'right' when the source says so (staff, part or track), else None.
    """

    onset_s: float
    offset_s: float
    pitch: int
    velocity: int = 80
    hand: Hand | None = None


@dataclasses.dataclass(frozen=True, order=True)
class SustainEvent:
    """One interval with the sustain pedal (MIDI CC64 >= 64) down, in seconds; `released` is
    False for a pedal the file never lifts (its interval then ends with the last note)."""

    onset_s: float
    offset_s: float
    released: bool = True  # False: still down when the file ends (offset_s = the last note's end)


@dataclasses.dataclass(frozen=True)
class Performance:
    """The events of one piece, sorted by time.

    Attributes:
        notes: note events sorted by (onset, offset, pitch).
        sustain: disjoint pedal intervals sorted by onset.
        title, composer, source: provenance (source is a file path or corpus id).
    """

    notes: tuple[NoteEvent, ...]
    sustain: tuple[SustainEvent, ...] = ()
    title: str = ""
    composer: str = ""
    source: str = ""

    @property
    def duration_s(self) -> float:
        """End of the last note or pedal interval, in seconds (0 when empty)."""
        ends = [n.offset_s for n in self.notes] + [s.offset_s for s in self.sustain]
        return max(ends, default=0.0)

    def replace(self, **changes: object) -> "Performance":
        """A copy with the given fields changed."""
        return dataclasses.replace(self, **changes)


def make_performance(
    notes: Sequence[NoteEvent],
    sustain: Sequence[SustainEvent] = (),
    *,
    title: str = "",
    composer: str = "",
    source: str = "",
) -> Performance:
    """Sorts the events, drops zero-length notes and merges overlapping pedal intervals."""
    kept = sorted((n for n in notes if n.offset_s > n.onset_s),
                  key=lambda n: (n.onset_s, n.offset_s, n.pitch, n.velocity, n.hand or ""))
    merged: list[SustainEvent] = []
    for event in sorted(s for s in sustain if s.offset_s > s.onset_s):
        if merged and event.onset_s <= merged[-1].offset_s:
            last = merged.pop()
            later = event if event.offset_s >= last.offset_s else last
            event = SustainEvent(last.onset_s, later.offset_s, later.released)
        merged.append(event)
    return Performance(tuple(kept), tuple(merged), title=title, composer=composer, source=source)


def check_range(performance: Performance, where: str) -> None:
    """Raises if any note lies outside the 88 keys.

    Args:
        performance: the events to check.
        where: the file or piece name, for the message.

    Raises:
        MusicFileError: the first few offending notes are named with their times.
    """
    bad = [n for n in performance.notes if not LOWEST_MIDI <= n.pitch <= HIGHEST_MIDI]
    if bad:
        shown = ", ".join(f"MIDI {n.pitch} at {n.onset_s:.2f} s" for n in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise MusicFileError(
            where,
            f"{len(bad)} note(s) outside the piano's 88 keys (MIDI {LOWEST_MIDI}..{HIGHEST_MIDI}): "
            f"{shown}{more}",
        )


def check_not_empty(performance: Performance, where: str) -> None:
    """Raises `MusicFileError` if the piece has no notes at all."""
    if not performance.notes:
        raise MusicFileError(where, "contains no notes")
