"""Reading the log itself: ``log`` (filtered), ``history`` (one stream and its state)
and ``schema`` (the input format)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import click
import msgspec
from arms_ledger.cli.complete import stream_ids
from arms_ledger.cli.env import Env, pass_env
from arms_ledger.cli.options import (
    acted_by_option,
    at_version_option,
    effective_window,
    parse_time,
    recorded_window,
)
from arms_ledger.cli.output import dumps, output_options, wide_option, write_rows
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import parse_instant
from arms_ledger.ledger.domain.records import Recorded
from arms_ledger.ledger.domain.streams import describe
from arms_ledger.ledger.errors import LedgerError

TABLE_COLUMNS = ("position", "effective_at", "type", "stream", "actor", "details")


def event_row(recorded: Recorded) -> dict[str, Any]:
    """The exported shape of an event: its position, then the event as stored."""
    return {"position": recorded.position} | msgspec.to_builtins(recorded.event)


def resolve_stream(ledger: Ledger, ident: str) -> str:
    return ev.resolve_stream(
        ident, lambda key: next(iter(ledger.events.get(key, limit=1)), None) is not None
    )


def table_row(recorded: Recorded) -> dict[str, Any]:
    e = recorded.event
    payload = {
        f: getattr(e, f)
        for f in ev.payload_fields(type(e))
        if f != e.STREAM and getattr(e, f) is not msgspec.UNSET  # unset: not in the event
    }
    details = " ".join(
        f"{k}={msgspec.json.encode(v).decode() if not isinstance(v, str) else v}"
        for k, v in payload.items()
        if v is not None
    )
    if e.rationale:
        details = f"{details} — {e.rationale}" if details else e.rationale
    return {
        "position": recorded.position,
        "version": recorded.version,
        "effective_at": e.effective_at,
        "recorded_at": e.recorded_at,
        "type": type(e).__name__,
        "stream": recorded.stream,
        "actor": e.actor,
        "details": details,
    }


def show_events(records: Iterable[Recorded], fmt: str, columns=TABLE_COLUMNS) -> int:
    if fmt == "table":
        return write_rows((table_row(r) for r in records), fmt, columns)
    return write_rows((event_row(r) for r in records), fmt)


Bounds = list[tuple[datetime | None, datetime | None, str]]


def _select(
    records: Iterable[Recorded], actor: str | None, bounds: Bounds, limit: int | None
) -> Iterator[Recorded]:
    """The records by ``actor`` whose times fall within ``bounds``, at most ``limit``."""

    def wanted(r: Recorded) -> bool:
        if actor is not None and r.event.actor != actor:
            return False
        for low, high, field in bounds:
            if low is None and high is None:
                continue
            at = parse_instant(getattr(r.event, field))
            if (low is not None and at < low) or (high is not None and at > high):
                return False
        return True

    selected = (r for r in records if wanted(r))
    if limit is not None:
        selected = (r for _, r in zip(range(limit), selected, strict=False))
    return selected


@click.command("log")
@click.option(
    "--stream",
    "stream",
    help="Only this stream: case:PL-B-AHA, or an id.",
    shell_complete=stream_ids,
)
@click.option("--type", "types", multiple=True, help="Only this event type (repeatable).")
@acted_by_option(old=("--actor",))
@effective_window(old=("--since", "--until"))
@recorded_window(old=("--recorded-since", "--recorded-until"))
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@output_options
@pass_env
def log_command(
    env: Env,
    stream: str | None,
    types: tuple[str, ...],
    acted_by: str | None,
    effective_from: str | None,
    effective_to: str | None,
    recorded_from: str | None,
    recorded_to: str | None,
    limit: int | None,
    fmt: str,
) -> None:
    """List the log in order, with filters.

    \b
    Example:
      arms-ledger log --type HoldPlaced --type HoldLifted
      arms-ledger log --stream case:TW-B-ABR --json
      arms-ledger log --acted-by usd-as.dsca --from 2026-02-06 --csv
    """
    unknown = [t for t in types if t not in ev.EVENT_TYPES]
    if unknown:
        raise click.BadParameter(
            f"unknown event type {unknown[0]!r}; `arms-ledger schema --types` lists them",
            param_hint="--type",
        )
    bounds: Bounds = [
        (
            parse_time(effective_from, "--from"),
            parse_time(effective_to, "--to"),
            "effective_at",
        ),
        (
            parse_time(recorded_from, "--recorded-from"),
            parse_time(recorded_to, "--recorded-to"),
            "recorded_at",
        ),
    ]
    ledger = env.ledger
    if stream is not None:
        records: Iterable[Recorded] = ledger.stream_records(resolve_stream(ledger, stream))
        if types:
            records = (r for r in records if type(r.event).__name__ in types)
    else:
        records = ledger.read(types=types)
    show_events(_select(records, acted_by, bounds, limit), fmt)


@click.command()
@click.argument("stream_id", metavar="ID", shell_complete=stream_ids)
@at_version_option("Show the stream at version N (its first N events).", old=("--version",))
@click.option("--state", "state_only", is_flag=True, help="Show only the state.")
@output_options
@pass_env
def history(
    env: Env, stream_id: str, at_version: int | None, state_only: bool, fmt: str
) -> None:
    """Show one stream's events and its state, at its latest or any version.

    ID is a stream (case:PL-B-AHA, partner:POL, platform:ah-64e, policy:fcfs-legacy)
    or a bare id when only one kind of stream has it.

    \b
    Example:
      arms-ledger history PL-B-AHA
      arms-ledger history case:PL-B-AHA --at-version 3 --state --json
    """
    ledger = env.ledger
    key = resolve_stream(ledger, stream_id)
    records = ledger.stream_records(key)
    if at_version is not None:
        if at_version > len(records):
            raise LedgerError(
                f"{key} has {len(records)} events; there is no version {at_version}"
            )
        records = records[:at_version]
    state = ledger.load_stream(key, len(records))  # the state at the events shown
    described = describe(state)
    state_rows = [{"field": k, "value": v} for k, v in described.items()]
    if state_only:
        if fmt in ("json", "nl"):
            click.echo(dumps(described))
        else:
            write_rows(state_rows if fmt == "table" else [described], fmt)
        return
    if fmt != "table":
        write_rows(({"version": r.version} | event_row(r) for r in records), fmt)
        return
    show_events(
        records, fmt, ("version", "position", "effective_at", "type", "actor", "details")
    )
    click.echo()
    click.echo(f"State of {key} at version {state.version}:")
    write_rows(state_rows, fmt, ("field", "value"))


@click.command()
@click.argument("type_name", metavar="[TYPE]", required=False)
@click.option("--types", "list_types", is_flag=True, help="List the event types.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="TYPE's JSON Schema instead of the table of its fields.",
)
@wide_option
def schema(type_name: str | None, list_types: bool, as_json: bool) -> None:
    """Show the fields of event TYPE, or print the JSON Schema of the input format.

    With TYPE: a table of its fields, one a row: its JSON key (within an object,
    dotted: weights.investment), its type, whether it is required (or its default),
    what it means and the values it may take. --json prints TYPE's JSON Schema instead.
    Without TYPE: the JSON Schema of every type, generated from the event Structs;
    ledger/schema.json is a copy.
    """
    if list_types:
        for name, cls in ev.EVENT_TYPES.items():
            click.echo(
                f"{name:30} {cls.STREAM:9} {'decision' if cls.DECISION else ''}".rstrip()
            )
        return
    if type_name is not None and type_name not in ev.EVENT_TYPES:
        raise click.BadParameter(
            f"unknown event type {type_name!r}; `arms-ledger schema --types` lists them",
            param_hint="TYPE",
        )
    if type_name is not None and not as_json:
        rows = [msgspec.structs.asdict(f) for f in ev.field_docs(ev.EVENT_TYPES[type_name])]
        write_rows(rows, "table", wrap=True)
        return
    full = ev.input_schema()
    if type_name is None:
        click.echo(msgspec.json.format(msgspec.json.encode(full), indent=2))
        return
    one = {"$defs": _referenced(full["$defs"], type_name), "$ref": f"#/$defs/{type_name}"}
    click.echo(msgspec.json.format(msgspec.json.encode(one), indent=2))


def _referenced(defs: dict[str, Any], name: str) -> dict[str, Any]:
    """The definitions ``name`` needs: its own and those it refers to, in turn."""
    needed: dict[str, Any] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        if current not in needed:
            needed[current] = defs[current]
            text = msgspec.json.encode(defs[current]).decode()
            todo += re.findall(r'"#/\$defs/([^"]+)"', text)
    return dict(sorted(needed.items()))


COMMANDS = (log_command, history, schema)
