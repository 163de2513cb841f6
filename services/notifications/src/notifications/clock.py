"""The worker's sense of time, injectable so tests can run a day of retries in a second."""

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FastClock:
    """Starts at the real time and runs ``speed`` times faster than it (for tests)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._start = datetime.now(UTC)
        self._started = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._started) * self.speed)
