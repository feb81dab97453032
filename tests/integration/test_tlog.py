"""The transparency log on real stores, SQLite and PostgreSQL (GitHub issue 4).

Tampering is done with SQL directly on the event store of a ledger loaded from the
fixture scenario (``events.db``, or the ledger's PostgreSQL schema), the way someone with
the database but not the ledger would; ``audit verify``
must name the first position that differs. Exports are checked offline, forged ones
refused, and proofs from the stored tree checked against an RFC 9162 tree recomputed
here from the export lines, independently of ``ledger.merkle``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path

import msgspec
import pytest
from arms_ledger.cli.demo import SCENARIO
from arms_ledger.cli.main import cli
from arms_ledger.cli.write import load_history, read_events
from arms_ledger.ledger.app import transparency
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.app.boundary import LogMismatch
from arms_ledger.ledger.app.directory import create, open_ledger
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.store import tree
from arms_ledger.ledger.store.recorder import LogRecorder
from arms_ledger.ledger.transparency import merkle, tlog
from arms_ledger.ledger.transparency.note import (
    Checkpoint,
    Signer,
    Verifier,
    open_checkpoint,
)
from arms_ledger.ledger.transparency.tlog import TamperedError
from arms_ledger.projections.engine import PROJECTIONS_DB
from click.testing import CliRunner

from tests import stores
from tests.integration.projection_tables import assert_same_read_models

ORIGIN = "test.example/arms-ledger"
EVENTS = [e for _, e in read_events(SCENARIO.read_bytes().splitlines())]
N = len(EVENTS)
SPLIT = 600  # exports: the first SPLIT events, then all of them
TIME = r"\d+\.\d\d"

# The last line of `audit verify` on a ledger that does not enforce authority.
DECISIONS = sum(e.DECISION for e in EVENTS)
UNSIGNED = re.escape(
    f"{DECISIONS} of {DECISIONS} decisions are unsigned; "
    "this ledger does not enforce authority (no root "
    "named: `arms-ledger init --authority-root KEYFILE`).\n"
)


# --- an RFC 9162 §2.1 tree, written out naively (independent of ledger.merkle) ------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf(line: bytes) -> bytes:
    return sha256(b"\x00" + line)


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = _k(len(leaves))
    return sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


def expected_nodes(n: int) -> int:
    """Perfect subtrees of a tree of n leaves: n leaves, n >> 1 pairs, n >> 2 quads, …"""
    return n + sum(n >> level for level in range(1, max(n.bit_length(), 1)))


# --- helpers ------------------------------------------------------------------------------


@contextmanager
def opened(path: Path) -> Iterator[Ledger]:
    ledger = open_ledger(path)
    try:
        yield ledger
    finally:
        ledger.close()


def events_db(path: Path) -> AbstractContextManager[stores.Raw]:
    """The ledger's event store, opened behind its back; committed on success."""
    return stores.raw(path)


def count(path: Path, table: str) -> int:
    with events_db(path) as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def stored_rows(path: Path) -> list[tuple[int, str, int, str, bytes]]:
    with events_db(path) as db:
        return db.execute(
            "SELECT rowid, originator_id, originator_version, topic, state "
            "FROM stored_events ORDER BY rowid"
        ).fetchall()


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def verifier_of(ledger: Ledger) -> Verifier:
    assert ledger.signer is not None, "the ledger has no signing key"
    return ledger.signer.verifier


def recorder_of(ledger: Ledger) -> LogRecorder:
    assert isinstance(ledger.recorder, LogRecorder)
    return ledger.recorder


def without_stamp(events: list[ev.Event]) -> list[ev.Event]:
    return [msgspec.structs.replace(e, recorded_at=None) for e in events]


def new_partner(code: str) -> ev.Event:
    return ev.decoder.decode(
        json.dumps(
            {
                "type": "PartnerRegistered",
                "partner": code,
                "name": f"Partner {code}",
                "region": "Europe",
                "notification_group": "other",
                "actor": "state.pm-rsat",
            }
        )
    )


def export_lines(directory: Path) -> list[bytes]:
    data = (directory / tlog.EXPORT_EVENTS).read_bytes()
    assert data.endswith(b"\n") or data == b""
    return data.splitlines()


def verify_cli(path: Path):
    return run("--ledger", str(path), "audit", "verify")


def one_line_error(result, message: str) -> None:
    """Exit 1, nothing on stdout, exactly ``Error: message`` on stderr (no traceback)."""
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"Error: {message}\n",
    )
    assert isinstance(result.exception, SystemExit)


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def store(module_store):
    """Every test once per store, beside the module's ledgers of that store."""
    with stores.using(module_store):
        yield module_store


@pytest.fixture(scope="module")
def scenario_dir(tmp_path_factory, module_store) -> Path:
    """The fixture scenario in a ledger (checkpoints on append): built once, never
    changed."""
    path = tmp_path_factory.mktemp("scenario") / "ledger"
    with stores.using(module_store):
        ledger = create(path, origin=ORIGIN)
    assert load_history(ledger, SCENARIO) == N
    ledger.close()
    return path


@pytest.fixture
def copy(scenario_dir: Path, tmp_path: Path) -> Path:
    """A copy of the scenario ledger, with a store of its own."""
    return stores.copy_ledger(scenario_dir, tmp_path / "ledger")


# --- tampering with the store -------------------------------------------------------------


