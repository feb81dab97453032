"""What a ledger holds, in a few lines: the demo's report."""

from __future__ import annotations

from collections import Counter

import click

from cli.output import table
from ledger import events as ev
from ledger.application import Ledger
from ledger.decision import MemoryWorld, instant, partner_view

PLURAL = {"partner": "partners", "platform": "platforms", "case": "cases", "policy": "policies"}


def print_summary(ledger: Ledger) -> None:
    world = MemoryWorld()
    by_type: Counter[str] = Counter()
    adopted: list[ev.PriorityPolicyAdopted] = []
    count = 0
    for recorded in ledger.read():
        event = recorded.event
        world.apply(event)
        by_type[type(event).__name__] += 1
        count += 1
        if isinstance(event, ev.PriorityPolicyAdopted):
            adopted.append(event)
    streams = world.streams()
    kinds = Counter(s.key.partition(":")[0] for s in streams)
    click.echo(
        f"\nThe ledger holds {count} events in {len(streams)} streams: "
        + ", ".join(
            f"{kinds[k]} {k if kinds[k] == 1 else PLURAL[k]}"
            for k in ev.STREAM_KINDS
            if kinds[k]
        )
        + "."
    )
    stages = Counter(s.case.stage for s in streams if s.case is not None)
    click.echo("\nCases by stage:")
    click.echo(
        table(
            [{"stage": k, "cases": v} for k, v in stages.most_common()],
            ("stage", "cases"),
        )
    )
    if adopted:
        current = max(adopted, key=lambda e: instant(e.effective_at))
        click.echo(
            f"\nPriority policy in force: {current.policy} ({current.mode}"
            + (f", {current.legal_basis}" if current.legal_basis else "")
            + f"), effective {current.effective_at[:10]}."
        )
    held = [
        s.case.case
        for s in streams
        if s.case is not None
        and any(isinstance(e, ev.HoldPlaced) for e in s.events)
    ]
    held_now = [
        f"{s.case.case} ({', '.join(s.case.holds)})"
        for s in streams
        if s.case is not None and s.case.holds
    ]
    suspended = [
        s.key.partition(":")[2]
        for s in streams
        if s.key.startswith("partner:") and partner_view(s).suspended
    ]
    click.echo("\nHighlights:")
    for label, value in (
        ("cases ever held by a committee office", ", ".join(sorted(held)) or "none"),
        ("held now", ", ".join(sorted(held_now)) or "none"),
        ("emergency declarations", by_type["EmergencyDeclared"]),
        ("reprioritizations", by_type["CaseReprioritized"]),
        ("offers expired", by_type["OfferExpired"]),
        ("cases cancelled", by_type["CaseCancelled"]),
        ("partners suspended now", ", ".join(suspended) or "none"),
    ):
        click.echo(f"  {label}: {value}")
    click.echo("\nEvents by type:")
    click.echo(
        table(
            [{"type": k, "events": v} for k, v in sorted(by_type.items())],
            ("type", "events"),
        )
    )
