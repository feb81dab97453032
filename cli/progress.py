"""Progress bars on stderr, one a phase, only when stderr is a terminal (``--silent``:
none): a pipe or a log file gets nothing, and stdout is never touched. The layers
below report their phases through ``ledger.progress``; this draws them with click."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import click
from arms_ledger.ledger import progress

# How often a bar is redrawn at most (seconds): reporting stays cheap.
REDRAW = 0.1
# A phase is drawn once it has run this long (seconds): the quick ones (a catch-up of a
# few events) show nothing.
DELAY = 0.3


def on_terminal(stream: TextIO | None = None) -> bool:
    stream = stream if stream is not None else sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Bars:
    """A ``progress.Listener``: each phase that lasts a click progress bar on
    ``stream``, left complete when it ends."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.bar: Any = None
        self.label = ""
        self.total = self.shown = self.done = 0
        self.started = self.drawn = 0.0

    def begin(self, label: str, total: int) -> None:
        self.end()
        self.label, self.total, self.shown, self.done = label, total, 0, 0
        self.started = self.drawn = time.monotonic()

    def update(self, done: int) -> None:
        if self.total <= 0:  # nothing to do: nothing to show
            return
        self.done = min(done, self.total)
        now = time.monotonic()
        if now - self.drawn < REDRAW and self.done < self.total:
            return
        self.drawn = now
        if self.bar is None:
            if now - self.started < DELAY:
                return
            self.bar = click.progressbar(
                length=self.total, label=f"{self.label:<27}", file=self.stream, width=30
            )
            self.bar.__enter__()
        if self.done > self.shown:
            self.bar.update(self.done - self.shown)
            self.shown = self.done

    def end(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@contextmanager
def bars(show: bool = True, stream: TextIO | None = None) -> Iterator[None]:
    """Draw the phases of what runs inside, if ``show`` and ``stream`` (stderr) is a
    terminal."""
    stream = stream if stream is not None else sys.stderr
    if not (show and on_terminal(stream)):
        with progress.listening(None):
            yield
        return
    with progress.listening(Bars(stream)):
        yield
