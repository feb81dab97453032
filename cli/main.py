"""The ``arms-ledger`` command: a thin shell over ``ledger`` (write) and ``projections``.

Exit codes: 0 success, 1 refused or failed (``Error: …`` on stderr), 2 usage error.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click
import msgspec
from arms_ledger import fixtures
from arms_ledger.cli.output import dumps, output_options, write_rows
from arms_ledger.cli.read import parse_time
from arms_ledger.ledger.app.application import (
    CHECKPOINT_POLICIES,
    Ledger,
    create,
    open_ledger,
    store_url,
)
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import parse_instant
from arms_ledger.ledger.domain.streams import Stream as StreamState
from arms_ledger.ledger.domain.streams import describe, evolve
from arms_ledger.ledger.errors import BatchRefused, Invalid, LedgerError
from arms_ledger.ledger.store.sqlite import Recorded
from arms_ledger.projections import engine
from eventsourcing.persistence import PersistenceError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def default_ledger_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "arms-ledger"


class LedgerGroup(click.Group):
    """Turns the ledger's errors into one-line ``Error: …`` messages, exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerError as error:
            raise click.ClickException(str(error)) from None
        except PersistenceError as error:
            raise click.ClickException(
                f"the event store failed: {error}; check the ledger's location and "
                "that no other process holds it locked"
            ) from None


class Env:
    """What every command shares: where the ledger is, opened on first use.

    ``store`` is where a ledger created by this command keeps its events (``None``: the
    default); an existing ledger keeps the store it was created with, and a ``--store``
    given on the command line must name that one.
    """

    def __init__(self, path: Path, store: str | None = None, store_given: bool = False):
        self.path = path
        self.store = store
        self.store_given = store_given
        self._ledger: Ledger | None = None

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            ledger = open_ledger(self.path)
            if self.store_given and self.store and store_url(self.store) != ledger.store:
                ledger.close()
                raise LedgerError(
                    f"the ledger at {self.path} keeps its events in {ledger.store}, not "
                    f"{self.store}; --store chooses the store of a new ledger (init, demo)"
                )
            self._ledger = ledger
        return self._ledger

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()

    def catch_up(self) -> None:
        """Bring the read models up to date; every appending command ends with this."""
        engine.live(self.ledger, self.path).close()

    def read_models(self, cut: Any) -> Any:
        """A connection to the read models the cut asks for (a context manager)."""
        return engine.read_models(self.ledger, self.path, cut)


pass_env = click.make_pass_decorator(Env)


@click.group(cls=LedgerGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="arms-ledger")
@click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="ARMS_LEDGER",
    default=default_ledger_path,
    show_default="$ARMS_LEDGER, else ~/.local/share/arms-ledger",
    help="The ledger's directory.",
)
@click.option(
    "--store",
    envvar="ARMS_LEDGER_STORE",
    metavar="sqlite|URL",
    show_default="$ARMS_LEDGER_STORE, else sqlite",
    help="Where a new ledger keeps its events: sqlite (events.db in its directory) or "
    "postgresql://user@host:5432/dbname[?schema=NAME], shared by many writers.",
)
@click.pass_context
def cli(ctx: click.Context, ledger_path: Path, store: str | None) -> None:
    """An event-sourced ledger of U.S. arms-transfer decisions.

    Every partner update, case filing, catalog change and reprioritization is an
    immutable, attributed event; queues and audit trails are rebuilt from the log.

    \b
    Start with:
      arms-ledger demo                      # a demo ledger from the fixtures
      arms-ledger init                      # an empty ledger of your own
      arms-ledger append events.jsonl       # append JSON Lines, all or nothing
      arms-ledger log --type HoldPlaced     # read the log
    """
    given = ctx.get_parameter_source("store") == click.core.ParameterSource.COMMANDLINE
    env = Env(ledger_path, store, given)
    ctx.obj = env
    ctx.call_on_close(env.close)


@cli.command()
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
@pass_env
def init(
    env: Env,
    origin: str | None,
    checkpoints: str,
    from_export: Path | None,
    key: str | None,
    trusted_checkpoint: Path | None,
) -> None:
    """Create a ledger in the --ledger directory, with its Ed25519 signing key.

    Prints the verifier key (C2SP signed-note form) to give to overseers: with it they
    check every checkpoint and export of this ledger.
    """
    if from_export is None and (key or trusted_checkpoint):
        raise click.UsageError("--key and --trusted-checkpoint go with --from-export")
    if from_export is not None:
        from arms_ledger.cli.tlog import init_from_export

        init_from_export(env, from_export, key, trusted_checkpoint, origin, checkpoints)
        return
    ledger = create(env.path, origin=origin, checkpoints=checkpoints, store=env.store)
    verifier = ledger.signer.verifier if ledger.signer else None
    events = ledger.head()
    ledger.close()
    if events:
        click.echo(
            f"Created a ledger at {env.path} on the shared log at {ledger.store}: "
            f"{events:,} events; this directory signs checkpoints with its own key"
        )
    else:
        click.echo(f"Created an empty ledger at {env.path}")
    click.echo(f"Verifier key: {verifier}")