def flip_one_byte(db: stores.Raw) -> None:
    """Italy -> Italx in the name of the partner registered at position 17."""
    (state,) = db.execute("SELECT state FROM stored_events WHERE rowid = 17").fetchone()
    value = json.loads(state)
    assert (value["type"], value["name"]) == ("PartnerRegistered", "Italy")
    old = b'"name":"Italy"'
    assert state.count(old) == 1
    changed = state.replace(old, b'"name":"Italx"')
    assert len(changed) == len(state)
    assert sum(a != b for a, b in zip(state, changed, strict=True)) == 1
    ev.decoder.decode(changed)  # still a valid event: only the Merkle leaf can tell
    db.execute("UPDATE stored_events SET state = ? WHERE rowid = 17", (changed,))


def delete_row(position: int) -> Callable[[stores.Raw], None]:
    def tamper(db: stores.Raw) -> None:
        assert (
            db.execute("DELETE FROM stored_events WHERE rowid = ?", (position,)).rowcount
            == 1
        )

    return tamper


def swap_states(db: stores.Raw) -> None:
    (a,) = db.execute("SELECT state FROM stored_events WHERE rowid = 100").fetchone()
    (b,) = db.execute("SELECT state FROM stored_events WHERE rowid = 200").fetchone()
    assert a != b
    db.execute("UPDATE stored_events SET state = ? WHERE rowid = 100", (b,))
    db.execute("UPDATE stored_events SET state = ? WHERE rowid = 200", (a,))


def swap_whole_rows(db: stores.Raw) -> None:
    """Every column of rows 100 and 200 exchanged: two events' places in the log (the rows'
    positions swapped: SQLite's rowid, PostgreSQL's notification_id)."""
    db.execute("UPDATE stored_events SET rowid = -1 WHERE rowid = 100")
    db.execute("UPDATE stored_events SET rowid = 100 WHERE rowid = 200")
    db.execute("UPDATE stored_events SET rowid = 200 WHERE rowid = -1")


def forge_row(db: stores.Raw) -> None:
    """A copy of the event at position 17 as the next version of its stream, appended
    with an explicit next rowid."""
    stream, topic, state = db.execute(
        "SELECT originator_id, topic, state FROM stored_events WHERE rowid = 17"
    ).fetchone()
    (version,) = db.execute(
        "SELECT max(originator_version) FROM stored_events WHERE originator_id = ?",
        (stream,),
    ).fetchone()
    db.execute(
        "INSERT INTO stored_events "
        "(rowid, originator_id, originator_version, topic, state) "
        "VALUES (?, ?, ?, ?, ?)",
        (N + 1, stream, version + 1, topic, state),
    )


def replace_last_row(db: stores.Raw) -> None:
    """The last event deleted and another put at its position."""
    stream, version, topic, state = db.execute(
        "SELECT originator_id, originator_version, topic, state FROM stored_events "
        "WHERE rowid = ?",
        (N,),
    ).fetchone()
    db.execute("DELETE FROM stored_events WHERE rowid = ?", (N,))
    changed = state.replace(b'"actor":"', b'"actor":"x', 1)
    assert changed != state
    ev.decoder.decode(changed)
    db.execute(
        "INSERT INTO stored_events "
        "(rowid, originator_id, originator_version, topic, state) "
        "VALUES (?, ?, ?, ?, ?)",
        (N, stream, version, topic, changed),
    )


def relabel_topic(db: stores.Raw) -> None:
    db.execute("UPDATE stored_events SET topic = 'CaseFiled' WHERE rowid = 17")


