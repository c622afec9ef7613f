"""Circuit breaker: stop sending to an upstream that keeps failing, probe it again later."""

from __future__ import annotations

import time

CLOSED, HALF_OPEN, OPEN = 0, 1, 2


class Breaker:
    """Closed → open after ``failures`` consecutive failures; open → half-open after ``reset_s``;
    half-open closes on the first success and re-opens on the first failure. Half-open, one request
    at a time is admitted as the trial (``admit``): the others wait for its result, so an upstream
    that comes back is not met by every request queued meanwhile."""

    __slots__ = ("failures", "reset_s", "_count", "_opened_at", "_trial_until", "_clock")

    def __init__(self, failures: int = 3, reset_s: float = 10.0, clock=time.monotonic):
        self.failures = failures
        self.reset_s = reset_s
        self._count = 0
        self._opened_at: float | None = None
        self._trial_until: float | None = None
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

    def admit(self) -> bool:
        """May this request be sent now? As ``available``, but half-open only one request is let
        through until ``success`` or ``failure`` reports on it; a trial that never reports (its
        request ended before reaching the upstream) gives way to the next after ``reset_s``."""
        opened = self._opened_at
        if opened is None:
            return True
        now = self._clock()
        if now - opened < self.reset_s:
            return False
        if self._trial_until is not None and now < self._trial_until:
            return False
        self._trial_until = now + self.reset_s
        return True

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
        self._opened_at = self._trial_until = None
        return was_open

    def failure(self) -> None:
        self._count += 1
        if self._opened_at is not None or self._count >= self.failures:
            self._opened_at = self._clock()  # (re-)open; half-open trial failed too
            self._trial_until = None
