"""``keygen``: an official's key pair, to sign decisions (docs/authority.md)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("official")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def keygen(official: str, file: Path) -> None:
    """Make an official's Ed25519 key pair to sign decisions with.

    Writes the private key to FILE (a new file, mode 0600; never printed) and prints
    the public key, named after OFFICIAL (the actor of the decisions it signs), to
    register with OfficialKeyRegistered or to name the root with
    `init --authority-root FILE`.

    \b
    Example:
      arms-ledger keygen dsca.director director.key
    """
    from arms_ledger.ledger.app.officials import make_key

    signer = make_key(official, file)
    click.echo(f"Wrote the signing key of {official} to {file} (mode 0600).")
    click.echo(f"Public key: {signer.verifier}")


COMMANDS = (keygen,)
