"""What every command shares, and the one way to reach it: ``pass_env``.

The root group builds an ``Env`` from --ledger and --store; every command that touches
the ledger takes it with ``@pass_env``. This module imports nothing from the rest of
``cli``, so any command module can import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.app.directory import open_ledger, store_url
from arms_ledger.ledger.errors import LedgerError
from arms_ledger.projections import engine


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
        self._ledger: Ledger | None = None

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            ledger = open_ledger(self.path)
            if self.store_given and self.store and store_url(self.store) != ledger.store:
                ledger.close()
                raise LedgerError(
                    f"the ledger at {self.path} keeps its events in {ledger.store}, not "
                    f"{self.store}; --store chooses the store of a new ledger (init, demo)"
                )
            self._ledger = ledger
        return self._ledger

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()

    def catch_up(self) -> None:
        """Bring the read models up to date; every appending command ends with this."""
        engine.live(self.ledger.reader, self.path).close()

    def read_models(self, cut: Any) -> Any:
        """A connection to the read models the cut asks for (a context manager)."""
        return engine.read_models(self.ledger.reader, self.path, cut)


pass_env = click.make_pass_decorator(Env)
"""Passes the command's ``Env`` (made by the root group) as its first argument."""
