"""``arms-ledger whatif`` and ``stability``: the queues under a proposal (a priority
policy, other events) before it is adopted, and how far the weights may move before an
order changes (docs/whatif.md). Nothing is written to the ledger: the comparison is
``projections.whatif.compare``, over a replay into a temporary file; the proposal,
the documents and the rows come from ``projections.whatif`` too."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, BinaryIO

import click
from arms_ledger.cli.complete import platform_ids
from arms_ledger.cli.env import Env, pass_env
from arms_ledger.cli.errors import refusal_message
from arms_ledger.cli.options import caption, time_options
from arms_ledger.cli.output import dumps, output_options, write_rows
from arms_ledger.cli.write import read_events
from arms_ledger.ledger.app import transparency
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain import stability
from arms_ledger.ledger.domain.priority import MODES
from arms_ledger.ledger.errors import BatchRefused, Invalid, LedgerError
from arms_ledger.ledger.transparency.note import open_checkpoint
from arms_ledger.projections import queries, whatif
from arms_ledger.projections.engine import Cut


def log_named(ledger: Ledger) -> dict[str, Any]:
    """The log the answer comes from: its size and the newest checkpoint signed by the
    ledger's own key that covers all of it (origin, root), or None."""
    size = transparency.tree_size(ledger)
    verifier = transparency.own_verifier(ledger)
    covering = [
        cp
        for cp in transparency.checkpoints(ledger)
        if cp.size == size and cp.verifier == str(verifier)
    ]
    if not covering:
        return {"size": size, "origin": None, "root": None}
    checkpoint = open_checkpoint(max(covering, key=lambda cp: cp.id).note, verifier)
    root = base64.b64encode(checkpoint.root).decode()
    return {"size": size, "origin": checkpoint.origin, "root": root}


