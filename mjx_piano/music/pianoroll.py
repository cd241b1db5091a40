"""From note events to piano rolls at the control rate, and from rolls to clips.

Two conventions turn times into control steps (`CONVENTIONS`):
  - 'robopianist' (the default): RoboPianist's, exactly (`robopianist_rule`), so that F1 figures
    compare with the published ones: a note covers [floor(20 onset), ceil(20 offset)), a held key
    struck again is up on the strike step, the pedal changes at floor(20 t) of each event.
  - 'nearest': this project's earlier rule (`quantize`), kept by name: a time t falls on control
    step floor(t * 20 + 0.5); a note holds its key over steps [round(onset), round(offset)), at
    least one step. Repeated notes: per key, in onset order, a note starting at step s while the
    previous segment of that key still covers step s-1 cuts that segment to end at s-1. If that
    would leave the previous segment empty (it began at s-1 or s), the previous segment keeps one
    step and the new note starts one step after it. Two strikes of a key at one step are one
    strike. A key restruck while another voice still holds it stays down until the later of the
    two ends. Pedal intervals are rounded the same way.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from mjx_piano.music import robopianist_rule
from mjx_piano.music.events import MusicError, Performance, SustainEvent, check_range, make_performance
from mjx_piano.music.hands import MIDDLE_C_KEY, HandRule, HandsOption, Segment, assign_hands
from mjx_piano.music.roll import CONTROL_HZ, LOWEST_MIDI, NUM_KEYS, PianoRoll

MAX_CLIP_STEPS = 550  # RP1M's episode length
CONVENTIONS = ("robopianist", "nearest")
DEFAULT_CONVENTION = "robopianist"


def to_step(seconds: float, hz: float = CONTROL_HZ) -> int:
    """The control step a time falls on: floor(seconds * hz + 0.5)."""
    return int(math.floor(seconds * hz + 0.5))


def transpose(performance: Performance, semitones: int) -> Performance:
    """All notes moved by `semitones` (may leave the keyboard; `to_piano_roll` checks)."""
    notes = [
        type(n)(n.onset_s, n.offset_s, n.pitch + semitones, n.velocity, n.hand)
        for n in performance.notes
    ]
    return performance.replace(notes=tuple(notes))


def stretch(performance: Performance, factor: float) -> Performance:
    """All times multiplied by `factor` (2.0 plays twice as slowly).

    Raises:
        MusicError: `factor` is not a positive finite number.
    """
    if not (math.isfinite(factor) and factor > 0):
        raise MusicError(f"tempo stretch must be a positive number, got {factor}")
    notes = [
        type(n)(n.onset_s * factor, n.offset_s * factor, n.pitch, n.velocity, n.hand)
        for n in performance.notes
    ]
    pedal = [SustainEvent(s.onset_s * factor, s.offset_s * factor, s.released)
             for s in performance.sustain]
    return make_performance(notes, pedal, title=performance.title,
                            composer=performance.composer, source=performance.source)


def trim_leading_silence(performance: Performance) -> Performance:
    """Shifts all events so the first note starts at 0 s (pedal before it is cut)."""
    if not performance.notes:
        return performance
    shift = performance.notes[0].onset_s
    notes = [type(n)(n.onset_s - shift, n.offset_s - shift, n.pitch, n.velocity, n.hand)
             for n in performance.notes]
    pedal = [SustainEvent(max(s.onset_s - shift, 0.0), s.offset_s - shift, s.released)
             for s in performance.sustain if s.offset_s > shift]
    return make_performance(notes, pedal, title=performance.title,
                            composer=performance.composer, source=performance.source)


def quantize_steps(performance: Performance, hz: float = CONTROL_HZ,
                   convention: str = DEFAULT_CONVENTION,
                   ) -> tuple[list[Segment], list[tuple[int, int]], int | None]:
    """Note events -> key segments, pedal step intervals and the roll's length under a
    convention (see the module docstring); the length is None when the segments decide it.

    Raises:
        MusicError: an unknown convention.
    """
    if convention == "robopianist":
        keys, sustain = robopianist_rule.keys_and_sustain(performance, hz)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], sustain.astype(np.int8), [0]])))
        pedal = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
        return robopianist_rule.segments(performance, keys, hz), pedal, len(sustain)
    if convention == "nearest":
        return (*quantize(performance, hz), None)
    raise MusicError(f"unknown roll convention {convention!r}; choose one of {CONVENTIONS}")


def quantize(performance: Performance, hz: float = CONTROL_HZ) -> tuple[list[Segment], list[tuple[int, int]]]:
    """Note events -> key segments and pedal step intervals under the 'nearest' convention.

    Args:
        performance: events in seconds, pitches inside the keyboard.
        hz: control rate.

    Returns:
        (segments sorted by start, hand from the events; pedal intervals [(start, stop)]).
    """
    per_key: dict[int, list[tuple[int, int, str | None]]] = {}
    for note in performance.notes:
        start = to_step(note.onset_s, hz)
        stop = max(to_step(note.offset_s, hz), start + 1)
        per_key.setdefault(note.pitch - LOWEST_MIDI, []).append((start, stop, note.hand))
    segments: list[Segment] = []
    for key, notes in per_key.items():
        placed: list[list] = []  # [start, stop, hand, start before any delay]
        for start, stop, hand in sorted(notes, key=lambda n: (n[0], n[1])):
            if placed and start <= placed[-1][1]:
                last = placed[-1]
                stop = max(stop, last[1])
                if start in (last[0], last[3]):  # two strikes at one step: one, the longer hold
                    last[1] = stop
                    continue
                if start - 1 > last[0]:
                    last[1] = start - 1
                else:  # the previous strike keeps its single step; this one waits a step
                    last[1] = last[0] + 1
                    delayed = last[1] + 1
                    stop = max(stop, delayed + 1)
                    placed.append([delayed, stop, hand, start])
                    continue
            placed.append([start, stop, hand, start])
        segments.extend(Segment(start, stop, key, hand) for start, stop, hand, _ in placed)
    pedal = [(to_step(s.onset_s, hz), to_step(s.offset_s, hz)) for s in performance.sustain]
    return sorted(segments), [(a, b) for a, b in pedal if b > a]


def segments_to_roll(
    name: str, segments: Sequence[Segment], pedal: Sequence[tuple[int, int]],
    num_steps: int | None = None, **provenance: str,
) -> PianoRoll:
    """Draws segments and pedal intervals into a PianoRoll (keys, sustain, right_hand [steps, 88])."""
    if num_steps is None:
        num_steps = max([s.stop for s in segments] + [b for _, b in pedal], default=0)
    keys = np.zeros((num_steps, NUM_KEYS), dtype=bool)
    right = np.zeros((num_steps, NUM_KEYS), dtype=bool)
    sustain = np.zeros(num_steps, dtype=bool)
    for s in segments:
        keys[s.start:s.stop, s.key] = True
        if s.hand == "right":
            right[s.start:s.stop, s.key] = True
    for start, stop in pedal:
        sustain[start:stop] = True
    return PianoRoll(name, keys, sustain, right_hand=right, **provenance)


def to_piano_roll(
    performance: Performance,
    name: str = "",
    *,
    stretch_factor: float = 1.0,
    semitones: int = 0,
    trim_silence: bool = True,
    hz: float = CONTROL_HZ,
    rule: HandRule = HandRule(),
    drop_unplayable: bool = False,
    split_key: int = MIDDLE_C_KEY,
    hands: HandsOption = HandsOption(),
    convention: str = DEFAULT_CONVENTION,
) -> PianoRoll:
    """The whole piece as one piano roll (no length limit; see `split_clips`).

    Args:
        performance: events from a reader.
        name: the roll's name (default: the performance's title).
        stretch_factor: tempo stretch, times multiplied by it (2.0 = half speed).
        semitones: transposition.
        trim_silence: start at the first note.
        hz: control rate.
        rule: hand limits for the hand split.
        drop_unplayable: drop notes neither hand can take (else kept; see `hands`).
        split_key: notes the source gives no hand prefer the right hand from this key up.
        hands: who plays (`HandsOption`: one hand only, or a split point that overrides the
            source's hands and `split_key`).
        convention: how times become steps: 'robopianist' (default) or 'nearest' (see the
            module docstring).

    Returns:
        PianoRoll with keys [steps, 88], sustain [steps], right_hand [steps, 88].

    Raises:
        MusicError: a transposed note leaves the keyboard, bad stretch, or no notes.
    """
    return draw_roll(performance, name, stretch_factor=stretch_factor, semitones=semitones,
                     trim_silence=trim_silence, hz=hz, rule=rule, drop_unplayable=drop_unplayable,
                     split_key=split_key, hands=hands, convention=convention)[0]


def draw_roll(
    performance: Performance, name: str = "", *, stretch_factor: float = 1.0, semitones: int = 0,
    trim_silence: bool = True, hz: float = CONTROL_HZ, rule: HandRule = HandRule(),
    drop_unplayable: bool = False, split_key: int = MIDDLE_C_KEY,
    hands: HandsOption = HandsOption(), convention: str = DEFAULT_CONVENTION,
) -> tuple[PianoRoll, int]:
    """`to_piano_roll` that also says how many notes it dropped: (roll, dropped notes)."""
    if not performance.notes:
        raise MusicError(f"{name or performance.source or 'piece'}: no notes to draw")
    if semitones:
        performance = transpose(performance, semitones)
    check_range(performance, name or performance.source or "piece")
    if trim_silence:
        performance = trim_leading_silence(performance)
    if stretch_factor != 1.0:
        performance = stretch(performance, stretch_factor)
    segments, pedal, steps = quantize_steps(performance, hz, convention)
    if hands.split_key is not None:
        segments = [dataclasses.replace(s, hand=None) for s in segments]
        split_key = hands.split_key
    segments, dropped = assign_hands(segments, rule, drop=drop_unplayable, split_key=split_key,
                                     only=hands.only)
    roll = segments_to_roll(name or performance.title, segments, pedal, steps,
                            title=performance.title, composer=performance.composer,
                            source=performance.source)
    return roll, dropped


def _crossings(roll: PianoRoll) -> np.ndarray:
    """Held notes crossing each step boundary: int [steps + 1]; entry c counts keys down at c-1 and c."""
    held = np.zeros(roll.num_steps + 1, dtype=np.int64)
    held[1:-1] = (roll.keys[:-1] & roll.keys[1:]).sum(axis=1)
    return held


def split_clips(
    roll: PianoRoll, max_steps: int = MAX_CLIP_STEPS, *, lookback: int = 110,
    min_steps: int = 20, min_notes: int = 8,
) -> list[PianoRoll]:
    """Cuts a roll into clips of at most `max_steps` steps, named `<name>/<index>`.

    Each cut is placed in the last `lookback` steps of the window where the fewest held notes are
    cut through (the latest such step). Each clip's leading silence is trimmed; clips shorter than
    `min_steps` or with fewer than `min_notes` strikes are left out.

    Args:
        roll: the whole piece, keys [T, 88].
        max_steps: clip length limit (RP1M: 550 = 27.5 s).

    Returns:
        The clips in order, each [<= max_steps, 88], with the hand split and provenance kept.
    """
    crossing = _crossings(roll)
    clips: list[PianoRoll] = []
    start, index = 0, 0
    while start < roll.num_steps:
        first = np.flatnonzero(roll.keys[start:].any(axis=1))
        if not len(first):
            break
        start += int(first[0])
        stop = start + max_steps
        if stop < roll.num_steps:
            window = crossing[max(stop - lookback, start + 1):stop + 1]
            stop = stop - int(np.argmin(window[::-1]))
        stop = min(stop, roll.num_steps)
        clip = PianoRoll(
            f"{roll.name}/{index:02d}", roll.keys[start:stop], roll.sustain[start:stop],
            title=roll.title, composer=roll.composer, source=roll.source,
            right_hand=None if roll.right_hand is None else roll.right_hand[start:stop],
        )
        if clip.num_steps >= min_steps and clip.num_notes >= min_notes:
            clips.append(clip)
            index += 1
        start = stop
    return clips
