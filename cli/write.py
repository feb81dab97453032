"""Writing to the ledger: ``init``, and ``append`` with its pipeline (decode each JSON
line, append the batch all or nothing, report), and loading a recorded history."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click
import msgspec
from arms_ledger.cli.env import Env, pass_env
from arms_ledger.cli.errors import refusal_message
from arms_ledger.cli.progress import bars
from arms_ledger.cli.replica import init_from_export
from arms_ledger.ledger import progress as reporting
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.app.directory import CHECKPOINT_POLICIES, create
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain import intake
from arms_ledger.ledger.errors import BatchRefused, Invalid, LedgerError


@click.command()
@click.option(
    "--origin",
    help="The log's name in its checkpoints and key, e.g. dsca.example/fms-queue "
    "(no spaces or '+'). Default: arms-ledger.local/<random>.",
)
@click.option(
    "--checkpoints",
    type=click.Choice(CHECKPOINT_POLICIES),
    default="append",
    show_default=True,
    help="Sign a checkpoint after every append, or only on `audit checkpoint`.",
)
@click.option(
    "--from-export",
    "from_export",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Start a replica from an `audit export` directory (verified first).",
)
@click.option("--key", help="With --from-export: the exported log's verifier key.")
@click.option(
    "--trusted-checkpoint",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="With --from-export: an earlier checkpoint the export must extend.",
)
@click.option(
    "--authority-root",
    "authority_root",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="KEYFILE",
    help="Enforce officials' authority: name the root of authority by its key file "
    "(`arms-ledger keygen`), whose owner grants the others (docs/authority.md).",
)
@pass_env
def init(
    env: Env,
    origin: str | None,
    checkpoints: str,
    from_export: Path | None,
    key: str | None,
    trusted_checkpoint: Path | None,
    authority_root: Path | None,
) -> None:
    """Create a ledger in the --ledger directory, with its Ed25519 signing key.

    Prints the verifier key (C2SP signed-note form) to give to overseers: with it they
    check every checkpoint and export of this ledger.
    """
    if from_export is None and (key or trusted_checkpoint):
        raise click.UsageError("--key and --trusted-checkpoint go with --from-export")
    if from_export is not None:
        if authority_root is not None:
            raise click.UsageError("--authority-root does not go with --from-export")
        init_from_export(env, from_export, key, trusted_checkpoint, origin, checkpoints)
        return
    root = None
    if authority_root is not None:
        from arms_ledger.ledger.app.officials import read_key

        root = read_key(authority_root)
    ledger = create(env.path, origin=origin, checkpoints=checkpoints, store=env.store)
    verifier = ledger.signer.verifier if ledger.signer else None
    events = ledger.head()
    try:
        if root is not None:
            _name_root(ledger, root, env)
    finally:
        ledger.close()
    if events:
        click.echo(
            f"Created a ledger at {env.path} on the shared log at {ledger.store}: "
            f"{events:,} events; this directory signs checkpoints with its own key"
        )
    elif root is not None:
        click.echo(f"Created a ledger at {env.path}; its first event names the root")
    else:
        click.echo(f"Created an empty ledger at {env.path}")
    click.echo(f"Verifier key: {verifier}")
    if root is not None:
        click.echo(
            f"Authority is enforced: every decision is signed by its actor; root "
            f"{root.verifier}"
        )


def _name_root(ledger: Ledger, root: Any, env: Env) -> None:
    """Append the directory's root, signed with its own key (``AuthorityRootNamed``)."""
    from arms_ledger.ledger.domain.authority import sign_event

    named = ev.AuthorityRootNamed(
        official=root.name,
        key=str(root.verifier),
        actor=root.name,
        rationale="the root of authority, named at init",
    )
    try:
        ledger.append([sign_event(named, root, env.now())], clock=env.now)
    except BatchRefused as error:
        raise LedgerError(f"--authority-root: {error.cause}") from None


# --- decoding JSON Lines -----------------------------------------------------------------


def decode_line(line: bytes, number: int) -> ev.Event:
    """One JSON Lines record as an event; errors name the line and the event type."""
    try:
        return intake.decode_event(line)
    except Invalid as error:
        raise Invalid(f"line {number}{intake.type_of(line)}: {error}") from None


def read_events(lines: Iterable[bytes]) -> Iterator[tuple[int, ev.Event]]:
    """The events of JSON Lines, each with its line number (blank lines skipped)."""
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield number, decode_line(line, number)


# --- append ------------------------------------------------------------------------------


def format_positions(positions: list[int]) -> str:
    """1, 2, 3, 7 -> '1-3, 7'."""
    ranges: list[list[int]] = []
    for p in positions:
        if ranges and p == ranges[-1][1] + 1:
            ranges[-1][1] = p
        else:
            ranges.append([p, p])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def sign_decisions(
    numbered: list[tuple[int, ev.Event]], key: Path, now: Any
) -> list[tuple[int, ev.Event]]:
    """The decisions of the key's official that carry no signature, signed with it
    (``authority.sign_event``); every other event as it is."""
    from arms_ledger.ledger.app.officials import read_key
    from arms_ledger.ledger.domain.authority import sign_event

    signer = read_key(key)
    at = now()
    return [
        (
            line,
            sign_event(e, signer, at)
            if e.DECISION and e.actor == signer.name and not isinstance(e.signature, str)
            else e,
        )
        for line, e in numbered
    ]


