"""Circuit breaker: stop sending to an upstream that keeps failing, probe it again later."""

from __future__ import annotations

import time

CLOSED, HALF_OPEN, OPEN = 0, 1, 2


class Breaker:
    """Closed → open after ``failures`` consecutive failures; open → half-open after ``reset_s``;
    half-open closes on the first success and re-opens on the first failure."""

    __slots__ = ("failures", "reset_s", "_count", "_opened_at", "_clock")

    def __init__(self, failures: int = 3, reset_s: float = 10.0, clock=time.monotonic):
        self.failures = failures
        self.reset_s = reset_s
        self._count = 0
        self._opened_at: float | None = None
        self._clock = clock

    @property
    def state(self) -> int:
        if self._opened_at is None:
            return CLOSED
        return HALF_OPEN if self.available() else OPEN

    def available(self) -> bool:
        """May a request be sent now (closed or half-open, that is ``state != OPEN``)?"""
        opened = self._opened_at
        return opened is None or self._clock() - opened >= self.reset_s

    def half_open_in(self) -> float | None:
        """Seconds until the open circuit turns half-open, or None when it is not open."""
        opened, now = self._opened_at, self._clock()
        if opened is None or now - opened >= self.reset_s:
            return None
        return max(0.001, opened + self.reset_s - now)

    def success(self) -> bool:
        """Record a success; True when the circuit was open or half-open (it is closed now)."""
        was_open = self._opened_at is not None
        self._count = 0
        self._opened_at = None
        return was_open

    def failure(self) -> None:
        self._count += 1
        if self._opened_at is not None or self._count >= self.failures:
            self._opened_at = self._clock()  # (re-)open; half-open trial failed too
