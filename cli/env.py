"""What every command shares, and the one way to reach it: ``pass_env``.

The root group builds an ``Env`` from --ledger and --store; every command that touches
the ledger takes it with ``@pass_env``. This module imports nothing from the rest of
``cli``, so any command module can import it. It imports the ledger and the read side
only when a command first asks for them, so that ``--help`` loads neither.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import sqlite3

    from arms_ledger.ledger.app.application import Ledger
    from arms_ledger.ledger.store.reading import LogReading, SQLiteLog
    from arms_ledger.projections.source import LogReader

# boundary.CLOCK_OVERRIDE, read here without importing the ledger.
CLOCK_OVERRIDE = "ARMS_LEDGER_ALLOW_CLOCK"


class Env:
    """What every command shares: where the ledger is, opened on first use.

    ``store`` is where a ledger created by this command keeps its events (``None``: the
    default); an existing ledger keeps the store it was created with, and a ``--store``
    given on the command line must name that one.
    """

    def __init__(self, path: Path, store: str | None = None, store_given: bool = False):
        self.path = path
        self.store = store
        self.store_given = store_given
        self.allow_clock = bool(os.environ.get(CLOCK_OVERRIDE))
        self._ledger: Ledger | None = None
        self._log: SQLiteLog | None = None
        self._writable = False
        self._clock_checked = False

    @property
    def ledger(self) -> Ledger:
        """The ledger opened for reading: nothing is created or written, the signing key
        is not read; a clock behind the log's last stamp is warned about on stderr."""
        if self._ledger is None:
            self._ledger = self._open(write=False)
            self._warn_clock(self._ledger.recorder)
        return self._ledger

    @property
    def log(self) -> LogReader:
        """The log as the read models read it (``projections.source.LogReader``), checked
        and warned about as ``ledger`` is: the open ledger's, else a SQLite store read
        directly (``directory.open_log``: neither the application nor the eventsourcing
        library is loaded), else the ledger opened for reading."""
        if self._ledger is not None:
            return self._ledger.reader
        if self._log is None:
            from arms_ledger.ledger.app.directory import open_log

            log = open_log(self.path)
            if log is None:
                return self.ledger.reader
            try:
                self._check_store("sqlite")
            except BaseException:
                log.close()
                raise
            self._log = log
            self._warn_clock(log)
        return self._log

    def _warn_clock(self, log: LogReading) -> None:
        """Once per command: a clock behind the log's last stamp, on stderr."""
        from arms_ledger.ledger.app import boundary

        if self._clock_checked:
            return
        self._clock_checked = True
        skew = boundary.check_clock(log)
        if skew is not None and "behind" in skew:
            click.echo(
                f"Warning: {skew}; times judged now (deadlines, --as-of defaults) "
                "use this clock.",
                err=True,
            )

    @property
    def writer(self) -> Ledger:
        """The ledger opened for appending: refused for a read-only replica, a ledger
        that signs every append without its signing key, or a clock far from the log's
        last stamp (``boundary.check_clock``) unless ``allow_clock``."""
        from arms_ledger.ledger.app import boundary

        if not self._writable:
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None
            ledger = self._open(write=True)
            skew = boundary.check_clock(ledger.recorder)
            if skew is not None and not self.allow_clock:
                ledger.close()
                raise boundary.ClockSkew(
                    f"{skew}; nothing was written: set the clock right, or pass "
                    f"--allow-clock-skew (or set {boundary.CLOCK_OVERRIDE}=1) to stamp "
                    "by it anyway"
                )
            self._ledger, self._writable = ledger, True
        assert self._ledger is not None
        return self._ledger

    @staticmethod
    def now() -> Any:
        """The machine's clock (``ledger.domain.clock.now``, looked up at each call so
        that tests can set it)."""
        from arms_ledger.ledger.domain import clock

        return clock.now()

    def _open(self, *, write: bool) -> Ledger:
        from arms_ledger.ledger.app.directory import open_ledger

        ledger = open_ledger(self.path, write=write)
        try:
            self._check_store(ledger.store)
        except BaseException:
            ledger.close()
            raise
        return ledger

    def _check_store(self, store: str) -> None:
        """A --store given on the command line must name the store the ledger keeps its
        events in (``store``, as ledger.json has it)."""
        from arms_ledger.ledger.app.directory import store_url
        from arms_ledger.ledger.errors import LedgerError

        if self.store_given and self.store and store_url(self.store) != store:
            raise LedgerError(
                f"the ledger at {self.path} keeps its events in {store}, not "
                f"{self.store}; --store chooses the store of a new ledger (init, demo)"
            )

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
        if self._ledger is not None:
            self._ledger.close()

    def catch_up(self) -> None:
        """Bring the read models up to date; every appending command ends with this."""
        from arms_ledger.projections import engine

        engine.live(self.ledger.reader, self.path, _notice).close()

    def catch_up_after_append(self) -> None:
        """``catch_up`` once events are in the log. Whatever fails now, they were
        appended: the failure is one warning on stderr saying how to catch up, and the
        command still exits 0 (a retry would append the batch again)."""
        from arms_ledger.ledger.errors import LedgerError

        try:
            self.catch_up()
        except Exception as error:
            why = str(error) if isinstance(error, LedgerError) else repr(error)
            click.echo(
                "Warning: the events were appended, but the read models could not be "
                f"brought up to date: {why}; once that is fixed, `arms-ledger rebuild` "
                "(or any appending command) brings them up to date",
                err=True,
            )

    def read_models(
        self, cut: Any, answers: Iterable[str] | None = None, platform: str | None = None
    ) -> Any:
        """A connection to the read models the cut asks for (a context manager).

        Live read models that cannot be caught up in place (the directory or the file
        is not writable) are read as they are when they are current, else replayed
        into a temporary directory; stderr says so. ``answers``: the only tables the
        caller reads, so that a replay may start from a snapshot
        (``engine.read_models``); ``platform``: of ``queue``, only that one's rows."""
        from arms_ledger.projections import engine

        if cut.live and not self.read_models_writable():
            return self._read_only_models()
        return engine.read_models(self.log, self.path, cut, _notice, answers, platform)

    def diff_models(
        self,
        since: Any,
        until: Any,
        known_at: Any = None,
        platform: str | None = None,
    ) -> Any:
        """The read models as of ``since`` and ``until`` and the queue changes between
        (``diffs.sides``, a context manager of (before, after, changes))."""
        from arms_ledger.projections import diffs

        return diffs.sides(self.log, self.path, since, until, known_at, platform, _notice)

    def read_models_writable(self) -> bool:
        from arms_ledger.projections import engine

        db = self.path / engine.PROJECTIONS_DB
        if not os.access(self.path, os.W_OK):
            return False
        return not db.exists() or os.access(db, os.W_OK)

    @contextmanager
    def _read_only_models(self) -> Iterator[sqlite3.Connection]:
        import shutil
        import sqlite3
        import tempfile

        from arms_ledger.ledger.app import boundary
        from arms_ledger.projections import engine

        reader = self.log
        head = reader.head()
        db = self.path / engine.PROJECTIONS_DB
        if boundary.read_models_position(self.path) == head:
            conn = sqlite3.connect(
                boundary.read_only_uri(db), uri=True, isolation_level=None
            )
            try:
                yield conn
            finally:
                conn.close()
            return
        click.echo(
            f"(the read models in {db} cannot be caught up here (no write access); "
            "replaying the log into a temporary directory)",
            err=True,
        )
        workdir = Path(tempfile.mkdtemp(prefix="arms-ledger-replay-"))
        try:
            conn = engine.connect(workdir / engine.PROJECTIONS_DB)
            try:
                engine.catch_up(reader, conn)
                yield conn
            finally:
                conn.close()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


pass_env = click.make_pass_decorator(Env)
"""Passes the command's ``Env`` (made by the root group) as its first argument."""


def _notice(message: str) -> None:
    """What the read models did on their own (rebuilt a damaged file), on stderr."""
    click.echo(f"({message})", err=True)
