"""The overseer's monitors, in the audit group (docs/monitors.md): statutory clocks
(``audit deadlines``). Each prints a table, --json, --nl or --csv; every row names the
events behind it (log positions) and the checkpoint it was judged at (the log position
reached, and the time)."""

from __future__ import annotations

import click
from arms_ledger.cli.env import Env, pass_env
from arms_ledger.cli.options import caption, time_options
from arms_ledger.cli.output import output_options, table, write_rows
from arms_ledger.projections import monitors
from arms_ledger.projections.engine import Cut


def _judged(cp: monitors.Checkpoint) -> str:
    fields = cp.fields
    return f"judged at {fields['judged_at']}, log position {fields['checkpoint']:,}"


@click.command("deadlines")
@click.option(
    "--within",
    type=click.IntRange(min=0),
    metavar="DAYS",
    help="Only what falls due within DAYS (the overdue are always listed).",
)
@time_options
@output_options
@pass_env
def deadlines_command(env: Env, within: int | None, cut: Cut, fmt: str) -> None:
    """Statutory clocks: formal review periods ending, informal reviews and holds open
    too long, offers expiring, EEUM initial and annual inventories, notifications
    lacking the QME certification; what is overdue and what falls due.

    Judged now, or at the replay's time (--as-of, else --known-at).

    \b
    Example:
      arms-ledger audit deadlines --within 30 --as-of 2026-11-13
    """
    with env.read_models(cut) as conn:
        caption(cut)
        cp, found = monitors.deadlines(conn, within)
    if fmt != "table":
        write_rows(found, fmt, monitors.DEADLINE_COLUMNS)
        return
    overdue = sum(r["status"] == "overdue" for r in found)
    horizon = f"within {within} days" if within is not None else "later"
    click.echo(f"{overdue} overdue, {len(found) - overdue} due {horizon}; {_judged(cp)}.")
    if found:
        click.echo(
            table(
                [
                    r | {"due": r["due"][:10], "events": monitors.events_text(r)}
                    for r in found
                ],
                ("status", "due", "kind", "case", "partner", "detail", "events"),
                width=70,
            )
        )


COMMANDS = (deadlines_command,)
