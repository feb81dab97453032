"""The transparency-log commands of the audit group: checkpoints, proofs, verification,
exports for auditors (``ledger.tlog``)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import click
import msgspec
from arms_ledger.cli.main import Env, pass_env
from arms_ledger.cli.read import audit_group
from arms_ledger.ledger.app.application import Ledger, create
from arms_ledger.ledger.errors import LedgerError
from arms_ledger.ledger.transparency import tlog
from arms_ledger.ledger.transparency.note import Checkpoint, Verifier
from arms_ledger.projections import engine

KEY_HELP = (
    "The log's verifier key (NAME+ID+KEY, or a file holding it), as the ledger's "
    "operator published it."
)


def _trusted(path: Path | None, verifier: Verifier) -> list[tuple[Checkpoint, str]]:
    return [] if path is None else [tlog.open_trusted(path, verifier)]


def _print_json(value: dict) -> None:
    click.echo(msgspec.json.encode(value))


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
    click.echo(env.ledger.sign_checkpoint(), nl=False)


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
    n, hashes = env.ledger.prove_inclusion(index, size)
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
    n, hashes = env.ledger.prove_consistency(old, size)
    _print_json(tlog.proof_json(hashes, old_size=old, new_size=n))


@audit_group.command("verify")
@click.option(
    "--trusted-checkpoint",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A checkpoint kept outside the ledger; the log must still match it.",
)
@click.option("--key", help=KEY_HELP + " Default: the ledger's own key.")
@pass_env
def verify_command(env: Env, trusted_checkpoint: Path | None, key: str | None) -> None:
    """Recompute every Merkle leaf and node from the stored events and check every
    stored checkpoint's root and signature.

    Any change made behind the ledger's back (an edited, deleted, inserted or reordered
    event) is reported with the first log position that differs, exit code 1.
    """
    ledger = env.ledger
    verifier = _verifier(ledger, key)
    report = ledger.verify(_trusted(trusted_checkpoint, verifier))
    s = "" if report.checkpoints == 1 else "s"
    click.echo(
        f"Verified {report.events:,} events, {report.nodes:,} tree nodes and "
        f"{report.checkpoints} checkpoint{s} in {report.seconds:.2f} s: the log is intact."
    )


def _verifier(ledger: Ledger, key: str | None) -> Verifier:
    if key is not None:
        return tlog.load_verifier(key)
    return tlog.check_signer(ledger.signer).verifier


@audit_group.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@pass_env
def export_command(env: Env, directory: Path) -> None:
    """Write what an auditor needs into DIRECTORY (new or empty): events.jsonl (every
    event's canonical line, the Merkle leaves, in order), the latest checkpoint, and
    verifier.key."""
    checkpoint = env.ledger.export(directory)
    click.echo(
        f"Exported {checkpoint.size:,} events to {directory} "
        f"(checkpoint root {tlog.b64(checkpoint.root)})."
    )


def _read_export(
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
    trusted = _trusted(trusted_checkpoint, verifier)
    return tlog.read_export(directory, verifier, trusted[0] if trusted else None)


def _verified_replica(
    directory: Path,
    key: str | None,
    trusted_checkpoint: Path | None,
    path: Path,
    origin: str | None = None,
    checkpoints: str = "append",
    store: str | None = "sqlite",
) -> Ledger:
    """Check the export in ``directory``, then make a new ledger at ``path`` holding its
    events and checkpoint, with its read models built; on failure nothing is left there.

    A replica made only to check an export is a local SQLite ledger; ``init
    --from-export`` passes the store chosen for the new ledger."""
    export = _read_export(directory, key, trusted_checkpoint)
    _say_verified(export, trusted_checkpoint)
    existed = path.exists()
    ledger = create(path, origin, checkpoints, store)  # path is new or empty
    try:
        ledger.import_export(export)
        engine.live(ledger, path).close()
    except BaseException:
        ledger.close()
        shutil.rmtree(path, ignore_errors=True)
        if existed:
            path.mkdir()
        raise
    return ledger


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
@click.option(
    "--into",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to build the replica ledger and its read models (default: DIRECTORY/replica).",
)
def verify_export_command(
    directory: Path, trusted_checkpoint: Path | None, key: str | None, into: Path | None
) -> None:
    """Check an export without the ledger: the checkpoint's signature, the root of
    events.jsonl, consistency with an earlier trusted checkpoint; then rebuild every
    read model from it into a replica ledger to query.

    \b
    Example:
      arms-ledger audit verify-export ./export --key "$(cat verifier.key)" \\
        --trusted-checkpoint checkpoint-2026-10-01
      arms-ledger --ledger ./export/replica queue f-35a
    """
    started = time.perf_counter()
    path = into if into is not None else directory / "replica"
    _verified_replica(directory, key, trusted_checkpoint, path).close()
    click.echo(
        f"Rebuilt the read models from the export into {path}; query them with "
        f"`arms-ledger --ledger {path} queue`."
    )
    click.echo(f"({time.perf_counter() - started:.2f} s)", err=True)


def init_from_export(
    env: Env,
    directory: Path,
    key: str | None,
    trusted: Path | None,
    origin: str | None,
    checkpoints: str,
) -> None:
    ledger = _verified_replica(
        directory, key, trusted, env.path, origin, checkpoints, env.store
    )
    try:
        click.echo(
            f"Created a replica at {env.path} with {ledger.tree_size():,} events.\n"
            f"Its own verifier key: {tlog.check_signer(ledger.signer).verifier}"
        )
    finally:
        ledger.close()