def edit_node(level: int, index: int) -> Callable[[stores.Raw], None]:
    def tamper(db: stores.Raw) -> None:
        (h,) = db.execute(
            "SELECT hash FROM tlog_nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
        changed = bytes([h[0] ^ 1]) + h[1:]
        db.execute(
            "UPDATE tlog_nodes SET hash = ? WHERE level = ? AND idx = ?",
            (changed, level, index),
        )

    return tamper


def delete_node(db: stores.Raw) -> None:
    db.execute("DELETE FROM tlog_nodes WHERE level = 1 AND idx = 5")


def edit_checkpoint_note(db: stores.Raw) -> None:
    (note,) = db.execute("SELECT note FROM tlog_checkpoints WHERE id = 1").fetchone()
    assert f"\n{N}\n" in note
    db.execute(
        "UPDATE tlog_checkpoints SET note = ? WHERE id = 1",
        (note.replace(f"\n{N}\n", f"\n{N - 1}\n"),),
    )


def edit_checkpoint_size(db: stores.Raw) -> None:
    db.execute("UPDATE tlog_checkpoints SET size = size - 1 WHERE id = 1")


LEAF = (
    "the stored event differs from the one the ledger wrote "
    "(its Merkle leaf does not match)"
)

TAMPERING = {
    "one byte of a payload": (flip_one_byte, f"position 17: {LEAF}"),
    "a middle row deleted": (
        delete_row(400),
        "position 400: the event is missing from the log",
    ),
    "the first row deleted": (
        delete_row(1),
        "position 1: the event is missing from the log",
    ),
    "the last row deleted": (
        delete_row(N),
        f"position {N}: the event is missing from the log (the Merkle tree has more leaves "
        "than the log has events)",
    ),
    "two rows' states swapped": (swap_states, f"position 100: {LEAF}"),
    "two whole rows swapped": (swap_whole_rows, f"position 100: {LEAF}"),
    "a forged row appended": (
        forge_row,
        f"position {N + 1}: the event is not in the Merkle tree (it was added behind the "
        "ledger's back)",
    ),
    "the last row replaced": (replace_last_row, f"position {N}: {LEAF}"),
    "a row's topic relabelled": (
        relabel_topic,
        "position 17: stored as CaseFiled of partner:ITA, but the event is a "
        "PartnerRegistered of partner:ITA",
    ),
    "a leaf edited in tlog_nodes": (edit_node(0, 16), f"position 17: {LEAF}"),
    "an inner node edited in tlog_nodes": (
        edit_node(3, 2),
        "the Merkle tree's node over positions 17-24 was changed",
    ),
    "an inner node deleted from tlog_nodes": (
        delete_node,
        "the Merkle tree is missing node 5 of level 1",
    ),
    "a stored checkpoint's note edited": (
        edit_checkpoint_note,
        f"stored checkpoint 1 (size {N}): the signature by {ORIGIN} does not verify: "
        "the note was altered",
    ),
    "a stored checkpoint's size edited": (
        edit_checkpoint_size,
        f"stored checkpoint 1 (size {N - 1}): the note signs size {N}",
    ),
}


@pytest.mark.parametrize(("tamper", "message"), TAMPERING.values(), ids=TAMPERING.keys())
def test_tampering_with_the_store_is_caught(copy, tamper, message):
    with events_db(copy) as db:
        tamper(db)
    with opened(copy) as ledger, pytest.raises(TamperedError) as caught:
        transparency.verify(ledger)
    assert str(caught.value) == message
    one_line_error(verify_cli(copy), message)


def test_the_untampered_scenario_verifies(copy):
    with opened(copy) as ledger:
        report = transparency.verify(ledger)
    assert (report.events, report.nodes, report.checkpoints) == (N, expected_nodes(N), 1)
    assert expected_nodes(N) == count(copy, "tlog_nodes")
    result = verify_cli(copy)
    assert (result.exit_code, result.stderr) == (0, "")
    assert re.fullmatch(
        f"Verified {N:,} events, {expected_nodes(N):,} tree nodes and 1 checkpoint in "
        f"{TIME} s: "
        "the log is intact.\nThe newest checkpoint signed by the key covers every "
        "event.\n" + UNSIGNED,
        result.stdout,
    ), result.stdout


def test_after_a_forged_row_an_append_is_refused_and_nothing_is_written(copy):
    with events_db(copy) as db:
        forge_row(db)
    before = (
        count(copy, "stored_events"),
        count(copy, "tlog_nodes"),
        count(copy, "tlog_checkpoints"),
    )
    message = (
        f"the Merkle tree has {N} leaves but the new events are at positions "
        f"{N + 2}…{N + 2}: the event store was changed behind the ledger's back; "
        "run `arms-ledger audit verify`"
    )
    with opened(copy) as ledger:
        with pytest.raises(TamperedError) as caught:
            ledger.append([new_partner("ZZA")])
        assert str(caught.value) == message
        assert transparency.tree_size(ledger) == N
    line = json.dumps(msgspec.to_builtins(new_partner("ZZB")))
    result = CliRunner().invoke(
        cli,
        ["--ledger", str(copy), "append", "--allow-clock-skew", "-"],
        input=line + "\n",
    )
    one_line_error(result, message)
    after = (
        count(copy, "stored_events"),
        count(copy, "tlog_nodes"),
        count(copy, "tlog_checkpoints"),
    )
    assert after == before == (N + 1, expected_nodes(N), 1)


def test_a_rewritten_history_with_a_recomputed_tree_is_caught_by_a_kept_checkpoint(
    copy, tmp_path
):
    """Whoever holds the file can rewrite an event, rebuild every node and drop the stored
    checkpoints: only a checkpoint kept outside the ledger catches it."""
    with opened(copy) as ledger:
        kept = tmp_path / "kept-checkpoint"
        kept.write_text(transparency.sign_checkpoint(ledger))
    with events_db(copy) as db:
        flip_one_byte(db)
        db.execute("DELETE FROM tlog_nodes")
        db.execute("DELETE FROM tlog_checkpoints")
        rows = db.execute(
            "SELECT rowid, state FROM stored_events ORDER BY rowid"
        ).fetchall()
        builder = merkle.Builder()
        db.executemany(
            "INSERT INTO tlog_nodes (level, idx, hash) VALUES (?, ?, ?)",
            [n for p, s in rows for n in builder.add(leaf(tlog.leaf_line(p, s)))],
        )
    # The checkpoint the directory keeps outside the store catches it on open ...
    with pytest.raises(LogMismatch, match=f"holds another history: its first {N:,} events"):
        open_ledger(copy)
    (copy / "checkpoint").unlink()  # ... unless the forger removes it too
    with opened(copy) as ledger:
        assert (
            transparency.verify(ledger).events == N
        )  # the forger's tree is self-consistent
        verifier = verifier_of(ledger)
        trusted = tlog.open_trusted(kept, verifier)
        with pytest.raises(TamperedError) as caught:
            transparency.verify(ledger, [trusted])
    message = (
        f"the trusted checkpoint {kept} (size {N}) is not consistent with the log: "
        "history was rewritten"
    )
    assert str(caught.value) == message
    result = run(
        "--ledger", str(copy), "audit", "verify", "--trusted-checkpoint", str(kept)
    )
    one_line_error(result, message)


# --- the tree is incremental and consistent -----------------------------------------------


def test_the_tree_grows_batch_by_batch_and_keeps_every_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ledger"
    ledger = create(path, origin=ORIGIN)
    ledger.import_history(EVENTS[:500])
    batches = [1, 2, 3, 127, 128, 1, N - 500 - 262]
    assert sum(batches) == N - 500
    rest = without_stamp(EVENTS[500:])
    notes = [c.note for c in transparency.checkpoints(ledger)]
    sizes, size = [500], 500

    hashed = {"leaf": 0, "node": 0}
    read: list[int] = []
    leaf_hash, node_hash = merkle.leaf_hash, merkle.node_hash
    nodes = recorder_of(ledger).tree.nodes

    def counting_leaf(data: bytes) -> bytes:
        hashed["leaf"] += 1
        return leaf_hash(data)

    def counting_node(left: bytes, right: bytes) -> bytes:
        hashed["node"] += 1
        return node_hash(left, right)

    def reading(c, wanted):
        read.append(len(wanted))
        return nodes(c, wanted)

    try:
        for number, k in enumerate(batches):
            hashed.update(leaf=0, node=0)
            read.clear()
            with monkeypatch.context() as m:
                m.setattr(merkle, "leaf_hash", counting_leaf)
                m.setattr(merkle, "node_hash", counting_node)
                m.setattr(recorder_of(ledger).tree, "nodes", reading)
                ledger.append(rest[size - 500 : size - 500 + k])
            # O(k log n) at most, never the whole tree: k leaves, about k merges, plus
            # the O(log n) fold of the root the checkpoint signs, and the O(log n)
            # consistency proof from the previous checkpoint checked before signing
            bound = (size + k).bit_length()
            assert hashed["leaf"] == k
            assert hashed["node"] <= k + 4 * bound, (k, hashed)
            assert sum(read) <= 3 * bound, read
            size += k
            sizes.append(size)

            lines = export_lines(_export(ledger, tmp_path / f"export-{number}"))
            assert len(lines) == size
            assert transparency.root(ledger) == mth([leaf(x) for x in lines])
            assert count(path, "tlog_nodes") == expected_nodes(size)
            stored = transparency.checkpoints(ledger)
            assert [c.size for c in stored] == sizes  # one per append, none replaced
            assert [c.note for c in stored[:-1]] == notes
            notes = [c.note for c in stored]
            checkpoint = open_checkpoint(stored[-1].note, verifier_of(ledger))
            assert checkpoint == Checkpoint(ORIGIN, size, transparency.root(ledger))
        assert size == N
        assert transparency.verify(ledger).checkpoints == len(batches) + 1
    finally:
        ledger.close()


def _export(ledger: Ledger, directory: Path) -> Path:
    transparency.export(ledger, directory)
    return directory


def test_manual_checkpoints_are_signed_only_when_asked_and_once_per_size(tmp_path):
    path = tmp_path / "ledger"
    ledger = create(path, origin=ORIGIN, checkpoints="manual")
    try:
        ledger.import_history(EVENTS[:300])
        ledger.append(without_stamp(EVENTS[300:310]))
        assert transparency.checkpoints(ledger) == []
        first = transparency.sign_checkpoint(ledger)
        assert transparency.sign_checkpoint(ledger) == first  # Ed25519 is deterministic
        assert [(c.id, c.size, c.note) for c in transparency.checkpoints(ledger)] == [
            (1, 310, first)
        ]
        assert open_checkpoint(first, verifier_of(ledger)) == Checkpoint(
            ORIGIN, 310, transparency.root(ledger)
        )
        ledger.append(without_stamp(EVENTS[310:320]))
        assert [c.size for c in transparency.checkpoints(ledger)] == [310]
        second = transparency.sign_checkpoint(ledger)
        assert [(c.size, c.note) for c in transparency.checkpoints(ledger)] == [
            (310, first),
            (320, second),
        ]
        assert transparency.verify(ledger).checkpoints == 2
    finally:
        ledger.close()
    assert json.loads((path / "ledger.json").read_text())["checkpoints"] == "manual"
    with opened(path) as again:  # the policy is kept across opens
        again.append(without_stamp(EVENTS[320:330]))
        assert [c.size for c in transparency.checkpoints(again)] == [310, 320]


# --- proofs and past roots ----------------------------------------------------------------


SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 100, 255, 256, 257, 511, 512, 513, 600, N - 1, N]


