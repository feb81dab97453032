"""Read commands: queues, partners, cases, backlog, SQL, the audit group, and rebuild.

Every one answers from the read models, caught up with the log first, or, with
--as-of / --known-at / --at-position, from a replay into a temporary database.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import click
from arms_ledger.cli.output import dumps, output_options, table, write_rows
from arms_ledger.ledger.domain.clock import BadTime, format_instant, parse_instant
from arms_ledger.ledger.errors import LedgerError
from arms_ledger.projections import engine, queries
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
        help="The state from events effective at or before TIME: as we now know it was then.",
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


def env_of() -> Any:
    return click.get_current_context().find_root().obj


def _caption(cut: Cut) -> None:
    """Say which state a replay shows, on stderr (stdout stays machine-readable)."""
    if not cut.live:
        click.echo(f"(replayed {cut.describe()})", err=True)


# --- queue, partners, cases, backlog -----------------------------------------------------------


@click.command("queue")
@click.argument("platform", required=False)
@time_options
@output_options
def queue_command(platform: str | None, cut: Cut, fmt: str) -> None:
    """Show the priority queue of PLATFORM, or every queue's length.

    Order (docs/domain.md, The queue): priority class -> partner override in force ->
    tier -> score,
    higher first -> filed, earlier first -> case id; in fcfs mode tier and score drop
    out. The estimated completion is the quantity left of the case and all ahead of it
    over the platform's production capacity, in months.

    \b
    Example:
      arms-ledger queue ah-64e
      arms-ledger queue pac-3-mse --as-of 2026-02-05 --json
    """
    with env_of().read_models(cut) as conn:
        _caption(cut)
        if platform is None:
            write_rows(queries.queues(conn), fmt)
            return
        found = queries.queue(conn, platform)
        mode, policy = queries.mode(conn)
        if fmt == "table":
            click.echo(
                f"Queue of {platform}: {len(found)} case(s), {mode} mode"
                + (f" ({policy})" if policy else " (no policy adopted)")
                + "."
            )
        write_rows(found, fmt, queries.QUEUE_COLUMNS)


@click.command("partners")
@time_options
@output_options
def partners_command(cut: Cut, fmt: str) -> None:
    """List partners with their facts, score components, score and tier.

    I = min(pct_gdp / target, 1); S = the latest strategic assessment; E = min(sum of
    economic contributions / target, 1); score = wI*I + wS*S + wE*E under the policy in
    force. The table shows the main columns; --json and --csv show all of them.
    """
    with env_of().read_models(cut) as conn:
        _caption(cut)
        found = queries.partners(conn)
        write_rows(found, fmt, queries.PARTNER_COLUMNS if fmt == "table" else None)


@click.command("cases")
@click.option("--partner", help="Only this partner's cases.")
@click.option("--platform", help="Only cases for this platform.")
@click.option("--stage", help="Only cases at this stage (filed, offered, delivering, ...).")
@click.option("--open", "open_only", is_flag=True, help="Only open cases.")
@time_options
@output_options
def cases_command(
    partner: str | None,
    platform: str | None,
    stage: str | None,
    open_only: bool,
    cut: Cut,
    fmt: str,
) -> None:
    """List cases: stage, quantities, values, holds and notification status.

    \b
    Example:
      arms-ledger cases --platform f-35a --open
      arms-ledger cases --partner TUR --json
    """
    with env_of().read_models(cut) as conn:
        _caption(cut)
        found = queries.cases(conn, partner, platform, stage, open_only)
        write_rows(found, fmt, queries.CASE_COLUMNS if fmt == "table" else None)


@click.command("backlog")
@click.option(
    "--by",
    type=click.Choice(queries.BACKLOG_GROUPS),
    multiple=True,
    help="Group by platform, partner and/or stage (repeatable; default platform).",
)
@time_options
@output_options
def backlog_command(by: tuple[str, ...], cut: Cut, fmt: str) -> None:
    """Open cases, units left and value, by platform, partner or stage.

    \b
    Example:
      arms-ledger backlog
      arms-ledger backlog --by partner --by stage --csv
    """
    with env_of().read_models(cut) as conn:
        _caption(cut)
        found = queries.backlog(conn, by or ("platform",))
        write_rows(found, fmt)
        if fmt == "table" and found:
            cases = sum(r["cases"] for r in found)
            value = sum(r["value_usd"] or 0 for r in found)
            click.echo(f"\n{cases:,} open case(s) worth ${value:,}.")


@click.command("query")
@click.argument("sql", required=False)
@click.option(
    "-p",
    "--param",
    "params",
    type=(str, str),
    multiple=True,
    metavar="NAME VALUE",
    help="A named parameter, :NAME in the SQL (repeatable).",
)
@click.option(
    "--tables",
    "show_tables",
    is_flag=True,
    help="Ignore SQL; list the tables and views with their columns' meaning.",
)
@time_options
@output_options
def query_command(
    sql: str | None,
    params: tuple[tuple[str, str], ...],
    show_tables: bool,
    cut: Cut,
    fmt: str,
) -> None:
    """Run a read-only SQL query on the read models.

    Tables: partners, platforms, cases, queue, queue_changes, audit_log, policies,
    event_flags, deliveries, end_use_checks, eeum_designations; views: backlog,
    oversight_flags, queue_changes_explained (`arms-ledger query --tables` describes
    every column).

    \b
    Example:
      arms-ledger query "SELECT partner, score, tier FROM partners WHERE tier = 1"
      arms-ledger query "SELECT * FROM queue_changes_explained WHERE \\"case\\" = :c" -p c PL-B-AHA
    """
    if show_tables:
        from arms_ledger.projections.schema import describe

        described = describe()
        if fmt in ("json", "nl"):
            click.echo(dumps(described))
            return
        write_rows(
            (
                {"table": name, "column": column, "description": text}
                for name, info in described.items()
                for column, text in {"": info["description"], **info["columns"]}.items()
            ),
            fmt,
        )
        return
    if sql is None:
        raise click.UsageError("give a SQL query (or --tables to see what there is)")
    with env_of().read_models(cut) as conn:
        _caption(cut)
        conn.execute("PRAGMA query_only = ON")
        try:
            found = queries.rows(conn, sql, dict(params))
        except sqlite3.Error as error:
            raise LedgerError(f"the query failed: {error}") from None
        write_rows(found, fmt)


@click.command("rebuild")
def rebuild_command() -> None:
    """Drop the read models and replay the whole log into them.

    Never needed for correctness (every command catches up first); use it after
    upgrading, or to check that the read models equal a fresh replay.
    """
    env = env_of()
    started = time.perf_counter()
    count = engine.rebuild(env.ledger, env.path / engine.PROJECTIONS_DB)
    took = time.perf_counter() - started
    click.echo(f"Rebuilt the read models from {count:,} events.")
    click.echo(f"({took:.2f} s)", err=True)


# --- audit -------------------------------------------------------------------------------------


@click.group("audit")
def audit_group() -> None:
    """Audit trails, explanations, differences over time and oversight flags; signed
    checkpoints, Merkle proofs, verification and exports for auditors."""


@audit_group.command("trail")
@click.argument("stream_id", metavar="ID")
@time_options
@output_options
def trail_command(stream_id: str, cut: Cut, fmt: str) -> None:
    """Every event of a partner, platform or case, with actor, rationale, reference,
    effective and recorded time.

    ID is case:PL-B-AHA, partner:POL, platform:ah-64e, policy:..., or a bare id.
    """
    with env_of().read_models(cut) as conn:
        _caption(cut)
        stream = queries.resolve(conn, stream_id)
        found = queries.trail(conn, stream)
        if fmt == "table":
            click.echo(f"Audit trail of {stream}: {len(found)} event(s).")
        write_rows(found, fmt)


@audit_group.command("explain")
@click.argument("case_id", metavar="CASE")
@time_options
@output_options
def explain_command(case_id: str, cut: Cut, fmt: str) -> None:
    """Why CASE is where it is: its queue position and every component of its sort
    key, each with the event that set it."""
    with env_of().read_models(cut) as conn:
        _caption(cut)
        found = queries.explain(conn, case_id)
    if fmt in ("json", "nl"):
        click.echo(dumps(found))
        return
    if fmt == "csv":
        write_rows(found["components"], fmt)
        return
    where = (
        f"position {found['position']} of {found['queue_length']} in the "
        f"{found['platform']} queue"
        if found["position"]
        else f"not in the {found['platform']} queue (stage {found['stage']}, "
        f"{found['quantity_left']} left)"
    )
    click.echo(
        f"{found['case']} ({found['partner']}) is at {where}; {found['mode']} mode"
        + (f" under {found['policy']}" if found["policy"] else ", no policy adopted")
        + (
            f"; estimated completion {found['est_completion_months']} months."
            if found["est_completion_months"] is not None
            else "."
        )
    )
    click.echo(
        table(
            [
                {
                    "component": c["component"],
                    "value": c["value"],
                    "set by": f"#{c['event_position']} {c['event_type']}"
                    if c["event_position"]
                    else "",
                    "effective": (c["event_effective_at"] or "")[:10],
                    "actor": c["event_actor"],
                    "note / rationale": c["note"] or c["event_rationale"],
                }
                for c in found["components"]
            ],
            ("component", "value", "set by", "effective", "actor", "note / rationale"),
        )
    )


@audit_group.command("diff")
@click.option("--from", "since", required=True, metavar="T1", help="The earlier time.")
@click.option("--to", "until", required=True, metavar="T2", help="The later time.")
@click.option("--platform", help="Only this platform's queue.")
@click.option(
    "--known-at",
    "known_at",
    metavar="TIME",
    help="Both sides as the ledger knew them at TIME.",
)
@output_options
def diff_command(
    since: str, until: str, platform: str | None, known_at: str | None, fmt: str
) -> None:
    """Who entered, left or moved in each queue between T1 and T2 (effective times),
    and the events that caused it.

    \b
    Example:
      arms-ledger audit diff --from 2026-02-05 --to 2026-02-07 --platform f-35a
    """
    t1, t2 = parse_time(since, "--from"), parse_time(until, "--to")
    if t2 < t1:
        raise click.BadParameter("--to must not be before --from", param_hint="--to")
    known = parse_time(known_at, "--known-at")
    env = env_of()
    with (
        env.read_models(Cut(as_of=t1, known_at=known)) as before,
        env.read_models(Cut(as_of=t2, known_at=known)) as after,
    ):
        found = queries.diff(before, after, t1, platform)
    if fmt != "table":
        write_rows(found, fmt)
        return
    print_diff(found, format_instant(t1), format_instant(t2))


def print_diff(found: list[dict], since: str, until: str) -> None:
    """The diff as a table, then each causing event once with its rationale."""
    if not found:
        click.echo(f"No queue changed between {since} and {until}.")
        return
    table_rows = [
        row | {"caused by": ", ".join(f"#{c['position']}" for c in row["caused_by"])}
        for row in found
    ]
    click.echo(
        table(
            table_rows,
            ("platform", "case", "partner", "change", "before", "after", "caused by"),
        )
    )
    click.echo("\nThe events:")
    for c in queries.causing_events(found):
        click.echo(
            f"  #{c['position']} {c['type']} effective {c['effective_at'][:10]} by {c['actor']}"
            + (f": {c['rationale']}" if c["rationale"] else "")
        )


@audit_group.command("flags")
@time_options
@output_options
def flags_command(cut: Cut, fmt: str) -> None:
    """Oversight flags (docs/domain.md, Rule 6): backdated decisions, Middle East
    notifications
    without QME certification, EEUM deliveries without an initial inventory within 90
    days, EEUM cases without an inventory for over a year.

    Deadlines are judged now, or at the replay's time.
    """
    with env_of().read_models(cut) as conn:
        _caption(cut)
        found = queries.flags(conn)
        judged = queries.judged_at(conn)
    if fmt != "table":
        write_rows(found, fmt)
        return
    click.echo(
        f"{len(found)} oversight flag(s), deadlines judged "
        + (f"at {judged}." if judged else "now.")
    )
    if found:
        click.echo(
            table(
                [f | {"effective_at": f["effective_at"][:10]} for f in found],
                ("kind", "stream", "effective_at", "detail"),
                width=90,
            )
        )


COMMANDS = (
    queue_command,
    partners_command,
    cases_command,
    backlog_command,
    query_command,
    audit_group,
    rebuild_command,
)


def register(group: click.Group) -> None:
    for command in COMMANDS:
        group.add_command(command)
