"""The overseer's monitors, in the audit group (docs/monitors.md): statutory clocks
(``audit deadlines``), retroactive changes (``audit retro``),
out-of-sequence deliveries and offers (``audit bypasses``), reconciliation with
the public record (``audit reconcile``), the public registers
(``audit export-register``). Each prints a table,
--json, --nl or --csv; every row names the events behind it (log positions) and the
checkpoint it was judged at (the log position reached, and the time)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from arms_ledger.cli.env import Env, pass_env
from arms_ledger.cli.options import caption, parse_time, recorded_window, time_options
from arms_ledger.cli.output import output_options, table, write_rows
from arms_ledger.ledger.errors import LedgerError
from arms_ledger.projections import monitors
from arms_ledger.projections.engine import Cut
from arms_ledger.projections.runner import LIVE


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


def _point(conn, value: str, option: str) -> tuple[int, datetime | None]:
    """A checkpoint given as a log position (its tree size), a checkpoint file (a signed
    note), or a recorded time: its log position, and its time if one was given."""
    if value.isdigit():
        return int(value), None
    path = Path(value)
    if path.is_file():
        from arms_ledger.ledger.transparency.note import Checkpoint, NoteError, parse_note

        try:
            body, _ = parse_note(path.read_text(encoding="utf-8"))
            return Checkpoint.parse(body).size, None
        except (NoteError, UnicodeDecodeError, ValueError) as error:
            raise click.BadParameter(
                f"{value} is not a checkpoint (a signed note): {error}", param_hint=option
            ) from None
    time = parse_time(value, option)
    return monitors.position_at(conn, time), time


@click.command("retro")
@recorded_window(
    from_help="The earlier checkpoint: a log position (a checkpoint's tree size), a "
    "checkpoint file, or a recorded time.",
    to_help="The later checkpoint, in the same forms (default: the whole log).",
    metavars=("CHECKPOINT", "CHECKPOINT"),
    required=(True, False),
    old=("--from", "--to"),
)
@output_options
@pass_env
def retro_command(env: Env, recorded_from: str, recorded_to: str | None, fmt: str) -> None:
    """Retroactive changes: the events recorded between two checkpoints that took
    effect before the earlier one (they changed a past already published), each with
    the queue positions it changed in that past (the queues at its effective time, as
    known at the earlier checkpoint and as known at the later one).

    \b
    Example:
      arms-ledger audit retro --recorded-from 913 --recorded-to 914
      arms-ledger audit retro --recorded-from checkpoint-2026-10-01
    """
    with env.read_models(LIVE) as conn:
        earlier, time = _point(conn, recorded_from, "--recorded-from")
        later = (
            None if recorded_to is None else _point(conn, recorded_to, "--recorded-to")[0]
        )
        found = monitors.retro(conn, earlier, later, time)
    if fmt != "table":
        write_rows(found, fmt, monitors.RETRO_COLUMNS)
        return
    if not found:
        end = f"log position {later:,}" if later is not None else "the end of the log"
        click.echo(
            f"No event recorded after log position {earlier:,} up to {end} took effect "
            "before it."
        )
        return
    first = found[0]
    click.echo(
        f"{len(found)} event(s) recorded after log position {earlier:,} (taken "
        f"{first['earlier_time']}) took effect before it; checkpoint "
        f"{first['checkpoint']:,}."
    )
    click.echo(
        table(
            [
                r
                | {
                    "event": f"#{r['position']} {r['type']}",
                    "effective": r["effective_at"][:10],
                    "recorded": r["recorded_at"][:10],
                    "queue positions changed then": monitors.changes_text(r) or "none",
                }
                for r in found
            ],
            (
                "event",
                "stream",
                "effective",
                "recorded",
                "actor",
                "queue positions changed then",
            ),
            width=90,
        )
    )


@click.command("bypasses")
@time_options
@output_options
@pass_env
def bypasses_command(env: Env, cut: Cut, fmt: str) -> None:
    """Out-of-sequence deliveries and offers: those that went to a case while cases
    ahead of it in its platform's queue still waited, by bypass code (partner not ready,
    funding, export licence, production lot, other; uncoded ones are oversight flags),
    actor and office, with how often "other" is used.

    \b
    Example:
      arms-ledger audit bypasses
    """
    with env.read_models(cut) as conn:
        caption(cut)
        cp, found = monitors.bypasses(conn)
    if fmt != "table":
        write_rows(found, fmt, monitors.BYPASS_COLUMNS)
        return
    click.echo(f"{monitors.bypass_summary(found)}; {_judged(cp)}.")
    if found:
        click.echo(
            table(
                [r | {"events": monitors.events_text(r)} for r in found],
                ("code", "actor", "office", "skips", "events"),
                width=70,
            )
        )


@click.command("reconcile")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@time_options
@output_options
@pass_env
def reconcile_command(env: Env, file: Path, cut: Cut, fmt: str) -> None:
    """Reconcile the ledger's CongressionalNotified events with FILE, a CSV of public
    36(b) notifications (columns transmittal, date, purchaser, description,
    estimated_value_usd): published but not recorded, recorded (within the file's dates)
    but never published, dates or values that differ; and threshold splitting: cases of
    one partner and platform filed within 12 months, each below the notification
    threshold, together above it.

    \b
    Example:
      arms-ledger audit reconcile fixtures/dsca_notifications.csv
    """
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise LedgerError(f"cannot read {file}: {error}") from None
    with env.read_models(cut) as conn:
        caption(cut)
        cp, matched, found = monitors.reconcile(conn, text, str(file))
    if fmt != "table":
        write_rows(found, fmt, monitors.RECONCILE_COLUMNS)
        return
    click.echo(
        f"{matched} published notification(s) match the ledger; {len(found)} "
        f"finding(s); {_judged(cp)}."
    )
    if found:
        click.echo(
            table(
                [
                    r
                    | {
                        "cases": " ".join(r["cases"]),
                        "events": monitors.events_text(r),
                    }
                    for r in found
                ],
                ("kind", "partner", "cases", "line", "detail", "events"),
                width=80,
            )
        )


@click.command("export-register")
@click.option(
    "--format",
    "register",
    type=click.Choice(monitors.REGISTER_FORMATS),
    required=True,
    help="sipri: orders in the shape of the SIPRI trade register; unroca: deliveries by "
    "year in the UN Register's seven categories.",
)
@time_options
@output_options
@pass_env
def export_register_command(env: Env, register: str, cut: Cut, fmt: str) -> None:
    """Write orders and deliveries in the shape of a public register, to compare the
    ledger with the registers researchers use: the SIPRI trade register (recipient,
    supplier, designation, description, number ordered, year of order, number
    delivered, years of delivery, status) or the UN Register of Conventional Arms (year,
    category I-VII, final importer, number of items, state of origin, description).

    \b
    Example:
      arms-ledger audit export-register --format unroca --csv > unroca.csv
    """
    with env.read_models(cut) as conn:
        caption(cut)
        cp, found = monitors.register(conn, register)
    if fmt != "table":
        write_rows(found, fmt)
        return
    click.echo(f"{len(found)} row(s) of the {register} register; {_judged(cp)}.")
    if found:
        columns = [c for c in found[0] if c not in ("checkpoint", "judged_at")]
        click.echo(table([r | {"events": monitors.events_text(r)} for r in found], columns))


COMMANDS = (
    deadlines_command,
    retro_command,
    bypasses_command,
    reconcile_command,
    export_register_command,
)
