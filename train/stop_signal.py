"""Preemption: SIGTERM (what cloud GPUs and TPU slices send) or SIGINT asks a run to stop.

Inside `catch_stop_signals()` the first such signal only sets a flag: the training loop finishes
its current iteration, writes a checkpoint and returns, so `--resume` continues bit-exactly. A
second signal stops at once (KeyboardInterrupt), for a user who means it. SIGINT is caught even
where the parent shell ignored it (background jobs), so that `kill -INT` stops a background run.
Handlers can only be set in the main thread; elsewhere the context does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """Which signal asked the run to stop (None while none did)."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def __bool__(self) -> bool:
        return self.signal_name is not None

    def handle(self, signum: int, _frame: object) -> None:
        """The signal handler: the first signal is remembered, a second one interrupts."""
        if self.signal_name is not None:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name


@contextlib.contextmanager
def catch_stop_signals() -> Iterator[StopRequest]:
    """Installs the handlers for the block; restores the previous ones after it."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {s: signal.signal(s, request.handle) for s in SIGNALS}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