# --- append ------------------------------------------------------------------------------


def decode_line(line: bytes, number: int) -> ev.Event:
    """One JSON Lines record as an event; errors name the line and the event type."""
    try:
        return ev.decoder.decode(line)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise Invalid(f"line {number}{_type_of(line)}: {_explain(error)}") from None


def _type_of(line: bytes) -> str:
    try:
        value = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return ""
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return f" ({value['type']})"
    return ""


def _explain(error: Exception) -> str:
    text = str(error)
    if text.startswith("Invalid value") and text.endswith("`$.type`"):
        return (
            f"unknown event type{text[len('Invalid value') : -len(' - at `$.type`')]}; "
            "`arms-ledger schema --types` lists the event types"
        )
    if text == "Object missing required field `type`":
        return 'no "type"; every event names its type, e.g. "type": "CaseFiled"'
    if not isinstance(error, msgspec.ValidationError):
        return f"malformed JSON ({text}); each line must be one JSON object"
    return f"{text} (`arms-ledger schema TYPE` shows the fields of each type)"


def read_events(lines: Iterable[bytes]) -> Iterator[tuple[int, ev.Event]]:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield number, decode_line(line, number)


def format_positions(positions: list[int]) -> str:
    """1, 2, 3, 7 -> '1-3, 7'."""
    ranges: list[list[int]] = []
    for p in positions:
        if ranges and p == ranges[-1][1] + 1:
            ranges[-1][1] = p
        else:
            ranges.append([p, p])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        return None


def progress_bar(length: int, label: str, show: bool) -> Any:
    """A progress bar on stderr, or one that shows nothing."""
    if not show:
        return _NoBar()
    return click.progressbar(length=length, label=label, file=sys.stderr)


def append_batch(
    env: Env,
    numbered: list[tuple[int, ev.Event]],
    *,
    as_json: bool = False,
    show_progress: bool = False,
) -> None:
    """Append decoded events and report; errors name the input line."""
    try:
        with progress_bar(len(numbered), "Validating", show_progress) as bar:
            result = env.ledger.append([e for _, e in numbered], progress=bar.update)
    except BatchRefused as error:
        number = numbered[error.index][0]
        sep = ": " if isinstance(error.cause, Invalid) else " "  # "… (T) refused by …"
        raise LedgerError(
            f"line {number} ({error.type_name}){sep}{error.cause}. Nothing was appended."
        ) from None
    env.catch_up()
    if as_json:
        click.echo(
            msgspec.json.encode(
                {
                    "appended": len(result.positions),
                    "positions": result.positions,
                    "skipped": [
                        {
                            "line": numbered[s.index][0],
                            "stream": s.stream,
                            "version": s.version,
                        }
                        for s in result.skipped
                    ],
                }
            )
        )
        return
    n = len(result.positions)
    if n:
        click.echo(
            f"Appended {n} event{'s' if n != 1 else ''} at "
            f"position{'s' if n != 1 else ''} {format_positions(result.positions)}."
        )
    else:
        click.echo("Appended nothing.")
    for s in result.skipped:
        click.echo(
            f"Skipped line {numbered[s.index][0]}: its idempotency key was already "
            f"appended as version {s.version} of {s.stream}."
        )


@cli.command()
@click.argument("file", type=click.File("rb"))
@click.option("--json", "as_json", is_flag=True, help="Report as a JSON object.")
@click.option("--silent", is_flag=True, help="No progress bar.")
@pass_env
def append(env: Env, file: Any, as_json: bool, silent: bool) -> None:
    """Append the events in FILE (JSON Lines; - for stdin), all or nothing.

    Each line is one event: "type", the envelope (actor, rationale, reference,
    effective_at, idempotency_key) and the payload side by side. The whole batch is
    validated first; if any line is malformed or refused, nothing is appended and the
    error names the line, the event type and the rule.

    \b
    Example:
      arms-ledger append cases.jsonl
      echo '{"type":"CaseClosed","case":"PL-B-AHA","actor":"usasac"}' \\
        | arms-ledger append -
    """
    env.ledger  # open it now: a missing ledger fails before the input is read
    lines = file.read().splitlines()
    show = not silent and len(lines) >= 1000
    with progress_bar(len(lines), "Reading", show) as bar:
        numbered = []
        try:
            for number, event in read_events(lines):
                numbered.append((number, event))
                if number % 1000 == 0:
                    bar.update(1000)
        except Invalid as error:
            raise LedgerError(f"{error}. Nothing was appended.") from None
        bar.update(len(lines) % 1000)
    if not numbered:
        raise LedgerError("no events in the input; give one JSON object per line")
    append_batch(env, numbered, as_json=as_json, show_progress=show)


