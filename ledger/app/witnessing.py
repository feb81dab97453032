"""The ledger's side of witnessing: its witnesses, their cosignatures, the quorum.

A ledger's witnesses are named in the file ``witnesses`` of its directory, in C2SP
tlog-policy syntax: ``witness <name> <vkey> <url>`` lines (the URL is the witness's
submission prefix: ``<url>/add-checkpoint`` is posted to) and a ``quorum`` line, which
is also the policy the web view's status and ``audit verify`` use when given no other.

``collect`` sends the newest checkpoint, with a consistency proof from the last one each
witness cosigned, to every witness with a URL (C2SP tlog-witness), and keeps each
cosignature with the checkpoint in the store (``tlog_checkpoints``, under the witness's
key: the checkpoint's note with the witness's signature line).
``transparency.cosigned`` is a checkpoint's note with every cosignature kept for it: what
exports and receipts carry.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

from arms_ledger.ledger.app import transparency
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.errors import Invalid, LedgerError
from arms_ledger.ledger.transparency.cosignature import (
    AddCheckpoint,
    add_signatures,
)
from arms_ledger.ledger.transparency.note import (
    Checkpoint,
    NoteError,
    Verifier,
    parse_note,
)
from arms_ledger.ledger.transparency.policy import (
    Policy,
    PolicyError,
    ShortOfQuorum,
    Witness,
)
from arms_ledger.ledger.transparency.receipt import Receipt
from arms_ledger.ledger.transparency.tlog import StoredCheckpoint, leaf_line

WITNESSES = "witnesses"
TIMEOUT = 10.0  # seconds for each witness to answer


def ledger_policy(path: Path) -> Policy | None:
    """The policy in the ledger directory's ``witnesses`` file, if it has one."""
    if not (path / WITNESSES).is_file():
        return None
    return Policy.read(path / WITNESSES)


def choose_policy(path: Path, given: Path | None) -> Policy | None:
    return Policy.read(given) if given is not None else ledger_policy(path)


class Outcome(NamedTuple):
    witness: str
    ok: bool
    detail: str  # "cosigned 40 events" or why not


def own_checkpoints(ledger: Ledger, key: Verifier | None = None) -> list[StoredCheckpoint]:
    """The checkpoints signed by the ledger's key (or ``key``), newest first."""
    own = str(key or transparency.own_verifier(ledger))
    mine = [cp for cp in transparency.checkpoints(ledger) if cp.verifier == own]
    return sorted(mine, key=lambda cp: (cp.size, cp.id), reverse=True)


def newest_witnessed(
    ledger: Ledger, policy: Policy, key: Verifier | None = None
) -> tuple[StoredCheckpoint, list[str]]:
    """The newest checkpoint of the ledger's key whose cosignatures meet the policy's
    quorum, with the witnesses that cosigned it; PolicyError naming who cosigned the
    newest checkpoint otherwise."""
    mine = own_checkpoints(ledger, key)
    if not mine:
        raise PolicyError("the log has no checkpoint signed by its key to check")
    kept = transparency.cosignatures(ledger)  # read once: a row per append, or more
    for cp in mine:
        if (
            policy.quorum != "none"
            and cp.size not in kept
            and cp.note.count("\n\u2014") < 2
        ):
            continue  # no cosignature: stored with it, or on its note (an export's)
        try:
            note = transparency.cosigned(ledger, cp.note, cp.size, kept)
            return cp, policy.check(note, "")
        except ShortOfQuorum:
            continue
    newest = transparency.cosigned(ledger, mine[0].note, mine[0].size, kept)
    try:
        policy.check(newest, f"its newest ({mine[0].size:,} events)")
    except ShortOfQuorum as error:
        raise ShortOfQuorum(f"no checkpoint of the log is witnessed: {error}") from None
    raise AssertionError("unreachable")  # pragma: no cover


def witnessed(
    ledger: Ledger, policy: Policy, key: Verifier | None = None
) -> tuple[str, int]:
    """A sentence naming the newest checkpoint that meets the quorum and who cosigned
    it, and that checkpoint's size; PolicyError (one line) when none does."""
    cp, signed = newest_witnessed(ledger, policy, key)
    return (
        f"Witnessed: the checkpoint of {cp.size:,} events is cosigned by "
        f"{', '.join(signed) or 'no witness'} (quorum: {policy.describe()}).",
        cp.size,
    )


def status(ledger: Ledger, path: Path) -> dict[str, str]:
    """The web view's witness status: ``{"witnessed": sentence}`` when the ledger has a
    ``witnesses`` file (a sentence saying why not, when short of its quorum); else
    nothing."""
    try:
        policy = ledger_policy(path)
        if policy is None:
            return {}
        return {"witnessed": witnessed(ledger, policy)[0]}
    except LedgerError as error:
        return {"witnessed": f"Not witnessed: {error}."}


