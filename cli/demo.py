"""``arms-ledger demo``: the fixture scenario in a fresh ledger, and its report (the
contested queues before and after a policy took effect, the flags, the checkpoint).

What the report looks at is the demo's data, not code: fixtures/demo.json names the
policy's legal basis, the contested platforms and the commands to explore further.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import textwrap
import time
from datetime import timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import click
import msgspec
from arms_ledger import fixtures
from arms_ledger.cli.env import Env, pass_env
from arms_ledger.cli.output import table
from arms_ledger.cli.write import load_history
from arms_ledger.ledger.app import transparency
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.app.directory import create
from arms_ledger.ledger.domain.clock import instant
from arms_ledger.ledger.transparency.note import open_checkpoint
from arms_ledger.ledger.transparency.tlog import b64, check_signer
from arms_ledger.projections import audit_queries, diffs, engine, queries

SCENARIO = Path(str(fixtures.SCENARIO))
WIDTH = 100


class DemoFacts(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """fixtures/demo.json: what the demo shows of the scenario."""

    about: str
    origin: str  # the demo ledger's origin in its checkpoints
    legal_basis: str  # the policy whose taking effect the report shows
    contested: tuple[str, ...]  # the platforms whose queues it shows
    explore: tuple[str, ...]  # commands suggested after the report


@functools.cache
def demo_facts() -> DemoFacts:
    data = (files(fixtures.__name__) / "demo.json").read_bytes()
    return msgspec.json.decode(data, type=DemoFacts)


@click.command()
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    help="Build the demo ledger here (a new directory) and keep it.",
)
@pass_env
def demo(env: Env, keep: Path | None) -> None:
    """Build the fixture scenario into a fresh ledger; show contested queues just before
    and after E.O. 14383, who moved and why, and the oversight flags.

    Without --keep the ledger lives in a temporary directory that is removed after.
    """
    facts = demo_facts()
    workdir = None
    if keep is None:
        workdir = Path(tempfile.mkdtemp(prefix="arms-ledger-demo-"))
        path = workdir / "ledger"
    else:
        path = keep
    try:
        ledger = create(path, origin=facts.origin, store=env.store)
        started = time.perf_counter()
        count = load_history(ledger, SCENARIO)
        click.echo(f"Loaded {count} events from fixtures/{SCENARIO.name}.")
        print_demo(ledger, path, facts)
        print_transparency(ledger)
        click.echo(f"({time.perf_counter() - started:.2f} s)", err=True)
        ledger.close()
        _print_explore(keep, facts)
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def _print_explore(keep: Path | None, facts: DemoFacts) -> None:
    where = "./demo-ledger" if keep is None else str(keep)
    click.echo(
        "\nExplore"
        + (
            " (keep a ledger first):\n  arms-ledger demo --keep ./demo-ledger"
            if keep is None
            else ":"
        )
    )
    for command in facts.explore:
        click.echo(f"  arms-ledger --ledger {where} {command}")


# --- the report --------------------------------------------------------------------------


def _counts(conn: Any) -> str:
    found = queries.one(
        conn,
        """SELECT (SELECT count(*) FROM audit_log) AS events,
                  (SELECT count(*) FROM partners) AS partners,
                  (SELECT count(*) FROM platforms) AS platforms,
                  (SELECT count(*) FROM cases) AS cases,
                  (SELECT count(*) FROM cases WHERE open) AS open""",
    )
    assert found is not None  # an aggregate query has one row
    return (
        f"{found['events']} events: {found['partners']} partners, {found['platforms']} "
        f"platforms, {found['cases']} cases ({found['open']} open)"
    )


def print_demo(ledger: Ledger, directory: Path, facts: DemoFacts) -> None:
    basis = facts.legal_basis
    with engine.read_models(ledger.reader, directory, engine.Cut()) as conn:
        click.echo(f"The ledger holds {_counts(conn)}.")
        order = queries.one(
            conn,
            "SELECT p.*, a.actor, a.rationale FROM policies p "
            "JOIN audit_log a USING (position) "
            "WHERE p.type = 'PriorityPolicyAdopted' AND p.legal_basis = ?",
            (basis,),
        )
        newest = queries.one(conn, "SELECT max(recorded_at) AS at FROM audit_log")
        assert newest is not None  # an aggregate query has one row
        last = newest["at"]
    if order is None:
        click.echo(f"No policy under {basis} in this ledger.")
        return
    took_effect = instant(order["effective_at"])
    since = took_effect - timedelta(microseconds=1)
    click.echo()
    click.echo(
        textwrap.fill(
            f"{basis} took effect on {order['effective_at'][:10]}: policy "
            f"{order['policy']} ({order['mode']} mode) replaced first-come-first-served "
            f"with #{order['position']} PriorityPolicyAdopted by {order['actor']}: "
            f'"{order["rationale"]}"',
            WIDTH,
            break_on_hyphens=False,
        )
    )
    click.echo("\nContested queues just before and just after:")
    with diffs.sides(ledger.reader, directory, since, took_effect) as (
        before,
        after,
        changes,
    ):
        for platform in facts.contested:
            _print_platform(before, after, platform, changes)
    _print_flags(ledger, directory, last)


def _print_flags(ledger: Ledger, directory: Path, last: str) -> None:
    with engine.read_models(
        ledger.reader, directory, engine.Cut(known_at=instant(last))
    ) as conn:
        flags = audit_queries.flags(conn)
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
    verifier = check_signer(ledger.signer).verifier
    checkpoint = open_checkpoint(transparency.checkpoints(ledger)[-1].note, verifier)
    report = transparency.verify(ledger)
    click.echo(
        f"\nTransparency log: checkpoint of {checkpoint.origin} signed at "
        f"{checkpoint.size:,} events,\n  Merkle root {b64(checkpoint.root)};\n  "
        f"`audit verify` recomputed {report.events:,} leaves and "
        f"{report.nodes - report.events:,} inner nodes: intact."
    )


def _print_platform(before: Any, after: Any, platform: str, changes: diffs.Between) -> None:
    name = queries.one(after, "SELECT name FROM platforms WHERE platform = ?", (platform,))
    if name is None:
        return
    old = {r["case"]: r["position"] for r in queries.queue(before, platform)}
    now = queries.queue(after, platform)
    found = audit_queries.diff(before, after, changes, platform)
    click.echo(f"\n{name['name']} ({platform}):")
    rows = [
        {
            "after": r["position"],
            "case": r["case"],
            "partner": r["partner"],
            "tier": r["tier"],
            "score": r["score"],
            "before": old.get(r["case"]),
            "move": audit_queries.move(old.get(r["case"]), r["position"]),
        }
        for r in now
    ]
    click.echo(table(rows, ("after", "case", "partner", "tier", "score", "before", "move")))
    causes = audit_queries.causing_events(found)
    if causes:
        click.echo(
            "  Moved by "
            + ", ".join(f"#{c['position']} {c['type']} ({c['actor']})" for c in causes)
            + "."
        )


COMMANDS = (demo,)
