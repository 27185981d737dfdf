"""Where events meet the reconcile loop.

Event callbacks (IDL thread) mark keys dirty; the loop thread takes them in batches. A burst of
events is gathered for up to `debounce` seconds after the first one so 500 binds make one
reconcile, not 500; but a batch is also due as soon as no new event came for `QUIET` seconds, so
a lone event (one VM booting) is handled at once rather than after the whole debounce. A full
resync is requested by the timer, by a reconnect, by SIGHUP or SIGUSR1, and runs through the
same path with `full=True`. `wake()` ends the loop's wait without a batch: something the loop
looks after between batches (FRR exited, a DB connection changed) wants a look now.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

QUIET = 0.01  # seconds without a new event after which a batch is due (capped by debounce)


@dataclass
class Batch:
    keys: set[Hashable] = field(default_factory=set)
    causes: Counter = field(default_factory=Counter)  # event name -> count
    full: bool = False
    reasons: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.keys and not self.full


class WorkQueue:
    def __init__(self, debounce: float, resync_interval: float,
                 clock: Callable[[], float] = time.monotonic):
        self.debounce = debounce
        self.resync_interval = resync_interval
        self._clock = clock
        self._cond = threading.Condition()
        self._pending = Batch()
        self._first_mark: float | None = None
        self._last_mark: float | None = None
        self._next_resync = clock() + resync_interval
        self._stopped = False
        self._woken = False

    def mark(self, keys: Iterable[Hashable], cause: str) -> None:
        with self._cond:
            self._pending.keys.update(keys)
            self._pending.causes[cause] += 1
            self._last_mark = self._clock()
            if self._first_mark is None:
                self._first_mark = self._last_mark
            self._cond.notify()

    def request_full(self, reason: str) -> None:
        with self._cond:
            self._pending.full = True
            self._pending.reasons.append(reason)
            self._last_mark = self._clock()
            if self._first_mark is None:
                self._first_mark = self._last_mark
            self._cond.notify()

    def wake(self) -> None:
        """get() returns now (None unless a batch is due): the loop's housekeeping has work."""
        with self._cond:
            self._woken = True
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def _due(self) -> float | None:
        """When the pending batch is due: `QUIET` after the last mark, at most `debounce`
        after the first one (None when nothing is pending)."""
        first, last = self._first_mark, self._last_mark
        if first is None or last is None:
            return None
        return min(first + self.debounce, last + min(QUIET, self.debounce))

    def _ready(self, now: float) -> bool:
        if now >= self._next_resync:
            return True
        due = self._due()
        return due is not None and now >= due

    def get(self, timeout: float | None = None) -> Batch | None:
        """Block until a batch is due (quiet or debounce elapsed, or resync time); None when
        stopped, woken (wake()) or at the timeout (None: no timeout)."""
        with self._cond:
            now = self._clock()
            deadline = None if timeout is None else now + timeout
            while not self._stopped:
                if self._ready(now):
                    if now >= self._next_resync:
                        self._pending.full = True
                        self._pending.reasons.append("periodic resync")
                    batch, self._pending = self._pending, Batch()
                    self._first_mark = self._last_mark = None
                    if batch.full:
                        self._next_resync = now + self.resync_interval
                    self._woken = False
                    return batch
                if self._woken:
                    self._woken = False
                    return None
                waits = [self._next_resync - now]
                due = self._due()
                if due is not None:
                    waits.append(due - now)
                if deadline is not None:
                    if now >= deadline:
                        return None
                    waits.append(deadline - now)
                self._cond.wait(max(0.0, min(waits)))
                now = self._clock()
        return None
