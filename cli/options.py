"""Options shared by the read commands: times, and the cut of the log they read
(--as-of, --known-at, --at-position)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click
from arms_ledger.ledger.domain.clock import BadTime, parse_instant
from arms_ledger.projections.engine import Cut


def parse_time(value: str | None, option: str) -> Any:
    """A time option's value as an instant; a bad one is a usage error naming it."""
    if value is None:
        return None
    try:
        return parse_instant(value, option)
    except BadTime as error:
        raise click.BadParameter(str(error), param_hint=option) from None


def time_options(fn: Callable) -> Callable:
    """--as-of, --known-at and --at-position; the command receives ``cut``."""

    @click.option(
        "--as-of",
        "as_of",
        metavar="TIME",
        help="The state from events effective at or before TIME: "
        "as we now know it was then.",
    )
    @click.option(
        "--known-at",
        "known_at",
        metavar="TIME",
        help="Only events recorded at or before TIME: what the ledger said then.",
    )
    @click.option(
        "--at-position",
        "at_position",
        type=click.IntRange(min=0),
        metavar="N",
        help="Only the log up to position N.",
    )
    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        as_of: str | None,
        known_at: str | None,
        at_position: int | None,
        **kwargs: Any,
    ) -> Any:
        cut = Cut(
            parse_time(as_of, "--as-of"), parse_time(known_at, "--known-at"), at_position
        )
        return fn(*args, cut=cut, **kwargs)

    return wrapper


def caption(cut: Cut) -> None:
    """Say which state a replay shows, on stderr (stdout stays machine-readable)."""
    if not cut.live:
        click.echo(f"(replayed {cut.describe()})", err=True)
