"""Hand split and playability rules for two hands.

The rule (`HandRule`, checked per control step on the final piano roll):
  1. every key is one of the 88;
  2. each hand holds at most `max_notes` (5) keys at once;
  3. the keys one hand holds at once span at most `max_span` (14) semitones, an octave and a
     whole tone - a ninth, which an adult hand (and the Shadow hand over 22.5 mm keys) reaches;
  4. the hands do not cross: every left-hand key is strictly below every right-hand key.

Assignment (`assign_hands`) walks the quantised notes in onset order - at one onset the outer
voices first (highest, lowest, next highest, ...), since melody and bass matter most - and gives
each note the hand its source names (part / staff / track), else the right hand from middle C up
and the left below. If that hand cannot take the note under the rule given the notes it already
holds, the other hand is tried; if neither can, the note goes to the preferred hand anyway
(`drop=False`, the roll stays exact) or is dropped (`drop=True`, the repertoire builder's
reduction). Because all the rules are pairwise between sounding notes or a count at the newest
onset, a greedy in onset order guarantees every step of the result obeys the rule when dropping.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import numpy as np

from mjx_piano.music.note_names import key_name, key_names, parse_key
from mjx_piano.music.roll import CONTROL_HZ, LOWEST_MIDI, NUM_KEYS, PianoRoll

MIDDLE_C_KEY = 60 - LOWEST_MIDI  # key index 39
HANDS_CHOICES = "auto | right | left | split-at-NOTE"


@dataclasses.dataclass(frozen=True)
class HandRule:
    """What one hand can play at once (see the module docstring)."""

    max_notes: int = 5
    max_span: int = 14


@dataclasses.dataclass(frozen=True)
class HandsOption:
    """Who plays a file's notes (`--hands`).

    Attributes:
        only: 'right' or 'left': that hand plays every note (a note it cannot take is
            unplayable); None: both hands.
        split_key: None: the hands the source names (part, staff, track), else the right hand
            from middle C up. A key index: the source's hands are ignored and notes prefer the
            right hand from this key up (a note the preferred hand cannot take goes to the
            other hand if it can).
    """

    only: str | None = None
    split_key: int | None = None

    @property
    def text(self) -> str:
        """The option as written on a command line (`parse_hands` reads it back)."""
        if self.only:
            return self.only
        return "auto" if self.split_key is None else f"split-at-{key_name(self.split_key)}"


def parse_hands(text: str) -> HandsOption:
    """Reads `auto`, `right`, `left` or `split-at-NOTE` (e.g. `split-at-C4`, `split-at-F#3`).

    Raises:
        ValueError: anything else (the message lists the choices).
    """
    if text in ("right", "left"):
        return HandsOption(only=text)
    if text == "auto":
        return HandsOption()
    if text.startswith("split-at-"):
        return HandsOption(split_key=parse_key(text[len("split-at-"):]))
    raise ValueError(f"hands {text!r}: choose {HANDS_CHOICES}")


@dataclasses.dataclass(frozen=True, order=True)
class Segment:
    """One key held over control steps [start, stop); hand 'left' | 'right' | None."""

    start: int
    stop: int
    key: int
    hand: str | None = None


def _outer_first(keys: Sequence[int]) -> list[int]:
    """Indices of `keys` ordered highest, lowest, 2nd highest, 2nd lowest, ..."""
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    result = []
    while order:
        result.append(order.pop())
        if order:
            result.append(order.pop(0))
    return result


def _fits(key: int, hand: str, held: dict[str, list[int]], rule: HandRule) -> bool:
    same = held[hand]
    other = held["left" if hand == "right" else "right"]
    if len(same) >= rule.max_notes:
        return False
    if same and max(max(same), key) - min(min(same), key) > rule.max_span:
        return False
    if other and (key <= max(other) if hand == "right" else key >= min(other)):
        return False
    return True


def assign_hands(
    segments: Sequence[Segment], rule: HandRule = HandRule(), *, drop: bool = False,
    split_key: int = MIDDLE_C_KEY, only: str | None = None,
) -> tuple[list[Segment], int]:
    """Gives every segment a hand; see the module docstring for the order and fallbacks.

    Args:
        segments: non-overlapping per key (one key is held by one note at a time).
        rule: the per-hand limits.
        drop: drop notes that neither hand can take (else they keep their preferred hand).
        split_key: notes without a hand prefer the right hand from this key up (default middle C).
        only: 'right' or 'left': every note goes to that hand (the other is never tried).

    Returns:
        (segments with `hand` set, sorted; number of dropped segments).
    """
    by_start: dict[int, list[Segment]] = {}
    for segment in segments:
        by_start.setdefault(segment.start, []).append(segment)
    sounding: list[Segment] = []
    result: list[Segment] = []
    dropped = 0
    for start in sorted(by_start):
        sounding = [s for s in sounding if s.stop > start]
        group = by_start[start]
        for i in _outer_first([s.key for s in group]):
            segment = group[i]
            held = {"left": [s.key for s in sounding if s.hand == "left"],
                    "right": [s.key for s in sounding if s.hand == "right"]}
            prefer = only or segment.hand or ("right" if segment.key >= split_key else "left")
            other = "left" if prefer == "right" else "right"
            if _fits(segment.key, prefer, held, rule):
                hand = prefer
            elif only is None and _fits(segment.key, other, held, rule):
                hand = other
            elif drop:
                dropped += 1
                continue
            else:
                hand = prefer
            placed = dataclasses.replace(segment, hand=hand)
            sounding.append(placed)
            result.append(placed)
    return sorted(result), dropped


def _hand_ok(row: np.ndarray, rule: HandRule) -> bool:
    keys = np.flatnonzero(row)
    return len(keys) <= rule.max_notes and (len(keys) == 0 or keys[-1] - keys[0] <= rule.max_span)


def playability_problems(roll: PianoRoll, rule: HandRule = HandRule(), limit: int = 5) -> list[str]:
    """The steps of `roll` that break the rule, in words (empty when playable).

    With `roll.right_hand` the recorded split is checked; without it, a step passes when some
    split point (left = keys below it) satisfies the rule.

    Args:
        roll: keys [steps, 88] (+ optional right_hand [steps, 88]).
        rule: the per-hand limits.
        limit: stop after this many problems.
    """
    if roll.keys.shape[1] != NUM_KEYS:
        return [f"{roll.keys.shape[1]} keys instead of {NUM_KEYS}"]
    if roll.right_hand is not None:
        return _split_problems(roll.keys, roll.right_hand, rule, limit)
    seen: dict[bytes, str | None] = {}

    def problem(step: int) -> str | None:
        token = roll.keys[step].tobytes()
        if token not in seen:
            seen[token] = _step_problem(roll.keys[step], None, rule)
        return seen[token]

    found = ((int(step), problem(step)) for step in np.flatnonzero(roll.keys.any(axis=1)))
    return _runs(((step, text) for step, text in found if text is not None), limit)


def _split_problems(keys: np.ndarray, right: np.ndarray, rule: HandRule, limit: int) -> list[str]:
    """Vectorised check of a recorded split: keys, right bool [steps, 88]."""
    left = keys & ~right
    bad = np.zeros(keys.shape[0], dtype=bool)
    lowest, highest = [], []
    for mask in (left, right):
        count = mask.sum(axis=1)
        low = np.argmax(mask, axis=1)
        high = NUM_KEYS - 1 - np.argmax(mask[:, ::-1], axis=1)
        bad |= (count > rule.max_notes) | ((count > 0) & (high - low > rule.max_span))
        lowest.append(np.where(count > 0, low, NUM_KEYS))
        highest.append(np.where(count > 0, high, -1))
    bad |= (highest[0] >= lowest[1]) & (highest[0] >= 0) & (lowest[1] < NUM_KEYS)
    found = ((int(step), _step_problem(keys[step], right[step], rule))
             for step in np.flatnonzero(bad))
    return _runs(found, limit)


def _runs(found: Iterable[tuple[int, str]], limit: int) -> list[str]:
    """The first `limit` problems of (step, text) pairs in step order, consecutive steps with
    one text merged: 'steps 20-39 (1.00-1.95 s): ...' or 'step 5 (0.25 s): ...'."""
    runs: list[list] = []
    for step, text in found:
        if runs and runs[-1][1] == step - 1 and runs[-1][2] == text:
            runs[-1][1] = step
        elif len(runs) == limit:
            break
        else:
            runs.append([step, step, text])
    return [(f"step {a} ({a / CONTROL_HZ:.2f} s)" if a == b else
             f"steps {a}-{b} ({a / CONTROL_HZ:.2f}-{b / CONTROL_HZ:.2f} s)") + f": {text}"
            for a, b, text in runs]


def _step_problem(row: np.ndarray, right: np.ndarray | None, rule: HandRule) -> str | None:
    keys = np.flatnonzero(row)
    if right is None:
        for split in range(len(keys) + 1):
            left_row = np.zeros_like(row)
            left_row[keys[:split]] = True
            if _hand_ok(left_row, rule) and _hand_ok(row & ~left_row, rule):
                return None
        return f"no split of {key_names(keys)} into two playable hands"
    left = row & ~right
    for name, hand_row in (("left", left), ("right", right)):
        if not _hand_ok(hand_row, rule):
            held = np.flatnonzero(hand_row)
            return f"{name} hand holds {len(held)} keys {key_names(held)}"
    if left.any() and right.any() and np.flatnonzero(left)[-1] >= np.flatnonzero(right)[0]:
        return (f"hands cross: left {key_names(np.flatnonzero(left))}, "
                f"right {key_names(np.flatnonzero(right))}")
    return None


def is_playable(roll: PianoRoll, rule: HandRule = HandRule()) -> bool:
    """True when no step of `roll` breaks the rule (see `playability_problems`)."""
    return not playability_problems(roll, rule, limit=1)
