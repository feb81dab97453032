"""A verified replica from an `audit export` directory: the step `init --from-export`
and `audit verify-export` share (``ledger.transparency.tlog`` checks the export)."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
from arms_ledger.cli.env import Env
from arms_ledger.cli.errors import refusal_message
from arms_ledger.ledger.app import transparency
from arms_ledger.ledger.app.application import Ledger, check_new_directory
from arms_ledger.ledger.app.directory import create, create_replica
from arms_ledger.ledger.errors import BatchRefused, LedgerError
from arms_ledger.ledger.transparency import tlog
from arms_ledger.ledger.transparency.note import Checkpoint, Verifier
from arms_ledger.ledger.transparency.policy import Policy
from arms_ledger.projections import engine


def trusted(path: Path | None, verifier: Verifier) -> list[tuple[Checkpoint, str]]:
    """The checkpoint kept at ``path``, checked with ``verifier`` (none without one)."""
    return [] if path is None else [tlog.open_trusted(path, verifier)]


def read_export(
    directory: Path, key: str | None, trusted_checkpoint: Path | None
) -> tlog.Export:
    if key is None:
        key_file = directory / tlog.EXPORT_KEY
        if not key_file.is_file():
            raise LedgerError(
                f"{key_file} is missing; pass --key with the log's verifier key"
            )
        click.echo(
            f"Note: trusting the key in {key_file}; pass --key with the key the ledger's "
            "operator published to check it.",
            err=True,
        )
        key = str(key_file)
    verifier = tlog.load_verifier(key)
    kept = trusted(trusted_checkpoint, verifier)
    return tlog.read_export(directory, verifier, kept[0] if kept else None)


def verified_replica(
    directory: Path,
    key: str | None,
    trusted_checkpoint: Path | None,
    path: Path,
    origin: str | None = None,
    checkpoints: str = "append",
    store: str | None = "sqlite",
    *,
    read_only: bool = False,
    policy: Policy | None = None,
) -> Ledger:
    """Check the export in ``directory``, then make a new ledger at ``path`` holding its
    events and checkpoint, with its read models built; on failure nothing is left there.

    A replica made only to check an export is a local SQLite ledger; ``init
    --from-export`` passes the store chosen for the new ledger. A ``read_only``
    replica keeps the export's origin and key, and has no signing key."""
    check_new_directory(path)  # before the checks print anything
    export = check_export(directory, key, trusted_checkpoint, policy)
    existed = path.exists()
    if read_only:
        ledger = create_replica(path, export)
    else:
        ledger = create(path, origin, checkpoints, store)  # path is new or empty
    try:
        try:
            transparency.import_export(ledger, export)
        except BatchRefused as error:
            raise LedgerError(
                refusal_message(error, error.index + 1, "the export")
            ) from None
        engine.live(ledger.reader, path).close()
    except BaseException:
        ledger.close()
        shutil.rmtree(path, ignore_errors=True)
        if existed:
            path.mkdir()
        raise
    return ledger


def check_export(
    directory: Path,
    key: str | None,
    trusted_checkpoint: Path | None,
    policy: Policy | None = None,
) -> tlog.Export:
    """Check the export in ``directory`` (its checkpoint's cosignatures against
    ``policy``'s quorum, if given) and say what was verified; writes nothing."""
    export = read_export(directory, key, trusted_checkpoint)
    what = f"the export's checkpoint ({export.checkpoint.size:,} events)"
    signed = None if policy is None else policy.check(export.note, what)
    _say_verified(export, trusted_checkpoint)
    if policy is not None and signed is not None:
        click.echo(
            f"Cosigned by {', '.join(signed) or 'no witness'}: the witness quorum "
            f"({policy.describe()}) is met."
        )
    return export


def _say_verified(export: tlog.Export, trusted_checkpoint: Path | None) -> None:
    cp = export.checkpoint
    click.echo(
        f"Checkpoint of {cp.origin}: {cp.size:,} events, root {tlog.b64(cp.root)}, "
        f"signature verified."
    )
    click.echo(f"events.jsonl: {len(export.states):,} events; their Merkle root matches.")
    if trusted_checkpoint is not None and export.consistency is not None:
        click.echo(
            f"Consistent with {trusted_checkpoint} (proof of {len(export.consistency)} "
            "hashes): nothing it signed was changed, removed or reordered."
        )


def init_from_export(
    env: Env,
    directory: Path,
    key: str | None,
    trusted_checkpoint: Path | None,
    origin: str | None,
    checkpoints: str,
) -> None:
    """``init --from-export``: a replica at the --ledger directory, in its store."""
    ledger = verified_replica(
        directory, key, trusted_checkpoint, env.path, origin, checkpoints, env.store
    )
    try:
        click.echo(
            f"Created a replica at {env.path} with "
            f"{transparency.tree_size(ledger):,} events.\n"
            f"Its own verifier key: {tlog.check_signer(ledger.signer).verifier}"
        )
    finally:
        ledger.close()
