"""Real-time mode's rule, and the Live tab's for each frame: per session, at most one run in
progress and one waiting; a newer request replaces the waiting one, so typing (or a camera)
never builds a backlog. And the Live tab's frame rate.

Written by hand: gradio's trigger_mode="always_last" coalesces keystrokes in the browser only,
and an API client can fire any number of requests."""

import itertools
import threading
import time
from collections import OrderedDict, deque
from typing import Callable, TypeVar

T = TypeVar("T")


class NewestOnly:
    def __init__(self):
        self._changed = threading.Condition()
        self._newest: dict[str, int] = {}  # session -> ticket of its newest request
        self._running: set[str] = set()
        self._tickets = itertools.count()

    def run(self, session: str, work: Callable[[], T]) -> T | None:
        """Run `work` when this session's previous run is done, unless a newer request of the
        session arrives first: then return None at once (superseded)."""
        with self._changed:
            ticket = next(self._tickets)
            self._newest[session] = ticket
            self._changed.notify_all()  # an older request still waiting is stale now
            self._changed.wait_for(lambda: session not in self._running
                                   or self._newest[session] != ticket)
            if self._newest[session] != ticket:
                return None
            self._running.add(session)
        try:
            return work()
        finally:
            with self._changed:
                self._running.discard(session)
                if self._newest.get(session) == ticket:
                    del self._newest[session]  # nothing newer waits: forget the session
                self._changed.notify_all()


class FrameRate:
    """Frames per second per session, over the frames of the last few seconds: a live stream's
    rate as its user sees it (waits for the model included), not one run's inverse.

    Written by hand: gradio reports no rate for a stream. A pause longer than the window (the
    stream stopped and started again) starts the count afresh. At most `sessions` sessions are
    kept, the least recently seen dropped first, so abandoned tabs cost nothing."""

    def __init__(self, window: float = 5.0, sessions: int = 256):
        self.window, self.sessions = window, sessions
        self._lock = threading.Lock()
        self._times: OrderedDict[str, deque] = OrderedDict()

    def tick(self, session: str, now: float | None = None) -> float | None:
        """Count a frame shown now; the session's rate, or None until it has two frames."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._times.pop(session, deque())
            self._times[session] = times  # most recently seen last
            times.append(now)
            while now - times[0] > self.window:
                times.popleft()
            while len(self._times) > self.sessions:
                self._times.popitem(last=False)
            if len(times) < 2 or now <= times[0]:
                return None
            return (len(times) - 1) / (now - times[0])
