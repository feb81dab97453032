"""Progress of the long operations (append, rebuild, replays, verify, export), told to
whoever listens: the command line draws it on stderr when stderr is a terminal
(``cli/progress.py``); nobody listens otherwise, and reporting then costs a lookup.

An operation is a sequence of phases, each a label and a number of steps:

    with progress.phase("Deciding", len(events)):
        for index, event in enumerate(events):
            ...
            if index % 1000 == 999:
                progress.advance(1000)

``advance(n)`` adds steps to the current phase; ``reach(n)`` sets how many are done (from
a position: ``phase(…, base=start)`` subtracts the phase's first position). Callers
report every thousand steps or so, not every step. No I/O and no click here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class Listener(Protocol):
    def begin(self, label: str, total: int) -> None: ...
    def update(self, done: int) -> None: ...
    def end(self) -> None: ...


class _Phase:
    __slots__ = ("base", "done", "listener", "total")

    def __init__(self, listener: Listener, total: int, base: int):
        self.listener, self.total, self.base, self.done = listener, total, base, 0


_listener: ContextVar[Listener | None] = ContextVar("arms_ledger_progress", default=None)
_current: ContextVar[_Phase | None] = ContextVar("arms_ledger_phase", default=None)


@contextmanager
def listening(listener: Listener | None) -> Iterator[None]:
    """Tell ``listener`` the phases of what runs inside (None: nobody)."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def active() -> bool:
    """Whether anybody listens (to skip work done only to report)."""
    return _listener.get() is not None


@contextmanager
def phase(label: str, total: int, base: int = 0) -> Iterator[None]:
    """A phase of ``total`` steps; when it ends without error, it is shown complete."""
    listener = _listener.get()
    if listener is None:
        yield
        return
    current = _Phase(listener, max(total, 0), base)
    token = _current.set(current)
    listener.begin(label, current.total)
    try:
        yield
        listener.update(current.total)
    finally:
        _current.reset(token)
        listener.end()


def advance(steps: int) -> None:
    """``steps`` more of the current phase are done."""
    current = _current.get()
    if current is not None:
        current.done = min(current.done + steps, current.total)
        current.listener.update(current.done)


def reach(position: int) -> None:
    """The current phase is done up to ``position`` (less its base)."""
    current = _current.get()
    if current is not None:
        current.done = min(max(position - current.base, 0), current.total)
        current.listener.update(current.done)
