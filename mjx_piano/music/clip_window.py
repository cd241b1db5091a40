"""A part of a clip, named like a clip: `NAME@START:STOP` is control steps [START, STOP) of NAME.

`bach/bwv112.5/00@0:100` is the first 100 control steps (5 s) of that clip; either bound may be
left out (`NAME@:100`, `NAME@200:`). Every command that takes a piece name takes a windowed one,
because the loaders (`load_clip`, `train.envs`) resolve the window here.
"""

from __future__ import annotations

import dataclasses
import re

from mjx_piano.music.roll import PianoRoll

SEPARATOR = "@"
_BOUNDS = re.compile(r"^(\d*):(\d*)$")


@dataclasses.dataclass(frozen=True)
class ClipWindow:
    """A parsed windowed name.

    Attributes:
        base: the clip's own name.
        start: first control step kept.
        stop: first control step dropped; None = the clip's end.
    """

    base: str
    start: int = 0
    stop: int | None = None


def parse_window(name: str) -> ClipWindow:
    """Splits `NAME@START:STOP` (or a plain name) into its parts.

    Raises:
        ValueError: the part after '@' is not START:STOP with non-negative integers, or
            STOP <= START.
    """
    base, separator, bounds = name.rpartition(SEPARATOR)
    if not separator:
        return ClipWindow(name)
    match = _BOUNDS.match(bounds)
    if not base or not match:
        raise ValueError(f"piece {name!r}: a window is NAME{SEPARATOR}START:STOP in control "
                         f"steps, e.g. bach/bwv356/00{SEPARATOR}0:100")
    start = int(match.group(1) or 0)
    stop = int(match.group(2)) if match.group(2) else None
    if stop is not None and stop <= start:
        raise ValueError(f"piece {name!r}: the window's stop ({stop}) must be after its "
                         f"start ({start})")
    return ClipWindow(base, start, stop)


def cut(roll: PianoRoll, window: ClipWindow, name: str) -> PianoRoll:
    """Control steps [window.start, window.stop) of `roll`, renamed `name`.

    Args:
        roll: the whole clip, keys [T, 88].
        window: the steps to keep (a stop past T is an error, not a silent shorter clip).
        name: the windowed name.

    Returns:
        keys [stop - start, 88], sustain and hand split cut alike.

    Raises:
        ValueError: the window reaches past the clip's end.
    """
    stop = roll.num_steps if window.stop is None else window.stop
    if window.start >= roll.num_steps or stop > roll.num_steps:
        raise ValueError(f"piece {name!r}: clip {roll.name!r} has {roll.num_steps} control "
                         f"steps, so a window must lie within 0:{roll.num_steps}")
    span = slice(window.start, stop)
    right = None if roll.right_hand is None else roll.right_hand[span]
    return dataclasses.replace(roll, name=name, keys=roll.keys[span], sustain=roll.sustain[span],
                               right_hand=right)
