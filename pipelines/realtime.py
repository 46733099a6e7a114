"""Real-time mode's rule: per session, at most one run in progress and one waiting; a newer
request replaces the waiting one, so typing never builds a backlog.

Written by hand: gradio's trigger_mode="always_last" coalesces keystrokes in the browser only,
and an API client can fire any number of requests."""

import itertools
import threading
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
