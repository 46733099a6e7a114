"""pipelines.realtime.NewestOnly on an event loop: a session's newer request supersedes its
waiting one, waiting takes no worker thread, only `slots` runs at once take one, and a crowd
beyond `sessions` is told it is busy at once."""

import asyncio
import threading

import pytest

from pipelines.realtime import Busy, NewestOnly


def test_waiting_sessions_hold_no_thread_and_only_the_slots_run():
    """40 sessions wait behind two held runs: still two threads at work, the rest answered
    busy at once, and every admitted request ends with its result once the runs go on."""
    newest = NewestOnly(slots=2, sessions=24)
    release, running, most = threading.Event(), [0], [0]
    lock = threading.Lock()

    def work(session):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(timeout=60)
        with lock:
            running[0] -= 1
        return session

    async def crowd():
        tasks = [asyncio.create_task(newest.run(f"s{i}", lambda i=i: work(i)))
                 for i in range(40)]
        await asyncio.sleep(0.5)
        threads_while_waiting = threading.active_count()
        release.set()
        done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
        return threads_while_waiting, done

    before = threading.active_count()
    threads, done = asyncio.run(crowd())
    assert most[0] == 2 and threads <= before + 2 + 1  # the two runs (and anyio's spare)
    busy = [r for r in done if isinstance(r, Busy)]
    assert len(busy) == 40 - 24 and "try again" in str(busy[0])
    assert sorted(r for r in done if not isinstance(r, Exception)) == list(range(24))


def test_a_newer_request_of_a_session_supersedes_its_waiting_one():
    newest = NewestOnly(slots=1)
    release = threading.Event()

    async def session():
        first = asyncio.create_task(newest.run("a", lambda: release.wait(30) and "first"))
        await asyncio.sleep(0.2)
        second = asyncio.create_task(newest.run("a", lambda: "second"))
        await asyncio.sleep(0.1)
        third = asyncio.create_task(newest.run("a", lambda: "third"))
        assert await asyncio.wait_for(second, 10) is None  # superseded, answered at once
        release.set()
        return await first, await third

    assert asyncio.run(session()) == ("first", "third")


def test_a_cancelled_wait_is_forgotten():
    """A client that goes away while its request waits never counts against the bound."""
    newest = NewestOnly(slots=1, sessions=1)
    release = threading.Event()

    async def run():
        held = asyncio.create_task(newest.run("a", lambda: release.wait(30)))
        await asyncio.sleep(0.2)
        with pytest.raises(Busy):
            await newest.run("b", lambda: None)  # "a" is running: the one session allowed
        waiting = asyncio.create_task(newest.run("a", lambda: "later"))
        await asyncio.sleep(0.1)
        waiting.cancel()
        release.set()
        await held
        return await newest.run("c", lambda: "c ran")

    assert asyncio.run(run()) == "c ran"
