"""The witness group: an independent C2SP tlog-witness (``ledger.app.witness``) that
cosigns a log's checkpoints only while the log grows."""

from __future__ import annotations

from pathlib import Path

import click
from arms_ledger.ledger.errors import LedgerError

STATE_OPTION = click.option(
    "--state",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The witness's own directory: its key, the logs it accepts, its state.",
)


@click.group("witness")
def witness_group() -> None:
    """Run an independent witness that cosigns a log's checkpoints only as it grows.

    It serves C2SP tlog-witness: a checkpoint is cosigned only when it extends the last
    one the witness cosigned for that log; conflicting ones are kept as evidence."""


@witness_group.command("init")
@STATE_OPTION
@click.option(
    "--name", required=True, help="The witness's key name, e.g. witness.example/w1."
)
def init_command(state: Path, name: str) -> None:
    """Make a witness in a new directory: its Ed25519 key (witness.key, mode 0600) and
    verifier key (witness.vkey, printed), and no log accepted yet.

    \b
    Example:
      arms-ledger witness init --state ./w1 --name witness.example/w1
    """
    from arms_ledger.ledger.app import witness

    cosigner = witness.init(state, name)
    click.echo(f"{cosigner.key}")


@witness_group.command("add-log")
@STATE_OPTION
@click.argument("vkey")
def add_log_command(state: Path, vkey: str) -> None:
    """Accept checkpoints of the log whose verifier key is VKEY (what `arms-ledger init`
    prints; its name is the log's origin)."""
    from arms_ledger.ledger.app import witness

    witness.read_key(state)
    verifier = witness.add_log(state, vkey)
    click.echo(f"The witness now accepts checkpoints of {verifier.name}.")


@witness_group.command("serve")
@STATE_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=7380,
    show_default=True,
    help="Port (0: any free port; the one chosen is printed).",
)
def serve_command(state: Path, host: str, port: int) -> None:
    """Serve POST /add-checkpoint over HTTP until interrupted.

    \b
    Example:
      arms-ledger witness serve --state ./w1 --port 7381
    """
    from arms_ledger.ledger.app import witness

    served = witness.Witness(state)
    try:
        server = witness.server(served, host, port)
    except OSError as error:
        raise LedgerError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    logs = sum(len(keys) for keys in served.logs.values())
    bound_host, bound_port = str(server.server_address[0]), server.server_address[1]
    click.echo(
        f"Witness {served.cosigner.name} ({logs} log key(s)) listening on "
        f"http://{bound_host}:{bound_port}/add-checkpoint",
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@witness_group.command("status")
@STATE_OPTION
def status_command(state: Path) -> None:
    """The logs the witness accepts and the newest checkpoint it cosigned of each."""
    from arms_ledger.ledger.app import witness

    served = witness.Witness(state)
    click.echo(f"Witness {served.cosigner.key}")
    for origin in sorted(served.logs):
        latest = served.latest(origin)
        seen = "nothing cosigned yet" if latest is None else f"{latest[1].size:,} events"
        click.echo(f"  {origin}: {seen}")
    evidence = sorted(p.name for p in (state / witness.EVIDENCE).iterdir())
    click.echo(f"{len(evidence)} evidence file(s) in {state / witness.EVIDENCE}")


COMMANDS = (witness_group,)
