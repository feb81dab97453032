"""A catch-up that waits for another's write lock yields to it instead of failing.

Eight writers catching up one ``projections.db`` used to fail now and then under load:
SQLite's busy wait is not fair, and one waiter could starve past the connection's
timeout although the holder was applying its events. A waiting catch-up now looks at
the read models between short tries: when the holder has brought them to the log's head
as it was when the wait began, there is nothing left to do."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator

import pytest
from arms_ledger.projections import engine, runner
from arms_ledger.projections.source import PAGE, LogReader, LogRow

from tests.histories import EVERY_TYPE, decode
from tests.integration.projection_tables import assert_same_read_models


class Gated:
    """A LogReader whose pages wait for ``release``: the catch-up reading it holds the
    write lock of the read models until then."""

    def __init__(self, log: LogReader) -> None:
        self.log = log
        self.reading = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str):
        return getattr(self.log, name)

    def pages(self, after: int, upto: int, size: int = PAGE) -> Iterator[list[LogRow]]:
        self.reading.set()
        assert self.release.wait(60)
        yield from self.log.pages(after, upto, size)


@pytest.fixture
def polls(monkeypatch) -> list[float]:
    """When the waiting catch-up looked at the read models (each ``position_of``)."""
    seen: list[float] = []
    position_of = runner.position_of

    def counted(conn: sqlite3.Connection) -> int | None:
        seen.append(time.monotonic())
        return position_of(conn)

    monkeypatch.setattr(runner, "position_of", counted)
    return seen


def _caught_up_then_appended(ledger, ledger_dir):
    ledger.append(decode(EVERY_TYPE[:10]))
    engine.live(ledger.reader, ledger_dir).close()
    ledger.append(decode(EVERY_TYPE[10:18]))
    return ledger_dir / engine.PROJECTIONS_DB


def test_a_waiting_catch_up_returns_when_the_holder_reached_its_head(
    ledger, ledger_dir, tmp_path, polls
):
    path = _caught_up_then_appended(ledger, ledger_dir)
    gated = Gated(ledger.reader)

    def hold() -> None:
        conn = engine.connect(path)
        runner.catch_up(gated, conn)
        conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert gated.reading.wait(30)  # the holder is inside its transaction
    # The waiter's own busy timeout is far shorter than the holder's transaction.
    waiter = sqlite3.connect(
        path, timeout=0.05, isolation_level=None, check_same_thread=False
    )
    waited: list[int | BaseException] = []

    def wait() -> None:
        try:
            waited.append(runner.catch_up(ledger.reader, waiter))
        except BaseException as error:  # reported by the assertion below
            waited.append(error)

    thread = threading.Thread(target=wait)
    thread.start()
    deadline = time.monotonic() + 30
    try:
        while len(polls) < 5 and not waited and time.monotonic() < deadline:
            time.sleep(0.01)  # until it has tried a few times, and waits
        assert len(polls) >= 5 and not waited
    finally:
        gated.release.set()
        holder.join(30)
        thread.join(30)
    assert waited == [0]  # nothing left: the holder applied the new events
    assert runner.position_of(waiter) == ledger.reader.head()
    engine.rebuild(ledger.reader, tmp_path / "rebuilt.db")
    rebuilt = engine.connect(tmp_path / "rebuilt.db")
    assert_same_read_models(waiter, rebuilt)
    waiter.close()
    rebuilt.close()


def test_a_holder_that_makes_no_progress_fails_the_waiter_in_the_end(
    ledger, ledger_dir, monkeypatch
):
    path = _caught_up_then_appended(ledger, ledger_dir)
    monkeypatch.setattr(runner, "STUCK", 0.3)
    holder = engine.connect(path)
    holder.execute("BEGIN IMMEDIATE")
    waiter = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        runner.catch_up(ledger.reader, waiter)
    assert time.monotonic() - started >= 0.3
    holder.execute("ROLLBACK")
    assert runner.catch_up(ledger.reader, waiter) == 8  # and it works once released
    assert waiter.execute("PRAGMA busy_timeout").fetchone() == (50,)
    holder.close()
    waiter.close()