# --- reading the log --------------------------------------------------------------------------


def event_row(recorded: Recorded) -> dict[str, Any]:
    """The exported shape of an event: its position, then the event as stored."""
    return {"position": recorded.position} | msgspec.to_builtins(recorded.event)


def resolve_stream(ledger: Ledger, ident: str) -> str:
    return ev.resolve_stream(
        ident, lambda key: next(iter(ledger.events.get(key, limit=1)), None) is not None
    )


TABLE_COLUMNS = ("position", "effective_at", "type", "stream", "actor", "details")


def table_row(recorded: Recorded) -> dict[str, Any]:
    e = recorded.event
    payload = {f: getattr(e, f) for f in ev.payload_fields(type(e)) if f != e.STREAM}
    details = " ".join(
        f"{k}={msgspec.json.encode(v).decode() if not isinstance(v, str) else v}"
        for k, v in payload.items()
        if v is not None
    )
    if e.rationale:
        details = f"{details} — {e.rationale}" if details else e.rationale
    return {
        "position": recorded.position,
        "version": recorded.version,
        "effective_at": e.effective_at,
        "recorded_at": e.recorded_at,
        "type": type(e).__name__,
        "stream": recorded.stream,
        "actor": e.actor,
        "details": details,
    }


def show_events(records: Iterable[Recorded], fmt: str, columns=TABLE_COLUMNS) -> int:
    if fmt == "table":
        return write_rows((table_row(r) for r in records), fmt, columns)
    return write_rows((event_row(r) for r in records), fmt)


