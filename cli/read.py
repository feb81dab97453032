"""Read commands: queues, partners, cases, backlog, SQL, and rebuild.

Every one answers from the read models, caught up with the log first, or, with
--as-of / --known-at / --at-position, from a replay into a temporary database.
"""

from __future__ import annotations

import time

import click
from arms_ledger.cli.complete import partner_ids, platform_ids
from arms_ledger.cli.env import Env, pass_env
from arms_ledger.cli.options import caption, time_options
from arms_ledger.cli.output import dumps, output_options, write_rows
from arms_ledger.ledger.domain.clock import format_instant
from arms_ledger.projections import engine, queries, userquery
from arms_ledger.projections.engine import Cut

# --- queue, partners, cases, backlog ------------------------------------------------------


# What ``queue`` reads: its replays may start from a snapshot (docs/read-models.md).
QUEUE_TABLES = ("queue", "platforms", "policies")


@click.command("queue")
@click.argument("platform", required=False, shell_complete=platform_ids)
@time_options
@output_options
@pass_env
def queue_command(env: Env, platform: str | None, cut: Cut, fmt: str) -> None:
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
    with env.read_models(cut, answers=QUEUE_TABLES, platform=platform) as conn:
        caption(cut)
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
@pass_env
def partners_command(env: Env, cut: Cut, fmt: str) -> None:
    """List partners with their facts, score components, score and tier.

    I = min(pct_gdp / target, 1); S = the latest strategic assessment; E = min(sum of
    economic contributions / target, 1); score = wI*I + wS*S + wE*E under the policy in
    force. The table shows the main columns; --json and --csv show all of them.
    """
    with env.read_models(cut, answers=("partners",)) as conn:
        caption(cut)
        found = queries.partners(conn)
        write_rows(found, fmt, queries.PARTNER_COLUMNS if fmt == "table" else None)


@click.command("cases")
@click.option("--partner", help="Only this partner's cases.", shell_complete=partner_ids)
@click.option(
    "--platform", help="Only cases for this platform.", shell_complete=platform_ids
)
@click.option("--stage", help="Only cases at this stage (filed, offered, delivering, ...).")
@click.option("--open", "open_only", is_flag=True, help="Only open cases.")
@time_options
@output_options
@pass_env
def cases_command(
    env: Env,
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
    with env.read_models(cut) as conn:
        caption(cut)
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
@pass_env
def backlog_command(env: Env, by: tuple[str, ...], cut: Cut, fmt: str) -> None:
    """Open cases, units left and value, by platform, partner or stage.

    \b
    Example:
      arms-ledger backlog
      arms-ledger backlog --by partner --by stage --csv
    """
    with env.read_models(cut) as conn:
        caption(cut)
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
@pass_env
def query_command(
    env: Env,
    sql: str | None,
    params: tuple[tuple[str, str], ...],
    show_tables: bool,
    cut: Cut,
    fmt: str,
) -> None:
    """Run a read-only SQL query on the read models.

    Tables: partners, platforms, cases, queue, audit_log, policies, raised_flags,
    deliveries, end_use_checks, eeum_designations, eeum_clocks, queue_moves,
    queue_shifts, queue_cases; views: queue_changes, queue_changes_explained, backlog,
    event_flags, oversight_flags (`arms-ledger query --tables` describes every column).

    \b
    Example:
      arms-ledger query "SELECT partner, score, tier FROM partners WHERE tier = 1"
      arms-ledger query "SELECT * FROM queue_changes_explained WHERE \\"case\\" = :c" -p c PL-B-AHA
    """  # noqa: E501 (the example as typed)
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
    with env.read_models(cut) as conn:
        caption(cut)
        write_rows(userquery.run(conn, sql, dict(params)), fmt)


@click.command("rebuild")
@pass_env
def rebuild_command(env: Env) -> None:
    """Drop the read models and replay the whole log into them.

    Never needed for correctness (every command catches up first); use it after
    upgrading, or to check that the read models equal a fresh replay.
    """
    started = time.perf_counter()
    count = engine.rebuild(env.ledger.reader, env.path / engine.PROJECTIONS_DB)
    took = time.perf_counter() - started
    click.echo(f"Rebuilt the read models from {count:,} events.")
    click.echo(f"({took:.2f} s)", err=True)


@click.command("snapshots")
@click.option(
    "--drop", is_flag=True, help="Delete them (replays build them again when needed)."
)
@output_options
@pass_env
def snapshots_command(env: Env, drop: bool, fmt: str) -> None:
    """Build the snapshots replays of the past start from, and list them.

    A replay (--as-of, --known-at, --at-position) of the queues, partners, platforms
    and policies starts from the nearest snapshot of the read models' state and
    applies only the events after it (docs/read-models.md, Replays from snapshots).
    Replays build missing snapshots themselves; this builds them now, up to the head.
    They are derived data (snapshots.db), checked against the log before use.
    """
    from arms_ledger.projections import snapshots

    if drop:
        snapshots.Snapshots(env.path).discard()
        click.echo("Dropped the snapshots.")
        return
    started = time.perf_counter()
    found = snapshots.build(
        env.log,
        env.path,
        lambda: engine.live(env.log, env.path).close(),
        lambda text: click.echo(f"({text})", err=True),
    )
    rows = [
        {
            "as_of": "every event" if r.as_of is None else format_instant(r.as_of),
            "position": r.position,
            "bytes": r.size,
        }
        for r in found
    ]
    write_rows(rows, fmt)
    click.echo(
        f"({len(rows)} snapshot(s), {sum(r.size for r in found):,} bytes; "
        f"{time.perf_counter() - started:.2f} s)",
        err=True,
    )


COMMANDS = (
    queue_command,
    partners_command,
    cases_command,
    backlog_command,
    query_command,
    rebuild_command,
    snapshots_command,
)