@pytest.fixture
def spied(copy, monkeypatch) -> Iterator[tuple[Ledger, list[int], list[bytes]]]:
    """The scenario ledger with every read of tree nodes counted, and its export lines."""
    with opened(copy) as ledger:
        lines = export_lines(_export(ledger, copy.parent / "export"))
        reads: list[int] = []
        original = recorder_of(ledger).tree_nodes

        def tree_nodes(wanted):
            reads.append(len(wanted))
            return original(wanted)

        monkeypatch.setattr(ledger.recorder, "tree_nodes", tree_nodes)
        yield ledger, reads, lines


def test_roots_of_past_sizes_equal_fresh_trees_over_the_first_lines(spied):
    ledger, reads, lines = spied
    leaves = [leaf(x) for x in lines]
    for size in [0, *SIZES]:
        reads.clear()
        assert transparency.root(ledger, size) == mth(leaves[:size]), size
        assert len(reads) == 1 and reads[0] <= max(size.bit_length(), 0), (size, reads)
    assert transparency.root(ledger) == transparency.root(ledger, N)


def test_inclusion_proofs_verify_for_past_sizes_and_read_log_n_nodes(spied):
    ledger, reads, lines = spied
    rng = random.Random(4)
    checked = 0
    for size in SIZES:
        root = transparency.root(ledger, size)
        indexes = {0, size - 1, size // 2, *(rng.randrange(size) for _ in range(5))}
        for index in sorted(indexes):
            reads.clear()
            n, proof = transparency.prove_inclusion(ledger, index, size)
            assert n == size
            assert reads == [reads[0]] and reads[0] <= 2 * size.bit_length(), reads
            assert len(proof) <= math.ceil(math.log2(size)) if size > 1 else proof == []
            merkle.verify_inclusion(index, size, leaf(lines[index]), proof, root)
            if size > 1:  # the proof is for this leaf only
                other = (index + 1) % size
                with pytest.raises(merkle.ProofError):
                    merkle.verify_inclusion(other, size, leaf(lines[other]), proof, root)
            checked += 1
    assert checked > 100
    n, proof = transparency.prove_inclusion(ledger, 16)  # the whole log by default
    assert n == N
    merkle.verify_inclusion(16, N, leaf(lines[16]), proof, mth([leaf(x) for x in lines]))


def test_consistency_proofs_verify_between_past_sizes_and_read_log_n_nodes(spied):
    ledger, reads, _ = spied
    roots = {size: transparency.root(ledger, size) for size in SIZES}
    pairs = [(old, new) for old in SIZES for new in SIZES if old <= new]
    for old, new in pairs:
        reads.clear()
        n, proof = transparency.prove_consistency(ledger, old, new)
        assert n == new
        assert reads == [reads[0]] and reads[0] <= 2 * new.bit_length(), (old, new, reads)
        merkle.verify_consistency(old, new, roots[old], roots[new], proof)
        if 1 < old < new:  # and for these two trees only
            with pytest.raises(merkle.ProofError):
                merkle.verify_consistency(old - 1, new, roots[old], roots[new], proof)
    assert len(pairs) > 200


# --- exports ------------------------------------------------------------------------------


class Exports:
    """A ledger exported at SPLIT events (A) and at N events (B), and a fork of it."""

    def __init__(self, root: Path):
        self.ledger = root / "ledger"
        self.a, self.b = root / "export-a", root / "export-b"
        self.fork = root / "fork"
        self.fork_checkpoint = root / "fork-checkpoint"


@pytest.fixture(scope="module")
def exports(tmp_path_factory, module_store) -> Exports:
    x = Exports(tmp_path_factory.mktemp("exports"))
    with stores.using(module_store):
        ledger = create(x.ledger, origin=ORIGIN)
    ledger.import_history(EVENTS[:SPLIT])
    ledger.close()
    result = run("--ledger", str(x.ledger), "audit", "export", str(x.a))
    assert result.exit_code == 0, result.stderr
    # a fork: the same key signs another history after SPLIT (in a store of its own)
    stores.copy_ledger(x.ledger, x.fork)
    with opened(x.fork) as fork:
        fork.append([new_partner("ZZZ")])
        x.fork_checkpoint.write_text(transparency.latest_checkpoint(fork)[0])
    with opened(x.ledger) as ledger:
        rest = without_stamp(EVENTS[SPLIT:])
        ledger.append(rest[:100])
        ledger.append(rest[100:])
    result = run("--ledger", str(x.ledger), "audit", "export", str(x.b))
    assert result.exit_code == 0, result.stderr
    return x


def key_of(path: Path) -> str:
    return (path / "verifier.key").read_text().strip()


def checkpoint_of(directory: Path) -> Checkpoint:
    return Checkpoint.parse(_text((directory / "checkpoint").read_text()))


def _text(note: str) -> str:
    return note[: note.rfind("\n\n") + 1]


def queue_json(path: Path) -> str:
    result = run("--ledger", str(path), "queue", "f-35a", "--json")
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_export_verify_append_export_again_and_prove_consistency(exports, tmp_path):
    key = key_of(exports.ledger)
    a, b = checkpoint_of(exports.a), checkpoint_of(exports.b)
    assert (a.origin, a.size, b.origin, b.size) == (ORIGIN, SPLIT, ORIGIN, N)
    assert sorted(p.name for p in exports.a.iterdir()) == [
        "checkpoint",
        "events.jsonl",
        "verifier.key",
    ]
    assert (exports.a / "verifier.key").read_text() == f"{key}\n"

    # A, offline: signature, root, and a replica to query
    replica_a = tmp_path / "replica-a"
    result = run(
        "audit", "verify-export", str(exports.a), "--key", key, "--into", str(replica_a)
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        f"Checkpoint of {ORIGIN}: {SPLIT} events, root {b64(a.root)}, signature verified.\n"
        f"events.jsonl: {SPLIT} events; their Merkle root matches.\n"
        f"Rebuilt the read models from the export into a read-only replica at "
        f"{replica_a}; query them with `arms-ledger --ledger {replica_a} queue`.\n"
    )
    assert re.fullmatch(f"\\({TIME} s\\)\n", result.stderr)
    replica = open_ledger(replica_a, write=False)  # a replica is read-only
    try:
        assert transparency.root(replica) == a.root
        assert transparency.tree_size(replica) == SPLIT
    finally:
        replica.close()
    lines_a = export_lines(exports.a)
    assert mth([leaf(x) for x in lines_a]) == a.root

    # B extends A: verified against A's checkpoint as the auditor kept it
    replica_b = tmp_path / "replica-b"
    result = run(
        "audit",
        "verify-export",
        str(exports.b),
        "--key",
        key,
        "--trusted-checkpoint",
        str(exports.a / "checkpoint"),
        "--into",
        str(replica_b),
    )
    assert result.exit_code == 0, result.stderr
    proof_length = len(merkle.consistency_ranges(SPLIT, N))
    assert result.stdout == (
        f"Checkpoint of {ORIGIN}: {N} events, root {b64(b.root)}, signature verified.\n"
        f"events.jsonl: {N} events; their Merkle root matches.\n"
        f"Consistent with {exports.a / 'checkpoint'} (proof of {proof_length} hashes): "
        "nothing it signed was changed, removed or reordered.\n"
        f"Rebuilt the read models from the export into a read-only replica at "
        f"{replica_b}; query them with `arms-ledger --ledger {replica_b} queue`.\n"
    )
    lines_b = export_lines(exports.b)
    assert lines_b[:SPLIT] == lines_a
    assert mth([leaf(x) for x in lines_b]) == b.root

    # the proof the operator prints verifies between the two checkpoints' roots
    result = run("--ledger", str(exports.ledger), "audit", "consistency", str(SPLIT))
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    assert list(printed) == ["old_size", "new_size", "hashes"]
    assert (printed["old_size"], printed["new_size"]) == (SPLIT, N)
    proof = [base64.b64decode(h, validate=True) for h in printed["hashes"]]
    merkle.verify_consistency(SPLIT, N, a.root, b.root, proof)
    verifier = Verifier.parse(key)
    offline = tlog.read_export(
        exports.b, verifier, tlog.open_trusted(exports.a / "checkpoint", verifier)
    )
    assert offline.consistency == proof

    # the replica's read models are the original's
    assert queue_json(replica_b) == queue_json(exports.ledger) != "[]\n"
    with (
        closing(sqlite3.connect(replica_b / PROJECTIONS_DB)) as mine,
        closing(sqlite3.connect(exports.ledger / PROJECTIONS_DB)) as theirs,
    ):
        assert_same_read_models(mine, theirs)
    result = verify_cli(replica_b)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(
        f"Verified {N} events, {expected_nodes(N):,} tree nodes and 1 checkpoint in "
    )


def _forge(exports: Exports, tmp_path: Path, change: Callable[[Path], None]) -> Path:
    target = tmp_path / "export"
    shutil.copytree(exports.b, target)
    change(target)
    return target


def _lines(directory: Path) -> list[bytes]:
    return (directory / "events.jsonl").read_bytes().splitlines(keepends=True)


def _write(directory: Path, lines: list[bytes]) -> None:
    (directory / "events.jsonl").write_bytes(b"".join(lines))


def change_one_byte(d: Path) -> None:
    lines = _lines(d)
    assert b'"name":"Italy"' in lines[16]
    lines[16] = lines[16].replace(b'"name":"Italy"', b'"name":"Italx"')
    _write(d, lines)


def drop_last_line(d: Path) -> None:
    _write(d, _lines(d)[:-1])


def drop_middle_line(d: Path) -> None:
    lines = _lines(d)
    _write(d, lines[:399] + lines[400:])


def cut_last_line(d: Path) -> None:
    data = (d / "events.jsonl").read_bytes()
    (d / "events.jsonl").write_bytes(data[:-10])


def add_a_line(d: Path) -> None:
    lines = _lines(d)
    extra = tlog.leaf_line(N + 1, tlog.state_of(lines[16][:-1], 17))
    _write(d, [*lines, extra + b"\n"])


def swap_two_lines(d: Path) -> None:
    lines = _lines(d)
    lines[99], lines[199] = lines[199], lines[99]
    _write(d, lines)


def sign_with_another_key(d: Path) -> None:
    other = Signer.generate(ORIGIN)  # the same name, another key
    cp = checkpoint_of(d)
    (d / "checkpoint").write_text(other.sign(cp.text()))


def edit_the_checkpoint(d: Path) -> None:
    note = (d / "checkpoint").read_text()
    (d / "checkpoint").write_text(note.replace(f"\n{N}\n", f"\n{N - 1}\n"))


def _files(d: Path) -> tuple[Path, Path]:
    return d / "events.jsonl", d / "checkpoint"


FORGED_EXPORTS = {
    "one byte of a line changed": (
        change_one_byte,
        lambda d: (
            f"the root of {_files(d)[0]} is "
            f"{b64(mth([leaf(x) for x in export_lines(d)]))}, the checkpoint signs "
            f"{b64(checkpoint_of(d).root)}: the events were altered"
        ),
    ),
    "the last line dropped (truncated)": (
        drop_last_line,
        lambda d: (
            f"{_files(d)[0]} has {N - 1} events; the checkpoint signs {N}: the export "
            "is truncated"
        ),
    ),
    "a middle line dropped": (
        drop_middle_line,
        lambda d: f'{_files(d)[0]}: line 400 does not start with {{"position":400,',
    ),
    "the last line cut short": (
        cut_last_line,
        lambda d: f"{_files(d)[0]} line {N} is cut short (no newline)",
    ),
    "an extra line": (
        add_a_line,
        lambda d: f"{_files(d)[0]} has more than the {N} events its checkpoint signs",
    ),
    "two lines swapped": (
        swap_two_lines,
        lambda d: f'{_files(d)[0]}: line 100 does not start with {{"position":100,',
    ),
    "a checkpoint signed by another key": (
        sign_with_another_key,
        lambda d: (
            f"{_files(d)[1]}: the note is not signed by {ORIGIN} (key id "
            f"{Verifier.parse(key_of(d)).id.hex()})"
        ),
    ),
    "the checkpoint edited": (
        edit_the_checkpoint,
        lambda d: (
            f"{_files(d)[1]}: the signature by {ORIGIN} does not verify: the note was "
            "altered"
        ),
    ),
}


@pytest.mark.parametrize(
    ("change", "message"), FORGED_EXPORTS.values(), ids=FORGED_EXPORTS.keys()
)
def test_a_forged_or_truncated_export_is_refused(exports, tmp_path, change, message):
    forged = _forge(exports, tmp_path, change)
    expected = message(forged)
    key = key_of(exports.ledger)
    with pytest.raises(TamperedError) as caught:
        tlog.read_export(forged, Verifier.parse(key))
    assert str(caught.value) == expected
    result = run("audit", "verify-export", str(forged), "--key", key)
    one_line_error(result, expected)
    assert not (forged / "replica").exists()
    replica = tmp_path / "replica"
    result = run(
        "--ledger", str(replica), "init", "--from-export", str(forged), "--key", key
    )
    one_line_error(result, expected)
    assert not replica.exists()


@pytest.fixture
def other_log(tmp_path) -> Path:
    path = tmp_path / "other"
    ledger = create(path, origin="other.example/log")
    ledger.import_history(EVENTS[:SPLIT])
    note = transparency.sign_checkpoint(ledger)
    ledger.close()
    (tmp_path / "other-checkpoint").write_text(note)
    return tmp_path / "other-checkpoint"


def test_a_trusted_checkpoint_of_another_log_is_refused(exports, other_log, tmp_path):
    key = key_of(exports.ledger)
    expected = (
        f"the trusted checkpoint {other_log}: the note is not signed by {ORIGIN} "
        f"(key id {Verifier.parse(key).id.hex()})"
    )
    target = tmp_path / "export"
    shutil.copytree(exports.b, target)
    result = run(
        "audit",
        "verify-export",
        str(target),
        "--key",
        key,
        "--trusted-checkpoint",
        str(other_log),
    )
    one_line_error(result, expected)
    assert not (target / "replica").exists()


def test_a_trusted_checkpoint_of_a_rewritten_history_is_refused(exports, tmp_path):
    """The fork and the log share their key and first SPLIT events, then differ."""
    key = key_of(exports.ledger)
    fork = open_checkpoint(exports.fork_checkpoint.read_text(), Verifier.parse(key))
    assert fork.size == SPLIT + 1
    target = tmp_path / "export"
    shutil.copytree(exports.b, target)
    expected = (
        f"the trusted checkpoint {exports.fork_checkpoint} is not consistent with the "
        "export "
        f"(the proof does not lead to the root of size {SPLIT + 1}): history was rewritten"
    )
    result = run(
        "audit",
        "verify-export",
        str(target),
        "--key",
        key,
        "--trusted-checkpoint",
        str(exports.fork_checkpoint),
    )
    one_line_error(result, expected)
    assert not (target / "replica").exists()
    # and the log itself says the same of the fork's checkpoint
    with opened(exports.ledger) as ledger, pytest.raises(TamperedError) as caught:
        transparency.verify(
            ledger, [tlog.open_trusted(exports.fork_checkpoint, Verifier.parse(key))]
        )
    assert str(caught.value) == (
        f"the trusted checkpoint {exports.fork_checkpoint} (size {SPLIT + 1}) is not "
        "consistent with the log: history was rewritten"
    )


def test_an_export_older_than_the_trusted_checkpoint_is_refused(exports, tmp_path):
    key = key_of(exports.ledger)
    target = tmp_path / "export"
    shutil.copytree(exports.a, target)
    result = run(
        "audit",
        "verify-export",
        str(target),
        "--key",
        key,
        "--trusted-checkpoint",
        str(exports.b / "checkpoint"),
    )
    one_line_error(
        result,
        f"the trusted checkpoint {exports.b / 'checkpoint'} signs {N} events but the "
        f"export's checkpoint only {SPLIT}: the log was truncated",
    )
    assert not (target / "replica").exists()


def test_a_trusted_checkpoint_of_the_empty_log_is_extended_by_any_export(tmp_path):
    path = tmp_path / "ledger"
    ledger = create(path, origin=ORIGIN)
    empty = tmp_path / "empty-checkpoint"
    empty.write_text(transparency.sign_checkpoint(ledger))
    ledger.import_history(EVENTS[:50])
    transparency.export(ledger, tmp_path / "export")
    verifier = verifier_of(ledger)
    ledger.close()
    export = tlog.read_export(
        tmp_path / "export", verifier, tlog.open_trusted(empty, verifier)
    )
    assert export.checkpoint.size == 50
    result = run(
        "audit",
        "verify-export",
        str(tmp_path / "export"),
        "--key",
        str(verifier),
        "--trusted-checkpoint",
        str(empty),
    )
    assert result.exit_code == 0, result.stderr


def test_init_from_export_starts_a_replica_with_the_original_tree(exports, tmp_path):
    key = key_of(exports.ledger)
    replica = tmp_path / "replica"
    result = run(
        "--ledger",
        str(replica),
        "init",
        "--from-export",
        str(exports.b),
        "--key",
        key,
        "--trusted-checkpoint",
        str(exports.a / "checkpoint"),
    )
    assert result.exit_code == 0, result.stderr
    b = checkpoint_of(exports.b)
    own = key_of(replica)
    assert own != key
    assert result.stdout == (
        f"Checkpoint of {ORIGIN}: {N} events, root {b64(b.root)}, signature verified.\n"
        f"events.jsonl: {N} events; their Merkle root matches.\n"
        f"Consistent with {exports.a / 'checkpoint'} (proof of "
        f"{len(merkle.consistency_ranges(SPLIT, N))} hashes): nothing it signed was "
        "changed, "
        "removed or reordered.\n"
        f"Created a replica at {replica} with {N} events.\n"
        f"Its own verifier key: {own}\n"
    )
    result = verify_cli(replica)
    assert result.exit_code == 0, result.stderr
    assert re.fullmatch(
        f"Verified {N} events, {expected_nodes(N):,} tree nodes and 2 checkpoints in "
        f"{TIME} s: "
        "the log is intact.\nThe newest checkpoint signed by the key covers every "
        "event.\n" + UNSIGNED,
        result.stdout,
    )
    with opened(replica) as mine, opened(exports.ledger) as theirs:
        assert transparency.root(mine) == transparency.root(theirs, N) == b.root
        assert (
            transparency.root(mine, SPLIT)
            == transparency.root(theirs, SPLIT)
            == checkpoint_of(exports.a).root
        )
        assert (exports.b / "checkpoint").read_text() in [
            c.note for c in transparency.checkpoints(mine)
        ]
        assert [r.event for r in mine.read()] == [r.event for r in theirs.read(upto=N)]
    assert queue_json(replica) == queue_json(exports.ledger)


# --- format 1 -----------------------------------------------------------------------------


# SQLite only: format 1 predates the PostgreSQL store (every format-1 ledger is an
# events.db).
@pytest.mark.parametrize("module_store", ["sqlite"], indirect=True)
def test_a_format_1_ledger_is_upgraded_on_open(copy):
    with opened(copy) as ledger:
        root = transparency.root(ledger)
    for name in ("signing.key", "verifier.key", "checkpoint"):
        (copy / name).unlink()
    with events_db(copy) as db:
        db.execute("DROP TABLE tlog_nodes")
        db.execute("DROP TABLE tlog_checkpoints")
    (copy / "ledger.json").write_text(
        json.dumps(
            {"format": 1, "store": "sqlite", "created_at": "2026-01-02T03:04:05Z"}, indent=2
        )
        + "\n"
    )
    result = verify_cli(copy)  # the first open upgrades it
    assert result.exit_code == 0, result.stderr
    assert re.fullmatch(
        f"Verified {N} events, {expected_nodes(N):,} tree nodes and 0 checkpoints in "
        f"{TIME} s: "
        "the log is intact.\nNo checkpoint signed by the key covers any event yet: "
        "`arms-ledger audit checkpoint` signs one.\n" + UNSIGNED,
        result.stdout,
    )
    meta = json.loads((copy / "ledger.json").read_text())
    assert meta["format"] == 2 and meta["checkpoints"] == "append"
    assert meta["created_at"] == "2026-01-02T03:04:05Z"
    assert (copy / "signing.key").stat().st_mode & 0o777 == 0o600
    verifier = Verifier.parse((copy / "verifier.key").read_text())
    assert verifier.name == meta["origin"]
    assert Signer.parse((copy / "signing.key").read_text()).verifier == verifier
    with opened(copy) as ledger:
        assert transparency.root(ledger) == root  # the same tree, rebuilt from the events
        assert count(copy, "tlog_nodes") == expected_nodes(N)
        ledger.append([new_partner("ZZA")])
        assert [c.size for c in transparency.checkpoints(ledger)] == [N + 1]
        assert transparency.verify(ledger).events == N + 1


# --- leaves -------------------------------------------------------------------------------


def test_every_leaf_is_the_canonical_export_line(copy, tmp_path):
    result = run("--ledger", str(copy), "audit", "export", str(tmp_path / "export"))
    assert result.exit_code == 0, result.stderr
    data = (tmp_path / "export" / "events.jsonl").read_bytes()
    assert data.endswith(b"\n")
    lines = data[:-1].split(b"\n")
    rows = stored_rows(copy)
    logged = json.loads(run("--ledger", str(copy), "log", "--json").stdout)
    assert len(lines) == len(rows) == len(logged) == N
    for line, (position, _, _, _, state), row in zip(lines, rows, logged, strict=True):
        assert line == b'{"position":%d,' % position + state[1:]
        assert b"\n" not in line and b"\r" not in line
        value = json.loads(line)
        assert value == row
        assert list(value) == list(row)
        compact = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        assert compact == line
        assert tlog.leaf_line(position, state) == line
    with opened(copy) as ledger:
        assert transparency.root(ledger) == mth([leaf(x) for x in lines])


# SQLite only: the plan of SQLite's query planner over the tree's SQL (no ledger is made).
@pytest.mark.parametrize("module_store", ["sqlite"], indirect=True)
def test_node_lookups_search_the_primary_key_and_never_scan_the_tree(tmp_path):
    """Proofs, roots and every append read their O(log n) nodes by key (a table scan here
    made a proof on a 100,000-event ledger take 25 ms instead of 0.2 ms)."""
    db = sqlite3.connect(tmp_path / "plan.db")
    for statement in tree.CREATE_STATEMENTS:
        db.execute(statement)

    class Explain:
        def execute(self, sql, params=()):
            self.plan = db.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()

        def fetchall(self):
            return []

    cursor = Explain()
    with pytest.raises(tlog.TamperedError):  # the table is empty: the nodes are missing
        tree.StoredTree().nodes(cursor, merkle.frontier_nodes(1_000_003))
    details = [row[-1] for row in cursor.plan]
    assert not [d for d in details if d.startswith("SCAN")], details
    assert any("USING PRIMARY KEY" in d for d in details), details
