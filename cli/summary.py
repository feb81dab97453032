"""The demo's report: contested queues before and after E.O. 14383, and the flags."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import click
from arms_ledger.cli.output import table
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.domain.clock import instant
from arms_ledger.ledger.transparency.note import open_checkpoint
from arms_ledger.ledger.transparency.tlog import b64
from arms_ledger.projections import engine, queries

CONTESTED = ("ah-64e", "pac-3-mse", "f-35a", "m1a2-sepv3")
LEGAL_BASIS = "E.O. 14383"
WIDTH = 100


def _counts(conn) -> str:
    found = queries.one(
        conn,
        """SELECT (SELECT count(*) FROM audit_log) AS events,
                  (SELECT count(*) FROM partners) AS partners,
                  (SELECT count(*) FROM platforms) AS platforms,
                  (SELECT count(*) FROM cases) AS cases,
                  (SELECT count(*) FROM cases WHERE open) AS open""",
    )
    return (
        f"{found['events']} events: {found['partners']} partners, {found['platforms']} "
        f"platforms, {found['cases']} cases ({found['open']} open)"
    )


def print_demo(ledger: Ledger, directory: Path) -> None:
    with engine.read_models(ledger, directory, engine.Cut()) as conn:
        click.echo(f"The ledger holds {_counts(conn)}.")
        order = queries.one(
            conn,
            "SELECT p.*, a.actor, a.rationale FROM policies p JOIN audit_log a USING (position) "
            "WHERE p.type = 'PriorityPolicyAdopted' AND p.legal_basis = ?",
            (LEGAL_BASIS,),
        )
        last = queries.one(conn, "SELECT max(recorded_at) AS at FROM audit_log")["at"]
    if order is None:
        click.echo(f"No policy under {LEGAL_BASIS} in this ledger.")
        return
    took_effect = instant(order["effective_at"])
    since = took_effect - timedelta(microseconds=1)
    click.echo()
    click.echo(
        textwrap.fill(
            f"{LEGAL_BASIS} took effect on {order['effective_at'][:10]}: policy "
            f"{order['policy']} ({order['mode']} mode) replaced first-come-first-served "
            f"with #{order['position']} PriorityPolicyAdopted by {order['actor']}: "
            f'"{order["rationale"]}"',
            WIDTH,
            break_on_hyphens=False,
        )
    )
    click.echo("\nContested queues just before and just after:")
    with (
        engine.read_models(ledger, directory, engine.Cut(as_of=since)) as before,
        engine.read_models(ledger, directory, engine.Cut(as_of=took_effect)) as after,
    ):
        for platform in CONTESTED:
            _print_platform(before, after, platform, since)
    with engine.read_models(ledger, directory, engine.Cut(known_at=instant(last))) as conn:
        flags = queries.flags(conn)
    click.echo(
        f"\nOversight flags ({len(flags)}), deadlines judged at the last event, "
        f"{last[:10]}:"
    )
    click.echo(
        table(
            [f | {"effective_at": f["effective_at"][:10]} for f in flags],
            ("kind", "stream", "effective_at", "detail"),
            width=80,
        )
    )


def print_transparency(ledger: Ledger) -> None:
    """The signed checkpoint the load wrote, and the check anyone can run."""
    checkpoint = open_checkpoint(ledger.checkpoints()[-1].note, ledger.signer.verifier)
    report = ledger.verify()
    click.echo(
        f"\nTransparency log: checkpoint of {checkpoint.origin} signed at {checkpoint.size:,} "
        f"events,\n  Merkle root {b64(checkpoint.root)};\n  `audit verify` recomputed "
        f"{report.events:,} leaves and {report.nodes - report.events:,} inner nodes: intact."
    )


def _print_platform(before, after, platform: str, since: datetime) -> None:
    name = queries.one(after, "SELECT name FROM platforms WHERE platform = ?", (platform,))
    if name is None:
        return
    old = {r["case"]: r["position"] for r in queries.queue(before, platform)}
    now = queries.queue(after, platform)
    changes = queries.diff(before, after, since, platform)
    click.echo(f"\n{name['name']} ({platform}):")
    rows = [
        {
            "after": r["position"],
            "case": r["case"],
            "partner": r["partner"],
            "tier": r["tier"],
            "score": r["score"],
            "before": old.get(r["case"]),
            "move": queries.move(old.get(r["case"]), r["position"]),
        }
        for r in now
    ]
    click.echo(table(rows, ("after", "case", "partner", "tier", "score", "before", "move")))
    causes = queries.causing_events(changes)
    if causes:
        click.echo(
            "  Moved by "
            + ", ".join(f"#{c['position']} {c['type']} ({c['actor']})" for c in causes)
            + "."
        )
