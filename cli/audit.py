"""The audit group: trails, explanations, differences over time and oversight flags from
the read models; signed checkpoints, Merkle proofs, verification and exports for
auditors from the transparency log (``ledger.transparency.tlog``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import msgspec
from arms_ledger.cli.complete import case_ids, platform_ids, stream_ids
from arms_ledger.cli.env import Env, pass_env
from arms_ledger.cli.options import (
    caption,
    effective_window,
    known_at_option,
    parse_time,
    time_options,
)
from arms_ledger.cli.output import dumps, output_options, table, write_rows
from arms_ledger.cli.replica import check_export, trusted, verified_replica
from arms_ledger.ledger.app import transparency, witnessing
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.app.boundary import LATEST_CHECKPOINT, read_checkpoint
from arms_ledger.ledger.app.directory import signs_every_append
from arms_ledger.ledger.domain.clock import format_instant
from arms_ledger.ledger.errors import LedgerError
from arms_ledger.ledger.transparency import receipt, tlog
from arms_ledger.ledger.transparency.note import Checkpoint, Verifier, parse_note
from arms_ledger.ledger.transparency.policy import Policy
from arms_ledger.ledger.transparency.tlog import TamperedError
from arms_ledger.projections import audit_queries
from arms_ledger.projections.engine import Cut

KEY_HELP = (
    "The log's verifier key (NAME+ID+KEY, or a file holding it), as the ledger's "
    "operator published it."
)


POLICY_OPTION = click.option(
    "--policy",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A C2SP tlog-policy file: the witnesses' keys and the quorum of cosignatures "
    "a checkpoint needs (default: the ledger's `witnesses` file, if any).",
)


def _print_json(value: dict) -> None:
    click.echo(msgspec.json.encode(value))


@click.group("audit")
def audit_group() -> None:
    """Audit trails, explanations, differences over time and oversight flags; signed
    checkpoints, Merkle proofs, verification and exports for auditors."""


@audit_group.command("trail")
@click.argument("stream_id", metavar="ID", shell_complete=stream_ids)
@time_options
@output_options
@pass_env
def trail_command(env: Env, stream_id: str, cut: Cut, fmt: str) -> None:
    """Every event of a partner, platform or case, with actor, rationale, reference,
    effective and recorded time.

    ID is case:PL-B-AHA, partner:POL, platform:ah-64e, policy:..., or a bare id.
    """
    with env.read_models(cut) as conn:
        caption(cut)
        stream = audit_queries.resolve(conn, stream_id)
        found = audit_queries.trail(conn, stream)
        if fmt == "table":
            click.echo(f"Audit trail of {stream}: {len(found)} event(s).")
        write_rows(found, fmt)


@audit_group.command("explain")
@click.argument("case_id", metavar="CASE", shell_complete=case_ids)
@time_options
@output_options
@pass_env
def explain_command(env: Env, case_id: str, cut: Cut, fmt: str) -> None:
    """Why CASE is where it is: its queue position and every component of its sort
    key, each with the event that set it."""
    with env.read_models(cut) as conn:
        caption(cut)
        found = audit_queries.explain(conn, case_id)
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
    if found["corrections"]:
        click.echo(f"\nCorrections of {found['case']}:")
        for c in found["corrections"]:
            click.echo(
                f"  #{c['position']} effective {c['effective_at'][:10]}: {c['detail']}"
                + (f" ({c['rationale']})" if c["rationale"] else "")
            )


@audit_group.command("diff")
@effective_window(
    from_help="The earlier time.", to_help="The later time.", required=(True, True)
)
@click.option("--platform", help="Only this platform's queue.", shell_complete=platform_ids)
@known_at_option("Both sides as the ledger knew them at TIME.")
@output_options
@pass_env
def diff_command(
    env: Env,
    effective_from: str,
    effective_to: str,
    platform: str | None,
    known_at: str | None,
    fmt: str,
) -> None:
    """Who entered, left or moved in each queue between T1 and T2 (effective times),
    and the events that caused it.

    \b
    Example:
      arms-ledger audit diff --from 2026-02-05 --to 2026-02-07 --platform f-35a
    """
    t1, t2 = parse_time(effective_from, "--from"), parse_time(effective_to, "--to")
    if t2 < t1:
        raise click.BadParameter("--to must not be before --from", param_hint="--to")
    known = parse_time(known_at, "--known-at")
    # Both sides and the changes between come from one replay (projections.diffs): the
    # queues as of T1 (from a snapshot when one serves), then the events effective in
    # (T1, T2] in effective order.
    with env.diff_models(t1, t2, known, platform) as (before, after, changes):
        found = audit_queries.diff(before, after, changes, platform)
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
    for c in audit_queries.causing_events(found):
        click.echo(
            f"  #{c['position']} {c['type']} effective {c['effective_at'][:10]} "
            f"by {c['actor']}" + (f": {c['rationale']}" if c["rationale"] else "")
        )


@audit_group.command("flags")
@time_options
@output_options
@pass_env
def flags_command(env: Env, cut: Cut, fmt: str) -> None:
    """Oversight flags (docs/domain.md, Rule 6): backdated decisions, Middle East
    notifications without QME certification, corrections, EEUM deliveries without an
    initial inventory within 90 days, EEUM cases without an inventory for over a year.

    Deadlines are judged now, or at the replay's time.
    """
    with env.read_models(cut) as conn:
        caption(cut)
        found = audit_queries.flags(conn)
        judged = audit_queries.judged_at(conn)
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


# --- the transparency log ------------------------------------------------------------


@audit_group.command("checkpoint")
@pass_env
def checkpoint_command(env: Env) -> None:
    """Sign, store and print a checkpoint of the log (a C2SP signed note).

    Keep it: `audit verify --trusted-checkpoint FILE` and `audit verify-export` prove
    later that the log still begins with exactly what it signed.

    \b
    Example:
      arms-ledger audit checkpoint > checkpoint-2026-11-21
    """
    click.echo(transparency.sign_checkpoint(env.writer), nl=False)


@audit_group.command("prove")
@click.argument("index", type=click.IntRange(min=0))
@click.option(
    "--size", type=click.IntRange(min=0), help="Tree size (default: the whole log)."
)
@pass_env
def prove_command(env: Env, index: int, size: int | None) -> None:
    """Print the inclusion proof of leaf INDEX (0-based: the event at position INDEX+1)
    in the tree of --size events, as JSON (RFC 9162, hashes in base64, leaf level first).
    """
    n, hashes = transparency.prove_inclusion(env.ledger, index, size)
    _print_json(tlog.proof_json(hashes, leaf_index=index, tree_size=n))


@audit_group.command("consistency")
@click.argument("old", type=click.IntRange(min=1))
@click.option(
    "--size", type=click.IntRange(min=1), help="New tree size (default: the whole log)."
)
@pass_env
def consistency_command(env: Env, old: int, size: int | None) -> None:
    """Print the proof that the tree of OLD events is a prefix of the tree of --size
    events, as JSON (RFC 9162 order, hashes in base64)."""
    n, hashes = transparency.prove_consistency(env.ledger, old, size)
    _print_json(tlog.proof_json(hashes, old_size=old, new_size=n))


@audit_group.command("verify")
@click.option(
    "--trusted-checkpoint",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A checkpoint kept outside the ledger; the log must still match it.",
)
@click.option("--key", help=KEY_HELP + " Default: the ledger's own key.")
@POLICY_OPTION
@pass_env
def verify_command(
    env: Env, trusted_checkpoint: Path | None, key: str | None, policy: Path | None
) -> None:
    """Recompute every Merkle leaf and node from the stored events and check every
    stored checkpoint's root and signature.

    Any change made behind the ledger's back (an edited, deleted, inserted or reordered
    event) is reported with the first log position that differs, exit code 1.
    """
    ledger = env.ledger
    verifier = _verifier(ledger, key)
    checks = trusted(trusted_checkpoint, verifier)
    kept = read_checkpoint(env.path)
    in_store = transparency.checkpoints(ledger)
    stored = {cp.note for cp in in_store}
    sole = ledger.recorder.sole_signer and signs_every_append(env.path)
    if kept is not None and kept[0] not in stored:
        own = str(transparency.own_verifier(ledger))
        gone = not any(cp.size == kept[1].size and cp.verifier == own for cp in in_store)
        if sole and gone:  # it stores every checkpoint it signs, and never deletes one
            raise TamperedError(
                f"the checkpoint kept in {env.path / LATEST_CHECKPOINT} (size "
                f"{kept[1].size:,}) is missing from the store, which keeps every "
                "checkpoint this ledger signs: checkpoints were deleted from it"
            )
        # the newest checkpoint the directory holds, outside the store, which lost it
        checks.append((kept[1], str(env.path / LATEST_CHECKPOINT)))
    report = transparency.verify(ledger, checks, verifier)
    unsigned = report.events - report.signed
    # A ledger from before checkpoints (none signed yet) is unsigned, not forged.
    if unsigned and report.signed and sole:
        raise TamperedError(
            f"{unsigned:,} event(s) at positions {report.signed + 1} to {report.events} "
            "lie after the newest checkpoint signed by the ledger's key, and this ledger "
            "signs one with every append: they were written without the key (or "
            "restored from elsewhere)"
        )
    witnessed = _witnessed(env, verifier, policy)
    s = "" if report.checkpoints == 1 else "s"
    click.echo(
        f"Verified {report.events:,} events, {report.nodes:,} tree nodes and "
        f"{report.checkpoints} checkpoint{s} in {report.seconds:.2f} s: the log is intact."
    )
    if witnessed is not None:
        click.echo(witnessed[0])
        if witnessed[1] < report.events:
            click.echo(
                f"{report.events - witnessed[1]:,} event(s) after it are not witnessed "
                "yet: `arms-ledger audit witness` asks the witnesses."
            )
    if not report.events:
        return
    if not unsigned:
        click.echo("The newest checkpoint signed by the key covers every event.")
    elif not report.signed:
        click.echo(
            "No checkpoint signed by the key covers any event yet: "
            "`arms-ledger audit checkpoint` signs one."
        )
    else:
        click.echo(
            f"{unsigned:,} event(s) after the newest checkpoint signed by the key "
            f"(positions {report.signed + 1} to {report.events}) are not signed by it: "
            "`arms-ledger audit checkpoint` signs them (on a shared PostgreSQL log, "
            "other offices sign theirs with their own keys)."
        )
    click.echo(_decisions_signed(ledger))


def _decisions_signed(ledger: Any) -> str:
    """How many decisions are unsigned, and whether the ledger enforces authority
    (docs/authority.md)."""
    from arms_ledger.ledger.domain import authority
    from arms_ledger.ledger.domain import events as ev

    types = [name for name, cls in ev.EVENT_TYPES.items() if cls.DECISION]
    records = list(ledger.read(types=types))
    decisions, unsigned = authority.summary([r.event for r in records])
    counted = f"{unsigned:,} of {decisions:,} decisions are unsigned"
    root = next((r for r in records if isinstance(r.event, ev.AuthorityRootNamed)), None)
    if root is None:
        return (
            f"{counted}; this ledger does not enforce authority (no root named: "
            "`arms-ledger init --authority-root KEYFILE`)."
        )
    return (
        f"{counted}; authority is enforced from position {root.position:,} (root "
        f"{root.event.official}): every decision after it was checked when appended."
    )


def _witnessed(env: Env, key: Verifier, given: Path | None) -> tuple[str, int] | None:
    """What the witnesses vouch for, under --policy or the ledger's witnesses file:
    a sentence and the size of the newest checkpoint meeting the quorum; refused in one
    line (PolicyError) when none does."""
    policy = witnessing.choose_policy(env.path, given)
    if policy is None:
        return None
    return witnessing.witnessed(env.ledger, policy, key)


def _verifier(ledger: Ledger, key: str | None) -> Verifier:
    if key is not None:
        return tlog.load_verifier(key)
    return transparency.own_verifier(ledger)


@audit_group.command("latest")
@pass_env
def latest_command(env: Env) -> None:
    """Print the newest stored checkpoint as it is (a C2SP signed note, with the
    witnesses' cosignatures kept for it), signing nothing: what an overseer keeps. Needs
    only read access to the ledger.

    \b
    Example:
      arms-ledger audit latest > checkpoint-2026-11-21
    """
    stored = transparency.checkpoints(env.ledger)
    if not stored:
        raise LedgerError(
            f"the ledger at {env.path} holds no checkpoint yet; its operator signs one "
            "with `arms-ledger audit checkpoint`"
        )
    own = str(transparency.own_verifier(env.ledger))
    newest = max(stored, key=lambda cp: (cp.verifier == own, cp.size, cp.id))
    # with the witnesses' cosignatures kept for it (docs/witnesses.md)
    click.echo(transparency.cosigned(env.ledger, newest.note, newest.size), nl=False)
    size = transparency.tree_size(env.ledger)
    if newest.size < size:
        click.echo(f"(it covers {newest.size:,} of the log's {size:,} events)", err=True)


@audit_group.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@pass_env
def export_command(env: Env, directory: Path) -> None:
    """Write what an auditor needs into DIRECTORY (new or empty): events.jsonl (every
    event's canonical line, the Merkle leaves, in order), the latest checkpoint, and
    verifier.key."""
    checkpoint = transparency.export(env.ledger, directory)
    click.echo(
        f"Exported {checkpoint.size:,} events to {directory} "
        f"(checkpoint root {tlog.b64(checkpoint.root)})."
    )


@audit_group.command("witness")
@POLICY_OPTION
@pass_env
def witness_command(env: Env, policy: Path | None) -> None:
    """Send the newest checkpoint, with a consistency proof, to each witness of the
    ledger (the `witness` lines with a URL in its `witnesses` file, or --policy) and
    keep their cosignatures with it: exports and receipts carry them.

    Fails (exit 1) when the cosignatures collected fall short of the quorum.

    \b
    Example:
      arms-ledger audit witness
    """
    chosen = witnessing.choose_policy(env.path, policy)
    if chosen is None or not any(w.url for w in chosen.witnesses.values()):
        raise LedgerError(
            f"no witness to ask: {env.path / witnessing.WITNESSES} names none with a "
            "URL ('witness NAME VKEY URL' lines and a 'quorum' line; docs/witnesses.md)"
        )
    ledger = env.writer
    for outcome in witnessing.collect(ledger, chosen):
        click.echo(f"{outcome.witness}: {outcome.detail}")
    note, checkpoint = transparency.latest_checkpoint(ledger)
    note = transparency.cosigned(ledger, note, checkpoint.size)
    what = f"the checkpoint of {checkpoint.size:,} events"
    signed = chosen.check(note, what)
    click.echo(
        f"The checkpoint of {checkpoint.size:,} events is cosigned by "
        f"{', '.join(signed) or 'no witness'}: the quorum ({chosen.describe()}) is met."
    )


@audit_group.command("receipt")
@click.argument("position", type=click.IntRange(min=1))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the receipt to this file (default: standard output).",
)
@POLICY_OPTION
@pass_env
def receipt_command(
    env: Env, position: int, output: Path | None, policy: Path | None
) -> None:
    """Write a receipt for the event at POSITION: a C2SP tlog-proof (the event's
    bytes, its index, the inclusion proof and the newest cosigned checkpoint covering
    it) that `audit verify-receipt` checks offline with only public keys.

    \b
    Example:
      arms-ledger audit receipt 17 -o case-PL-B-AHA-17.tlog-proof
    """
    chosen = Policy.read(policy) if policy is not None else None
    found, signed = witnessing.receipt(env.ledger, position, chosen)
    if output is None:
        click.echo(found.text(), nl=False)
        return
    try:
        output.write_text(found.text())
    except OSError as error:
        raise LedgerError(f"cannot write {output}: {error.strerror}") from None
    checkpoint = Checkpoint.parse(parse_note(found.note)[0])
    click.echo(
        f"Wrote the receipt of position {position} to {output}: checkpoint of "
        f"{checkpoint.size:,} events, cosigned by {', '.join(signed) or 'no witness'}."
    )


@audit_group.command("verify-receipt")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--key",
    "--log-key",
    "key",
    help=KEY_HELP + " Default: the policy's `log` line named as the receipt's log.",
)
@click.option(
    "--policy",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A C2SP tlog-policy file (witness keys and quorum; `log` lines may name the "
    "log's key); without it the cosignatures are not checked.",
)
def verify_receipt_command(file: Path, key: str | None, policy: Path | None) -> None:
    """Check a receipt offline: the checkpoint is signed by the log's key, the event
    is in it at its position (inclusion proof), and, with --policy, the witnesses'
    cosignatures meet the quorum. Prints the event's line.

    \b
    Example:
      arms-ledger audit verify-receipt case-PL-B-AHA-17.tlog-proof \\
        --key "$(cat verifier.key)" --policy witnesses.policy
    """
    chosen = Policy.read(policy) if policy is not None else None
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise LedgerError(f"cannot read {file}: {error}") from None
    found = receipt.parse(text, str(file))
    if key is not None:
        verifier = tlog.load_verifier(key)
    else:
        origin = parse_note(found.note)[0].split("\n")[0]
        logs = [] if chosen is None else [v for v in chosen.logs if v.name == origin]
        if not logs:
            raise LedgerError(
                f"no key for the log {origin}: pass --key, or a --policy with a "
                "'log <vkey>' line for it"
            )
        verifier = logs[0]
    checkpoint = receipt.verify(found, verifier, str(file))
    signed = None if chosen is None else chosen.check(found.note, f"{file}'s checkpoint")
    click.echo(
        f"Position {found.position} is in the checkpoint of {checkpoint.size:,} events "
        f"of {checkpoint.origin}, signed by its key."
    )
    if chosen is None or signed is None:
        click.echo("No --policy given: the witnesses' cosignatures were not checked.")
    else:
        click.echo(
            f"Cosigned by {', '.join(signed) or 'no witness'}: the quorum "
            f"({chosen.describe()}) is met."
        )
    click.echo(found.event.decode())


TRUSTED_OPTION = click.option(
    "--trusted-checkpoint",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="An earlier checkpoint of the same log that you kept; the export must extend it.",
)


@audit_group.command("verify-export")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@TRUSTED_OPTION
@click.option(
    "--key", help=KEY_HELP + " Default: verifier.key in the export (with a warning)."
)
@POLICY_OPTION
@click.option(
    "--into",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also build a read-only replica ledger, with every read model, in this new or "
    "empty directory, to query with --ledger.",
)
def verify_export_command(
    directory: Path,
    trusted_checkpoint: Path | None,
    key: str | None,
    policy: Path | None,
    into: Path | None,
) -> None:
    """Check an export without the ledger: the checkpoint's signature, the root of
    events.jsonl, consistency with an earlier trusted checkpoint. Writes nothing, unless
    --into asks for a replica: a read-only ledger under the export's origin and key,
    with every read model rebuilt from the export.

    \b
    Example:
      arms-ledger audit verify-export ./export --key "$(cat verifier.key)" \\
        --trusted-checkpoint checkpoint-2026-10-01 --into ./replica
      arms-ledger --ledger ./replica queue f-35a
    """
    started = time.perf_counter()
    chosen = Policy.read(policy) if policy is not None else None
    if into is None:
        check_export(directory, key, trusted_checkpoint, chosen)
        return
    verified_replica(
        directory, key, trusted_checkpoint, into, read_only=True, policy=chosen
    ).close()
    click.echo(
        f"Rebuilt the read models from the export into a read-only replica at {into}; "
        f"query them with `arms-ledger --ledger {into} queue`."
    )
    click.echo(f"({time.perf_counter() - started:.2f} s)", err=True)


COMMANDS = (audit_group,)


def _monitors() -> None:
    """The overseer's monitors (cli/monitors.py) belong to this group."""
    from arms_ledger.cli import monitors

    for command in monitors.COMMANDS:
        audit_group.add_command(command)


_monitors()
