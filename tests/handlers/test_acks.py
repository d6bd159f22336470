"""Acks first: the work after an ack waits while other requests' acks are due, at most for its patience."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from handlers.acks import AcksFirst


def test_an_answer_waits_until_no_ack_is_due() -> None:
    acks = AcksFirst(patience_s=30)
    ran = threading.Event()
    try:
        with acks.due():
            acks.after_ack(ran.set)
            with acks.due():
                assert acks.pending == 2
            assert not ran.wait(0.1), "the answer ran while an ack was still due"
        assert ran.wait(5)
        assert acks.pending == 0
    finally:
        acks.close()


def test_with_nothing_due_an_answer_runs_at_once() -> None:
    acks = AcksFirst(patience_s=30)
    ran = threading.Event()
    try:
        started = time.monotonic()
        acks.after_ack(ran.set)
        assert ran.wait(5)
        assert time.monotonic() - started < 1
    finally:
        acks.close()


def test_a_steady_stream_of_acks_delays_an_answer_by_the_patience_at_most() -> None:
    acks = AcksFirst(patience_s=0.2)
    ran = threading.Event()
    try:
        with acks.due():  # never quiet while the answer waits
            started = time.monotonic()
            acks.after_ack(ran.set)
            assert ran.wait(5)
            waited = time.monotonic() - started
        assert 0.15 <= waited < 2
    finally:
        acks.close()


def test_a_failed_answer_is_logged_and_the_pool_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    acks = AcksFirst()
    ran = threading.Event()

    def broken() -> None:
        raise RuntimeError("boom")

    caplog.set_level(logging.ERROR, logger="rollback_bot.listeners")
    try:
        acks.after_ack(broken)
        acks.after_ack(ran.set)
        assert ran.wait(5)
    finally:
        acks.close()
    assert any("an answer failed after its ack" in r.getMessage() for r in caplog.records)


def test_close_finishes_the_answers_handed_over() -> None:
    acks = AcksFirst(threads=1)
    done: list[int] = []
    for i in range(3):
        acks.after_ack(lambda i=i: (time.sleep(0.02), done.append(i)))
    acks.close()
    assert done == [0, 1, 2]


def test_due_is_released_when_the_transport_fails() -> None:
    acks = AcksFirst()
    try:
        with pytest.raises(OSError), acks.due():
            raise OSError("the socket went away")
        assert acks.pending == 0
        assert acks.wait_quiet(time.monotonic())
    finally:
        acks.close()
