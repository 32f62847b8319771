"""A nanosecond-resolution timer."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Self

__all__ = ["Timer"]


class Timer:
    """Measure elapsed time with `time.perf_counter_ns`.

    Use it as a context manager (``with Timer() as t: ...``) or call `start`
    and `stop` (both return the timer, so ``Timer().start()`` chains).
    Reading ``elapsed_*`` while the timer runs raises `RuntimeError`.
    """

    def __init__(self) -> None:
        self._start = 0
        self._end = 0
        self._running = False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Self:
        """Start (or restart) the timer."""
        self._running = True
        self._start = time.perf_counter_ns()
        return self

    def stop(self) -> Self:
        """Stop the timer; the elapsed time is measured up to this call."""
        self._end = time.perf_counter_ns()
        self._running = False
        return self

    @property
    def elapsed_ns(self) -> int:
        """Elapsed time in nanoseconds.

        Raises:
            RuntimeError: If the timer is still running.
        """
        if self._running:
            raise RuntimeError("Timer is still running!")
        return self._end - self._start

    @property
    def elapsed_ms(self) -> float:
        """Elapsed time in milliseconds (see `elapsed_ns`)."""
        return self.elapsed_ns / 1e6

    @property
    def elapsed_s(self) -> float:
        """Elapsed time in seconds (see `elapsed_ns`)."""
        return self.elapsed_ns / 1e9
