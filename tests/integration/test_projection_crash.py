"""A catch-up killed midway ends correct.

``catch_up`` commits the rows and the position together every ``commit_every`` events,
so a catch-up that dies in the middle of a transaction leaves the read models at the last
commit, and the next catch-up resumes from there: no event is applied twice or skipped,
and the result equals a rebuild, table for table and view for view.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from arms_ledger.cli.demo import SCENARIO
from arms_ledger.cli.write import load_history
from arms_ledger.ledger.app.directory import create
from arms_ledger.projections import engine

from tests.integration.projection_tables import assert_same_read_models

# Once per store: the crashed process is a reader of the log (the read models are SQLite
# on either store; on PostgreSQL it holds a connection to the server when it dies).
# Crash tests: a catch-up killed by SIGKILL in a child process, an exception midway.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("store")]

ROOT = Path(__file__).resolve().parents[2]
COMMIT_EVERY = 100


class Crash(Exception):
    pass


def stored_position(conn) -> int:
    return conn.execute("SELECT position FROM projection").fetchone()[0]


def assert_equals_rebuild(ledger, conn, directory: Path) -> None:
    engine.rebuild(ledger.reader, directory / "rebuilt.db")
    rebuilt = engine.connect(directory / "rebuilt.db")
    try:
        assert stored_position(conn) == stored_position(rebuilt) == ledger.head()
        assert_same_read_models(conn, rebuilt)
    finally:
        rebuilt.close()


def test_an_exception_midway_rolls_back_to_the_last_commit_then_a_catch_up_ends_correct():
    """An exception raised while a transaction is in flight (after event 450 of 917)
    propagates, leaves the position at the last commit (400), and a second catch-up
    then equals a rebuild."""
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        ledger = create(tmp / "ledger")
        conn = engine.connect(tmp / "projections.db")
        try:
            assert load_history(ledger, SCENARIO) == ledger.head() == 917
            seen: list[int] = []

            def crash_after_450(position: int) -> None:
                seen.append(position)
                if position > 450:
                    raise Crash(position)

            with pytest.raises(Crash):
                engine.catch_up(
                    ledger.reader, conn, commit_every=COMMIT_EVERY, progress=crash_after_450
                )
            assert seen == list(range(1, 452))
            assert stored_position(conn) == 400
            assert conn.execute("SELECT max(position) FROM audit_log").fetchone()[0] == 400

            assert (
                engine.catch_up(ledger.reader, conn, commit_every=COMMIT_EVERY) == 917 - 400
            )
            assert_equals_rebuild(ledger, conn, tmp)
        finally:
            conn.close()
            ledger.close()


CATCH_UP_THEN_DIE = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from arms_ledger.ledger.app.directory import open_ledger
    from arms_ledger.projections import engine

    directory = Path(sys.argv[1])
    ledger = open_ledger(directory)
    conn = engine.connect(directory / engine.PROJECTIONS_DB)

    def die(position):
        if position >= 550:
            os.kill(os.getpid(), signal.SIGKILL)

    engine.catch_up(ledger.reader, conn, commit_every=100, progress=die)
    print("not killed")
    """
)


def test_a_catch_up_killed_by_sigkill_resumes_from_its_last_commit_and_ends_correct():
    """A process killed (SIGKILL) at event 550, in the middle of its sixth transaction,
    leaves the read models at position 500; catching up again equals a rebuild."""
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        ledger = create(tmp / "ledger")
        try:
            assert load_history(ledger, SCENARIO) == 917
            died = subprocess.run(
                [sys.executable, "-c", CATCH_UP_THEN_DIE, str(tmp / "ledger")],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert died.returncode == -signal.SIGKILL, died.stderr
            assert "not killed" not in died.stdout

            conn = engine.connect(tmp / "ledger" / engine.PROJECTIONS_DB)
            try:
                assert stored_position(conn) == 500
                assert engine.catch_up(ledger.reader, conn) == 917 - 500
                assert_equals_rebuild(ledger, conn, tmp)
            finally:
                conn.close()
        finally:
            ledger.close()
