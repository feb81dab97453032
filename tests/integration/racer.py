"""``arms-ledger`` with a barrier between deciding a batch and writing it.

    python -m tests.integration.racer BARRIER_DIR PARTIES [arms-ledger arguments ...]

Runs the real command line (``arms_ledger.cli.main:cli``) in this process with one
change: the first time the process is about to write a batch (the recorder's
``insert_events``, called once every decision of the batch was taken on what it read),
it waits until PARTIES processes have reached that point too. So every racer has read
the ledger before any of them writes. Each write attempt leaves a file in BARRIER_DIR,
``<pid>.<n>.written`` or ``<pid>.<n>.conflict`` (the store refused the batch because
another writer got there first), so that a test can check that the race took place.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from arms_ledger.cli.main import cli
from arms_ledger.ledger.store.postgres import LedgerPostgresRecorder
from arms_ledger.ledger.store.sqlite import LedgerSQLiteRecorder
from eventsourcing.persistence import IntegrityError

TIMEOUT = 60.0  # seconds to wait for the other racers before giving up (and failing)


class Barrier:
    """A barrier between processes that share nothing but a folder."""

    def __init__(self, folder: Path, parties: int) -> None:
        self.folder, self.parties = folder, parties
        self.attempts = 0

    def wait(self) -> None:
        (self.folder / f"ready.{os.getpid()}").touch()
        deadline = time.monotonic() + TIMEOUT
        while len(list(self.folder.glob("ready.*"))) < self.parties:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the other racers did not arrive in {TIMEOUT:.0f} s")
            time.sleep(0.01)

    def record(self, outcome: str) -> None:
        (self.folder / f"{os.getpid()}.{self.attempts}.{outcome}").touch()

    def around(self, insert: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(insert)
        def insert_events(recorder: Any, *args: Any, **kwargs: Any) -> Any:
            if self.attempts == 0:
                self.wait()
            self.attempts += 1
            try:
                positions = insert(recorder, *args, **kwargs)
            except IntegrityError:
                self.record("conflict")
                raise
            self.record("written")
            return positions

        return insert_events


def main(argv: list[str]) -> None:
    folder, parties, *arguments = argv
    barrier = Barrier(Path(folder), int(parties))
    for recorder in (LedgerSQLiteRecorder, LedgerPostgresRecorder):
        recorder.insert_events = barrier.around(recorder.insert_events)  # type: ignore[method-assign]
    cli.main(args=arguments, prog_name="arms-ledger")


if __name__ == "__main__":
    main(sys.argv[1:])