def collect(ledger: Ledger, policy: Policy, timeout: float = TIMEOUT) -> list[Outcome]:
    """Ask every witness with a URL to cosign the newest checkpoint; keep what they
    sign. One outcome per witness, in the policy's order."""
    note, checkpoint = transparency.latest_checkpoint(ledger)
    outcomes = []
    for witness in policy.witnesses.values():
        if witness.url is None:
            continue
        try:
            detail = _ask(ledger, witness, note, checkpoint, timeout)
            outcomes.append(Outcome(witness.name, True, detail))
        except LedgerError as error:
            outcomes.append(Outcome(witness.name, False, str(error)))
    return outcomes


def _last_cosigned(ledger: Ledger, witness: Witness, size: int) -> int:
    key = str(witness.key)
    sizes = [
        cp.size
        for cp in transparency.checkpoints(ledger)
        if cp.verifier == key and cp.size <= size
    ]
    return max(sizes, default=0)


def _ask(
    ledger: Ledger, witness: Witness, note: str, checkpoint: Checkpoint, timeout: float
) -> str:
    old = _last_cosigned(ledger, witness, checkpoint.size)
    for _attempt in range(2):
        proof = (
            transparency.prove_consistency(ledger, old, checkpoint.size)[1]
            if 0 < old < checkpoint.size
            else []
        )
        status, content_type, body = _post(
            f"{witness.url}/add-checkpoint",
            AddCheckpoint(old, proof, note).body(),
            timeout,
        )
        if status == 409 and content_type.startswith("text/x.tlog.size"):
            seen = int(body.strip() or b"0")
            if seen > checkpoint.size:
                raise LedgerError(
                    f"refused: it has cosigned {seen:,} events of this log, which has "
                    f"{checkpoint.size:,}: the log was rolled back, or another history "
                    "was shown to it"
                )
            old = seen
            continue
        if status != 200:
            text = body.decode(errors="replace").strip().split("\n")[0]
            raise LedgerError(f"refused ({status}): {text}")
        return _keep(ledger, witness, note, checkpoint, body)
    raise LedgerError("refused: its size moved while asking")


def _keep(
    ledger: Ledger, witness: Witness, note: str, checkpoint: Checkpoint, body: bytes
) -> str:
    try:
        cosigned = add_signatures(note, body.decode())
        if witness.key.timestamp(cosigned) is None:
            raise NoteError("its answer holds no cosignature by its key")
    except (NoteError, UnicodeDecodeError) as error:
        raise LedgerError(f"a bad answer: {error}") from None
    # Only this witness's lines are kept with its row.
    own_line = [
        line
        for line in body.decode().split("\n")
        if line.startswith(f"\u2014 {witness.key.name} ")
    ]
    kept = add_signatures(note, "\n".join(own_line) + "\n")
    ledger.recorder.store_cosignature(kept, checkpoint.size, witness.key)
    return f"cosigned the checkpoint of {checkpoint.size:,} events"


def _post(url: str, body: bytes, timeout: float) -> tuple[int, str, bytes]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return (
                response.status,
                response.headers.get("Content-Type", ""),
                response.read(),
            )
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise LedgerError(f"unreachable at {url}: {reason}") from None


# --- receipts ---------------------------------------------------------------------------


def receipt(
    ledger: Ledger, position: int, policy: Policy | None = None
) -> tuple[Receipt, list[str]]:
    """A receipt for the event at ``position`` under the newest checkpoint of the
    ledger's key that covers it and is cosigned (meeting ``policy``'s quorum, if given;
    else cosigned by any witness, else the newest), with the witnesses who cosigned it
    (of ``policy``; all signature lines' names otherwise)."""
    size = transparency.tree_size(ledger)
    if not 1 <= position <= size:
        raise Invalid(f"position {position}: the log has {size:,} events (1 to {size:,})")
    covering = [cp for cp in own_checkpoints(ledger) if cp.size >= position]
    if not covering:
        raise LedgerError(
            f"no checkpoint signed by the ledger's key covers position {position} yet; "
            "`arms-ledger audit checkpoint` signs one"
        )
    kept = transparency.cosignatures(ledger)
    notes = [(cp, transparency.cosigned(ledger, cp.note, cp.size, kept)) for cp in covering]
    if policy is not None:
        met = [(cp, note) for cp, note in notes if policy.met(policy.cosigners(note))]
        if not met:
            policy.check(notes[0][1], f"the newest checkpoint covering {position}")
        cp, note = met[0]
        signed = list(policy.cosigners(note))
    else:
        cosigned = [(cp, note) for cp, note in notes if note != cp.note]
        cp, note = (cosigned or notes)[0]
        signed = [s.name for s in parse_note(note)[1][1:]]
    _, proof = transparency.prove_inclusion(ledger, position - 1, cp.size)
    (event,) = ledger.recorder.select_notifications(
        start=position - 1, limit=1, stop=position, inclusive_of_start=False
    )
    line = leaf_line(event.id, event.state)
    return Receipt(line, position - 1, proof, note), signed