@cli.command("log")
@click.option("--stream", "stream", help="Only this stream: case:PL-B-AHA, or an id.")
@click.option("--type", "types", multiple=True, help="Only this event type (repeatable).")
@click.option("--actor", help="Only events by this actor.")
@click.option("--since", help="Effective at or after this time.")
@click.option("--until", help="Effective at or before this time.")
@click.option("--recorded-since", help="Recorded at or after this time.")
@click.option("--recorded-until", help="Recorded at or before this time.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@output_options
@pass_env
def log_command(
    env: Env,
    stream: str | None,
    types: tuple[str, ...],
    actor: str | None,
    since: str | None,
    until: str | None,
    recorded_since: str | None,
    recorded_until: str | None,
    limit: int | None,
    fmt: str,
) -> None:
    """List the log in order, with filters.

    \b
    Example:
      arms-ledger log --type HoldPlaced --type HoldLifted
      arms-ledger log --stream case:TR-D-SAF --json
      arms-ledger log --actor usd-as.dsca --since 2026-02-06 --csv
    """
    unknown = [t for t in types if t not in ev.EVENT_TYPES]
    if unknown:
        raise click.BadParameter(
            f"unknown event type {unknown[0]!r}; `arms-ledger schema --types` lists them",
            param_hint="--type",
        )
    bounds = [
        (parse_time(since, "--since"), parse_time(until, "--until"), "effective_at"),
        (
            parse_time(recorded_since, "--recorded-since"),
            parse_time(recorded_until, "--recorded-until"),
            "recorded_at",
        ),
    ]
    ledger = env.ledger
    if stream is not None:
        records: Iterable[Recorded] = ledger.stream_records(resolve_stream(ledger, stream))
        if types:
            records = (r for r in records if type(r.event).__name__ in types)
    else:
        records = ledger.read(types=types)

    def wanted(r: Recorded) -> bool:
        if actor is not None and r.event.actor != actor:
            return False
        for low, high, field in bounds:
            if low is None and high is None:
                continue
            at = parse_instant(getattr(r.event, field))
            if (low is not None and at < low) or (high is not None and at > high):
                return False
        return True

    selected = (r for r in records if wanted(r))
    if limit is not None:
        selected = (r for _, r in zip(range(limit), selected, strict=False))
    show_events(selected, fmt)


@cli.command()
@click.argument("stream_id", metavar="ID")
@click.option(
    "--version",
    "version",
    type=click.IntRange(min=1),
    help="Show the stream as of this version (its first N events).",
)
@click.option("--state", "state_only", is_flag=True, help="Show only the state.")
@output_options
@pass_env
def history(
    env: Env, stream_id: str, version: int | None, state_only: bool, fmt: str
) -> None:
    """Show one stream's events and its state, at its latest or any version.

    ID is a stream (case:PL-B-AHA, partner:POL, platform:ah-64e, policy:fcfs-legacy)
    or a bare id when only one kind of stream has it.

    \b
    Example:
      arms-ledger history PL-B-AHA
      arms-ledger history case:PL-B-AHA --version 3 --state --json
    """
    ledger = env.ledger
    key = resolve_stream(ledger, stream_id)
    records = ledger.stream_records(key)
    if version is not None:
        if version > len(records):
            raise LedgerError(
                f"{key} has {len(records)} events; there is no version {version}"
            )
        records = records[:version]
    state = StreamState(key)
    for r in records:
        state = evolve(state, r.event)
    described = describe(state)
    state_rows = [{"field": k, "value": v} for k, v in described.items()]
    if state_only:
        if fmt in ("json", "nl"):
            click.echo(dumps(described))
        else:
            write_rows(state_rows if fmt == "table" else [described], fmt)
        return
    if fmt != "table":
        write_rows(({"version": r.version} | event_row(r) for r in records), fmt)
        return
    show_events(
        records, fmt, ("version", "position", "effective_at", "type", "actor", "details")
    )
    click.echo()
    click.echo(f"State of {key} at version {state.version}:")
    write_rows(state_rows, fmt, ("field", "value"))


# --- schema -------------------------------------------------------------------------------------


@cli.command()
@click.argument("type_name", metavar="[TYPE]", required=False)
@click.option("--types", "list_types", is_flag=True, help="List the event types.")
def schema(type_name: str | None, list_types: bool) -> None:
    """Print the JSON Schema of the input format (of one event TYPE if given).

    The schema is generated from the event Structs; ledger/schema.json is a copy.
    """
    if list_types:
        for name, cls in ev.EVENT_TYPES.items():
            click.echo(
                f"{name:30} {cls.STREAM:9} {'decision' if cls.DECISION else ''}".rstrip()
            )
        return
    full = ev.input_schema()
    if type_name is None:
        click.echo(msgspec.json.format(msgspec.json.encode(full), indent=2))
        return
    if type_name not in ev.EVENT_TYPES:
        raise click.BadParameter(
            f"unknown event type {type_name!r}; `arms-ledger schema --types` lists them",
            param_hint="TYPE",
        )
    one = {"$defs": full["$defs"], "$ref": f"#/$defs/{type_name}"}
    click.echo(msgspec.json.format(msgspec.json.encode(one), indent=2))


# --- demo ----------------------------------------------------------------------------------------

DEMO_ORIGIN = "arms-ledger.demo/scenario"
SCENARIO = Path(str(fixtures.SCENARIO))


def load_history(ledger: Ledger, path: Path) -> int:
    """Load a recorded history (the fixtures' format) into an empty ledger."""
    numbered = list(read_events(path.read_bytes().splitlines()))
    try:
        result = ledger.import_history([e for _, e in numbered])
    except BatchRefused as error:
        raise LedgerError(
            f"{path} line {numbered[error.index][0]} ({error.type_name}): {error.cause}"
        ) from None
    return len(result.positions)


@cli.command()
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
    from arms_ledger.cli.summary import print_demo, print_transparency

    workdir = None
    if keep is None:
        workdir = Path(tempfile.mkdtemp(prefix="arms-ledger-demo-"))
        path = workdir / "ledger"
    else:
        path = keep
    try:
        ledger = create(path, origin=DEMO_ORIGIN, store=env.store)
        started = time.perf_counter()
        count = load_history(ledger, SCENARIO)
        click.echo(f"Loaded {count} events from fixtures/scenario.jsonl.")
        print_demo(ledger, path)
        print_transparency(ledger)
        click.echo(f"({time.perf_counter() - started:.2f} s)", err=True)
        ledger.close()
        where = "./demo-ledger" if keep is None else str(keep)
        click.echo(
            "\nExplore"
            + (
                " (keep a ledger first):\n  arms-ledger demo --keep ./demo-ledger"
                if keep is None
                else ":"
            )
        )
        for command in (
            "queue f-35a",
            "queue f-35a --as-of 2026-02-05",
            "audit explain PL-B-AHA",
            "audit diff --from 2026-02-05 --to 2026-02-07 --platform pac-3-mse",
            "audit trail TK-D-F16",
            "audit flags --json",
            "backlog --by partner",
            "audit verify",
            "audit export ./demo-export",
            'query "SELECT partner, score, tier FROM partners ORDER BY score DESC LIMIT 5"',
        ):
            click.echo(f"  arms-ledger --ledger {where} {command}")
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def _register_commands() -> None:
    from arms_ledger.cli import read, serve
    from arms_ledger.cli import tlog as _tlog  # noqa: F401  (its commands join the audit group)
    from arms_ledger.cli.typed import GROUPS

    read.register(cli)
    serve.register(cli)
    for group in GROUPS:
        cli.add_command(group)


_register_commands()