def append_batch(
    env: Env,
    numbered: list[tuple[int, ev.Event]],
    *,
    as_json: bool = False,
    dry_run: bool = False,
) -> None:
    """Append decoded events and report; errors name the input line. Its phases
    (deciding, storing, catching the read models up) are reported to ``progress``.
    ``dry_run``: decide them as appending would, report what would be appended, write
    nothing."""
    try:
        result = env.writer.append([e for _, e in numbered], clock=env.now, dry_run=dry_run)
    except BatchRefused as error:
        line = numbered[error.index][0]
        raise LedgerError(
            f"{refusal_message(error, line)}. Nothing was appended."
        ) from None
    skipped = [(numbered[s.index][0], s) for s in result.skipped]
    if as_json:
        report = {
            "appended": 0 if dry_run else len(result.positions),
            "positions": result.positions,
            "skipped": [
                {"line": line, "stream": s.stream, "version": s.version}
                for line, s in skipped
            ],
        }
        if dry_run:
            report = {"dry_run": True, "would_append": len(result.positions)} | report
        click.echo(msgspec.json.encode(report))
    else:
        _report(result.positions, skipped, dry_run)
    if not dry_run:
        env.catch_up_after_append()  # after the report: the events are in the log


def _report(positions: list[int], skipped: list[tuple[int, Any]], dry_run: bool) -> None:
    n = len(positions)
    events = f"{n} event{'s' if n != 1 else ''} at position{'s' if n != 1 else ''} "
    if dry_run:
        what = events + format_positions(positions) if n else "nothing"
        click.echo(f"Would append {what}; nothing was written (--dry-run).")
    elif n:
        click.echo(f"Appended {events}{format_positions(positions)}.")
    else:
        click.echo("Appended nothing.")
    for line, s in skipped:
        skip = f"Line {line} would be skipped" if dry_run else f"Skipped line {line}"
        click.echo(
            f"{skip}: its idempotency key was already appended as version "
            f"{s.version} of {s.stream}."
        )


@click.command()
@click.argument("file", type=click.File("rb"))
@click.option("--json", "as_json", is_flag=True, help="Report as a JSON object.")
@click.option(
    "--silent",
    is_flag=True,
    help="No progress bars (drawn on stderr only when it is a terminal).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Decide every event as appending would (every rule, the same refusals) and "
    "say what would be appended; write nothing.",
)
@click.option(
    "--allow-clock-skew",
    is_flag=True,
    help="Append even though this machine's clock is more than 5 minutes behind or a "
    "year ahead of the log's last stamp.",
)
@click.option(
    "--sign-key",
    "sign_key",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="ARMS_LEDGER_SIGN_KEY",
    metavar="KEYFILE",
    help="Sign the decisions of this key's official (their actor) that carry no "
    '"signature" (`arms-ledger keygen`; docs/authority.md). '
    "Env: ARMS_LEDGER_SIGN_KEY.",
)
@pass_env
def append(
    env: Env,
    file: Any,
    as_json: bool,
    silent: bool,
    dry_run: bool,
    allow_clock_skew: bool,
    sign_key: Path | None,
) -> None:
    """Append the events in FILE (JSON Lines; - for stdin), all or nothing.

    Each line is one event: "type", the envelope (actor, rationale, reference,
    effective_at, idempotency_key, signature) and the payload side by side. The whole
    batch is validated first; if any line is malformed or refused, nothing is appended
    and the error names the line, the event type and the rule.

    \b
    Example:
      arms-ledger append cases.jsonl
      arms-ledger append --dry-run cases.jsonl      # decide, and write nothing
      echo '{"type":"CaseSuspended","case":"PL-B-AHA","actor":"dsca","rationale":"EUM"}' \\
        | arms-ledger append -
    """
    env.allow_clock = env.allow_clock or allow_clock_skew
    env.writer  # noqa: B018 (open it now: a missing ledger fails before the input is read)
    with bars(show=not silent):
        lines = file.read().splitlines()
        with reporting.phase("Reading", len(lines)):
            numbered = []
            try:
                for number, event in read_events(lines):
                    numbered.append((number, event))
                    if number % 1000 == 0:
                        reporting.advance(1000)
            except Invalid as error:
                raise LedgerError(f"{error}. Nothing was appended.") from None
        if not numbered:
            raise LedgerError("no events in the input; give one JSON object per line")
        if sign_key is not None:
            numbered = sign_decisions(numbered, sign_key, env.now)
        append_batch(env, numbered, as_json=as_json, dry_run=dry_run)


def load_history(ledger: Ledger, path: Path) -> int:
    """Load a recorded history (the fixtures' format) into an empty ledger."""
    numbered = list(read_events(path.read_bytes().splitlines()))
    try:
        result = ledger.import_history([e for _, e in numbered])
    except BatchRefused as error:
        line = numbered[error.index][0]
        raise LedgerError(refusal_message(error, line, of=str(path))) from None
    return len(result.positions)


COMMANDS = (init, append)
