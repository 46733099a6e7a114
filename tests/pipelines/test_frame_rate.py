"""The Live tab's frame rate, per session. No model needed."""

import pytest

from pipelines.realtime import FrameRate


def test_the_rate_counts_a_sessions_recent_frames():
    rate = FrameRate(window=5)
    assert rate.tick("a", now=10.0) is None  # one frame: no rate yet
    assert rate.tick("a", now=10.5) == pytest.approx(2.0)
    assert rate.tick("a", now=11.0) == pytest.approx(2.0)
    assert rate.tick("b", now=11.0) is None  # another session counts on its own


def test_a_pause_longer_than_the_window_starts_afresh():
    rate = FrameRate(window=5)
    for now in (0.0, 0.25, 0.5):
        rate.tick("a", now=now)
    assert rate.tick("a", now=60.0) is None  # the stream stopped and started again
    assert rate.tick("a", now=61.0) == pytest.approx(1.0)


def test_it_keeps_a_bounded_number_of_sessions():
    rate = FrameRate(sessions=2)
    for session in "abc":
        rate.tick(session, now=0.0)
    assert rate.tick("a", now=1.0) is None  # the least recently seen was dropped
    assert rate.tick("c", now=1.0) == pytest.approx(1.0)
