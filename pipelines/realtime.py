"""Real-time mode's rule, and the Live tab's for each frame: per session, at most one run in
progress and one waiting; a newer request replaces the waiting one, so typing (or a camera)
never builds a backlog. Waiting costs no thread, only runs do, a few at a time. And the Live
tab's frame rate.

Written by hand: gradio's trigger_mode="always_last" coalesces keystrokes in the browser only,
an API client can fire any number of requests, and gradio's own queue neither supersedes a
session's older request nor says "busy"."""

import asyncio
import itertools
import threading
import time
from collections import OrderedDict, deque
from typing import TypeVar
from collections.abc import Callable

from anyio import to_thread

from pipelines.errors import UserError

T = TypeVar("T")


class Busy(UserError):
    """Too many sessions are waiting already: try again in a moment."""


class NewestOnly:
    """Awaited on the server's event loop (gradio's): a request waits there, holding no
    worker thread, and only `slots` runs at once take one (each then waits its turn on the
    model's run lock, with every other generation). A session beyond `sessions` waiting or
    running is told it is busy at once, rather than queued behind them all."""

    def __init__(self, slots: int = 2, sessions: int = 16):
        self.sessions = sessions
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Condition | None = None  # the loop's: _condition()
        self._free = slots
        self._newest: dict[str, int] = {}  # session -> ticket of its newest request
        self._running: set[str] = set()
        self._tickets = itertools.count()

    async def run(self, session: str, work: Callable[[], T]) -> T | None:
        """Run `work` on a worker thread when this session's previous run is done and a slot
        is free, unless a newer request of the session arrives first: then return None at
        once (superseded). Raises Busy when `sessions` others are waiting or running."""
        changed = self._condition()
        async with changed:
            if session not in self._newest and len(self._newest) >= self.sessions:
                raise Busy(f"Busy: {len(self._newest)} others are generating right now; "
                           "try again in a moment.")
            ticket = next(self._tickets)
            self._newest[session] = ticket
            changed.notify_all()  # an older request still waiting is stale now
            try:
                await changed.wait_for(
                    lambda: self._newest.get(session) != ticket
                    or (session not in self._running and self._free > 0))
            except BaseException:  # cancelled (the client went away): never count it again
                self._forget(changed, session, ticket)
                raise
            if self._newest.get(session) != ticket:
                return None
            self._running.add(session)
            self._free -= 1
        try:
            return await to_thread.run_sync(work)
        finally:
            async with changed:
                self._running.discard(session)
                self._free += 1
                self._forget(changed, session, ticket)

    def _condition(self) -> asyncio.Condition:
        """The condition of the running loop: gradio serves a demo from one loop, but a demo
        launched again (or a test) runs on another, and an asyncio.Condition is bound to one."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._changed = loop, asyncio.Condition()
        return self._changed

    def _forget(self, changed: asyncio.Condition, session: str, ticket: int) -> None:
        """The request is done (or gone); with nothing newer from its session, the session
        is forgotten. Called holding `changed`."""
        if self._newest.get(session) == ticket:
            del self._newest[session]
        changed.notify_all()


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