def _weights(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        found = tuple(float(part) for part in text.split(","))
    except ValueError:
        found = ()
    if len(found) != 3:
        raise click.BadParameter(
            "three numbers I,S,E: investment, strategic, economic (e.g. 0.4,0.3,0.3)",
            param_hint="--weights",
        )
    return found


def from_file(path: Path) -> whatif.Propose:
    """The proposal in a JSON file: the fields of ``PriorityPolicyAdopted`` (``policy``,
    ``actor`` and ``rationale`` may be left out)."""
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise Invalid(f"cannot read the proposal {path}: {error}") from None
    if not isinstance(fields, dict):
        raise Invalid(f"the proposal {path} is not a JSON object")
    if fields.pop("type", "PriorityPolicyAdopted") != "PriorityPolicyAdopted":
        raise Invalid(f"the proposal {path} is not a PriorityPolicyAdopted")
    proposal = whatif.convert(fields, f"the proposal {path}")
    return lambda _current: proposal


def _propose(proposal_file: Path | None, given: dict[str, Any]) -> whatif.Propose | None:
    """The proposal the command line gives (--file or options), None if none."""
    options = any(v is not None for v in given.values())
    if proposal_file is not None:
        if options:
            raise click.UsageError("give the proposal either with --file or with options")
        return from_file(proposal_file)
    if not options:
        return None
    given["weights"] = _weights(given["weights"])
    return whatif.from_options(given)


def _proposal_options(fn: Any) -> Any:
    for option in reversed(
        (
            click.option(
                "--file",
                "proposal_file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="The proposal as JSON: the fields of PriorityPolicyAdopted "
                "(instead of the options below).",
            ),
            click.option("--mode", type=click.Choice(MODES), help="Default scored."),
            click.option("--weights", metavar="I,S,E", help="The three weights at once."),
            click.option("--investment", type=float, help="Weight of defense investment."),
            click.option("--strategic", type=float, help="Weight of strategic value."),
            click.option("--economic", type=float, help="Weight of economic contribution."),
            click.option("--pct-gdp", "pct_gdp", type=float, help="Target, % of GDP."),
            click.option("--economic-usd", "economic_usd", type=int, help="Target, USD."),
            click.option("--tier1", type=float, help="Lowest score of tier 1."),
            click.option("--tier2", type=float, help="Lowest score of tier 2."),
            click.option(
                "--policy", help=f"The proposal's policy id (default {whatif.PROPOSER})."
            ),
            click.option("--name", help="The proposal's name."),
        )
    ):
        fn = option(fn)
    return fn


@click.command("whatif")
@_proposal_options
@click.option(
    "--events",
    "events_file",
    type=click.File("rb"),
    help="Other proposed events, JSON Lines as for append ('-' for stdin), without "
    "effective_at: they take effect at the cut's time.",
)
@click.option("--platform", help="Only this platform's queue.", shell_complete=platform_ids)
@time_options
@output_options
@pass_env
def whatif_command(
    env: Env,
    proposal_file: Path | None,
    events_file: BinaryIO | None,
    platform: str | None,
    cut: Cut,
    fmt: str,
    **given: Any,
) -> None:
    """Show the queues under a proposal beside the queues as they are.

    The proposal is a priority policy (options or --file), other proposed events
    (--events: JSON Lines as for append, e.g. a CaseReprioritized, a
    CatalogPriorityChanged, a ProductionCapacitySet), or both. They are decided by the
    ledger's rules and applied, the policy first, to a replay of the log (in a temporary
    file), effective at --as-of / --known-at, else at the log's last effective time;
    nothing is written. Unset weights, targets and tiers are the policy in force's.
    moved is the positions a case gains (up is positive; empty if it enters or leaves
    the queue).

    \b
    Example:
      arms-ledger whatif --weights 0.25,0.25,0.5 --platform f-35a
      arms-ledger whatif --file proposal.json --as-of 2026-06-01 --json
      arms-ledger whatif --events reprioritize.jsonl --platform pac-3-mse
    """
    propose = _propose(proposal_file, given)
    numbered = [] if events_file is None else _read_proposed(events_file)
    if propose is None and not numbered:
        propose = whatif.from_options(given)  # the policy in force, scored
    try:
        found = whatif.compare(
            env.ledger.reader, cut, propose, platform, [e for _, e in numbered]
        )
    except BatchRefused as error:
        line = numbered[error.index][0]
        where = getattr(events_file, "name", "--events")
        raise LedgerError(refusal_message(error, line, of=where)) from None
    _report(env, cut, found, fmt)


def _read_proposed(source: BinaryIO) -> list[tuple[int, ev.Event]]:
    """The proposed events of --events, each with its line number."""
    return list(read_events(source.read().splitlines()))


def _name_log(log: dict[str, Any]) -> None:
    if log["root"] is None:
        named = f"{log['size']:,} events, no checkpoint covers the log"
    else:
        named = f"{log['origin']}, {log['size']:,} events, root {log['root']}"
    click.echo(f"(log: {named})", err=True)


def _report(env: Env, cut: Cut, found: whatif.WhatIf, fmt: str) -> None:
    log = log_named(env.ledger)
    proposal = whatif.proposal_document(found)
    if fmt == "json":
        document = {"log": log, "cut": cut.describe(), "proposal": proposal}
        click.echo(dumps(document | {"cases": found.cases, "partners": found.partners}))
        return
    _name_log(log)
    click.echo(
        f"(proposal sha256 {proposal['sha256']}, "
        f"effective {found.proposed[0].effective_at}; "
        f"in force before: {found.in_force or 'no policy'})",
        err=True,
    )
    caption(cut)
    write_rows(found.cases, fmt, whatif.CASE_COLUMNS)
    if fmt == "table":
        click.echo("\nNet effect by partner (positions gained):")
        write_rows(found.partners, fmt, whatif.PARTNER_COLUMNS)


@click.command("stability")
@click.argument("platform", shell_complete=platform_ids)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="How many of the first places to report.",
)
@_proposal_options
@time_options
@output_options
@pass_env
def stability_command(
    env: Env,
    platform: str,
    top: int,
    proposal_file: Path | None,
    cut: Cut,
    fmt: str,
    **given: Any,
) -> None:
    """Show how far the weights may move before PLATFORM's queue order changes.

    For each adjacent pair of cases: what decides their order (class, override, fcfs,
    filing, or score: the weights) and, for score, the smallest weight moved (half the
    sum of the absolute changes of the three weights) that flips it, the weights
    where it flips, and the region of weights where it holds. For the first --top
    places: the nearest flip that moves the case. Under the policy in force, or under
    a proposal given as for whatif. See docs/whatif.md, Stability.

    \b
    Example:
      arms-ledger stability f-35a
      arms-ledger stability f-35a --weights 0.25,0.25,0.5 --json
    """
    propose = _propose(proposal_file, given)
    with env.read_models(cut) as conn:
        in_force = queries.adopted(conn)
        proposal = None if propose is None else propose(in_force)
        if proposal is not None:
            whatif.check(proposal)
        found = whatif.stability(
            conn, platform, proposal, in_force=proposal is None, top=top
        )
    _report_stability(env, cut, platform, found, proposal or in_force, proposal, fmt)


def _report_stability(
    env: Env,
    cut: Cut,
    platform: str,
    found: stability.Stability,
    policy: ev.PriorityPolicyAdopted | None,
    proposal: ev.PriorityPolicyAdopted | None,
    fmt: str,
) -> None:
    log = log_named(env.ledger)
    named = (
        "no policy adopted (fcfs)"
        if policy is None
        else f"{'the proposal' if proposal else 'policy'} {policy.policy} ({policy.mode})"
    )
    document = whatif.stability_document(platform, found, policy, proposal)
    if fmt == "json":
        click.echo(dumps({"log": log, "cut": cut.describe()} | document))
        return
    _name_log(log)
    if proposal is not None:
        click.echo(f"(proposal sha256 {document['proposal_sha256']})", err=True)
    caption(cut)
    pairs, places = document["pairs"], document["places"]
    if fmt != "table":
        write_rows(pairs, fmt, whatif.PAIR_COLUMNS)
        return
    shown = ", ".join(f"{k} {v:g}" for k, v in document["weights"].items())
    click.echo(
        f"Stability of {platform}: {len(found.order)} case(s) under {named}, "
        f"weights {shown}; margin = weight moved (half the sum of |change|), "
        "none if no weights flip it."
    )
    write_rows(pairs, fmt, whatif.PAIR_COLUMNS)
    click.echo(f"\nThe first {len(places)} place(s): the nearest flip that moves each.")
    write_rows(places, fmt, whatif.PLACE_COLUMNS)


COMMANDS = (whatif_command, stability_command)
