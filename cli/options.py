"""The command line's one vocabulary: every option naming a time, a window, a log
position, a stream version or an actor filter is defined here, and every command takes
it from here (docs/cli.md, "One vocabulary").

\b
  a point in effective time   --as-of TIME     (the state as we now know it was then)
  a point in recorded time    --known-at TIME  (what the ledger said then)
  a log position              --at-position N  (the log up to position N)
  a window in effective time  --from T1 --to T2
  a window in recorded time   --recorded-from T1 --recorded-to T2
  a stream's version          --at-version N
  the acting official         --actor (writes); as a filter, --acted-by

An option renamed to fit keeps its old spelling as a hidden alias (``Renamed``): it
still works, says on stderr that it is renamed, and is not shown by --help.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
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


class Renamed(click.Option):
    """An option with old spellings (``old``) kept as hidden aliases: they set the same
    parameter, are not shown by --help or offered by completion, and using one prints
    one line on stderr naming the new spelling."""

    def __init__(self, *args: Any, old: Sequence[str] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.old = tuple(old)

    def _alias_key(self, alias: str) -> str:
        return f"{self.name} {alias}"  # no parameter is named with a space

    def add_to_parser(self, parser: Any, ctx: click.Context) -> None:
        super().add_to_parser(parser, ctx)
        action = "append" if self.multiple else "store"
        for alias in self.old:
            parser.add_option(
                obj=self,
                opts=[alias],
                dest=self._alias_key(alias),
                action=action,
                nargs=self.nargs,
            )

    def consume_value(self, ctx: click.Context, opts: Mapping[str, Any]) -> Any:
        for alias in self.old:
            key = self._alias_key(alias)
            if key not in opts:
                continue
            if not ctx.resilient_parsing:
                click.echo(
                    f"Warning: {alias} is now {self.opts[0]}; {alias} will be removed "
                    "in a later release.",
                    err=True,
                )
            if self.name not in opts:  # the new spelling wins when both are given
                opts = {**opts, str(self.name): opts[key]}
        return super().consume_value(ctx, opts)


def renamed(*decls: str, old: Sequence[str] = (), **kwargs: Any) -> Callable:
    """``click.option`` with hidden old spellings (``Renamed``)."""
    return click.option(*decls, cls=Renamed, old=old, **kwargs)


# --- points in time, and the log position ------------------------------------------------

AS_OF_HELP = (
    "The state from events effective at or before TIME: as we now know it was then."
)
KNOWN_AT_HELP = "Only events recorded at or before TIME: what the ledger said then."


def known_at_option(help: str = KNOWN_AT_HELP) -> Callable:
    """--known-at TIME alone (``known_at``), for a command that reads two states."""
    return click.option("--known-at", "known_at", metavar="TIME", help=help)


def time_options(fn: Callable) -> Callable:
    """--as-of, --known-at and --at-position; the command receives ``cut``."""

    @click.option("--as-of", "as_of", metavar="TIME", help=AS_OF_HELP)
    @known_at_option()
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


# --- windows: in effective time, in recorded time ----------------------------------------


def effective_window(
    *,
    from_help: str = "Only events effective at or after T1.",
    to_help: str = "Only events effective at or before T2.",
    required: tuple[bool, bool] = (False, False),
    old: tuple[str, str] | None = None,
) -> Callable:
    """--from T1 and --to T2, a window over effective time (``effective_from``,
    ``effective_to``); ``required``: whether each must be given; ``old``: the command's
    former spellings of the two, kept as hidden aliases."""
    return _window("--from", "--to", "effective", from_help, to_help, required, old)


def recorded_window(
    *,
    from_help: str = "Only events recorded at or after T1.",
    to_help: str = "Only events recorded at or before T2.",
    metavars: tuple[str, str] = ("T1", "T2"),
    required: tuple[bool, bool] = (False, False),
    old: tuple[str, str] | None = None,
) -> Callable:
    """--recorded-from and --recorded-to, a window over recorded time (``recorded_from``,
    ``recorded_to``); ``old``: the command's former spellings, kept as aliases."""
    return _window(
        "--recorded-from",
        "--recorded-to",
        "recorded",
        from_help,
        to_help,
        required,
        old,
        metavars,
    )


def _window(
    start: str,
    end: str,
    kind: str,
    from_help: str,
    to_help: str,
    required: tuple[bool, bool],
    old: tuple[str, str] | None,
    metavars: tuple[str, str] = ("T1", "T2"),
) -> Callable:
    low = renamed(
        start,
        f"{kind}_from",
        metavar=metavars[0],
        required=required[0],
        help=from_help,
        old=() if old is None else (old[0],),
    )
    high = renamed(
        end,
        f"{kind}_to",
        metavar=metavars[1],
        required=required[1],
        help=to_help,
        old=() if old is None else (old[1],),
    )

    def decorate(fn: Callable) -> Callable:
        return low(high(fn))

    return decorate


# --- actors, stream versions --------------------------------------------------------------


def acted_by_option(old: Sequence[str] = ()) -> Callable:
    """--acted-by ACTOR, the filter (``acted_by``); --actor names who acts, on writes."""
    return renamed(
        "--acted-by",
        "acted_by",
        metavar="ACTOR",
        old=old,
        help="Only events whose actor is ACTOR.",
    )


def at_version_option(help: str, old: Sequence[str] = ()) -> Callable:
    """--at-version N, a stream's first N events (``at_version``)."""
    return renamed(
        "--at-version",
        "at_version",
        type=click.IntRange(min=1),
        metavar="N",
        old=old,
        help=help,
    )


def caption(cut: Cut) -> None:
    """Say which state a replay shows, on stderr (stdout stays machine-readable)."""
    if not cut.live:
        click.echo(f"(replayed {cut.describe()})", err=True)
