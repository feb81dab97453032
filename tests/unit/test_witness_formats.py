"""Cosignatures, the add-checkpoint protocol, policies and receipts, without a ledger.

The cosignature bytes are checked with nothing but hashlib, struct, base64 and the
``cryptography`` primitives, as another implementation would check them (C2SP
tlog-cosignature); the witness's answers are the status codes of C2SP tlog-witness.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import tempfile
from pathlib import Path

import pytest
from arms_ledger.ledger.app import witness
from arms_ledger.ledger.errors import LedgerError
from arms_ledger.ledger.transparency import merkle, receipt
from arms_ledger.ledger.transparency.cosignature import (
    AddCheckpoint,
    Cosigner,
    CosignerKey,
    parse_add_checkpoint,
)
from arms_ledger.ledger.transparency.note import Checkpoint, NoteError, Signer
from arms_ledger.ledger.transparency.policy import Policy, PolicyError
from arms_ledger.ledger.transparency.tlog import TamperedError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

ORIGIN = "log.example/a"


class Log:
    """A log of ``leaf-N`` entries, signed by ``signer``."""

    def __init__(self, signer: Signer, prefix: bytes = b"leaf-"):
        self.signer, self.prefix = signer, prefix

    def leaves(self, size: int) -> list[bytes]:
        return [merkle.leaf_hash(self.prefix + b"%d" % i) for i in range(size)]

    def nodes(self, size: int):
        return _nodes(self.leaves(size))

    def note(self, size: int) -> str:
        root = merkle.root_from(size, self.nodes(size)(merkle.frontier_nodes(size)))
        return self.signer.sign(Checkpoint(self.signer.name, size, root).text())

    def request(self, old: int, size: int) -> bytes:
        proof = (
            merkle.prove_consistency(old, size, self.nodes(size)) if 0 < old < size else []
        )
        return AddCheckpoint(old, proof, self.note(size)).body()


def _nodes(leaves: list[bytes]):
    """The stored-node reader of a tree over ``leaves``, computed naively."""

    def get(wanted):
        return {
            n: _mth(leaves[n.index << n.level : (n.index + 1) << n.level]) for n in wanted
        }

    return get


def _mth(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = merkle.split(len(leaves))
    return merkle.node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


def test_a_cosignature_is_the_c2sp_bytes():
    cosigner = Cosigner.generate("witness.example/w1")
    text = f"{ORIGIN}\n7\n{base64.b64encode(b'x' * 32).decode()}\n"
    line = cosigner.cosign(text, 1_700_000_000)
    assert line.startswith("\u2014 witness.example/w1 ") and line.endswith("\n")
    raw = base64.b64decode(line.split(" ")[2])
    public = cosigner.key.public
    assert raw[:4] == hashlib.sha256(b"witness.example/w1\n\x04" + public).digest()[:4]
    assert struct.unpack(">Q", raw[4:12]) == (1_700_000_000,)
    message = b"cosignature/v1\ntime 1700000000\n" + text.encode()
    Ed25519PublicKey.from_public_bytes(public).verify(raw[12:], message)  # no error
    vkey = str(cosigner.key)
    assert vkey == (
        f"witness.example/w1+{raw[:4].hex()}+" + base64.b64encode(b"\x04" + public).decode()
    )
    assert CosignerKey.parse(vkey) == cosigner.key
    assert Cosigner.parse(str(cosigner)).key == cosigner.key
    note = f"{text}\n\u2014 {ORIGIN} AAAAAAAA\n{line}"
    assert CosignerKey.parse(vkey).timestamp(note) == 1_700_000_000
    with pytest.raises(NoteError, match="does not verify"):
        CosignerKey.parse(vkey).timestamp(note.replace("\n7\n", "\n8\n"))


def test_the_add_checkpoint_body_round_trips():
    note = Log(Signer.generate(ORIGIN)).note(5)
    request = AddCheckpoint(3, [b"a" * 32, b"b" * 32], note)
    assert (
        request.body()
        .decode()
        .startswith(f"old 3\n{base64.b64encode(b'a' * 32).decode()}\n")
    )
    assert parse_add_checkpoint(request.body()) == request
    for bad, message in [
        (b"old 03\n\n" + note.encode(), "is not 'old <size>'"),
        (b"old 3\n", "no empty line"),
        (b"old 3\nAAAA\n\n" + note.encode(), "not a 32-byte hash"),
    ]:
        with pytest.raises(NoteError, match=message):
            parse_add_checkpoint(bad)


@pytest.fixture
def served(tmp_path: Path):
    signer = Signer.generate(ORIGIN)
    witness.init(tmp_path / "w", "witness.example/w1")
    witness.add_log(tmp_path / "w", str(signer.verifier))
    return witness.Witness(tmp_path / "w", clock=lambda: 1_700_000_000), Log(signer)


def test_the_witness_answers_as_tlog_witness_says(served, tmp_path):
    w, log = served
    first = w.add_checkpoint(log.request(0, 5))
    assert first.status == 200
    key = w.cosigner.key
    assert key.timestamp(log.note(5) + first.body.decode()) == 1_700_000_000
    assert w.add_checkpoint(log.request(5, 9)).status == 200  # a consistency proof
    assert w.add_checkpoint(log.request(9, 9)).status == 200  # the same again
    stale = w.add_checkpoint(log.request(5, 12))
    assert stale == witness.Response(409, "text/x.tlog.size", b"9\n")
    rollback = w.add_checkpoint(AddCheckpoint(9, [], log.note(7)).body())
    assert rollback.status == 400
    assert w.add_checkpoint(log.request(0, 7)) == stale  # a rollback
    other = Log(Signer.generate("log.example/b"))
    assert w.add_checkpoint(other.request(0, 3)).status == 404
    impostor = Log(Signer.generate(ORIGIN))  # the origin, another key
    assert w.add_checkpoint(impostor.request(0, 3)).status == 403
    assert w.add_checkpoint(b"old x\n\n").status == 400
    # A fork under the log's own key: refused, both checkpoints kept.
    fork = Log(log.signer, prefix=b"other-")
    assert w.add_checkpoint(fork.request(9, 12)).status == 422
    assert w.add_checkpoint(fork.request(9, 9)).status == 409
    kept = sorted((tmp_path / "w" / witness.EVIDENCE).iterdir())
    assert len(kept) == 2
    assert (
        kept[0].read_text().count(f"{ORIGIN}\n9\n")
        + kept[1].read_text().count(f"{ORIGIN}\n12\n")
        >= 1
    )
    # Restarted: the state is on disk.
    again = witness.Witness(tmp_path / "w")
    latest = again.latest(ORIGIN)
    assert latest is not None and latest[1].size == 9
    assert again.add_checkpoint(log.request(0, 12)).body == b"9\n"


def test_a_witness_refuses_a_key_others_can_read(served, tmp_path):
    (tmp_path / "w" / witness.KEY_FILE).chmod(0o644)
    with pytest.raises(LedgerError, match="can be read by other users"):
        witness.Witness(tmp_path / "w")


def _keys(n: int) -> list[str]:
    return [str(Cosigner.generate(f"w.example/{i}").key) for i in range(n)]


def test_policies_parse_and_count_quorums():
    x1, x2, x3, y1, y2 = _keys(5)
    log = Signer.generate(ORIGIN).verifier
    policy = Policy.parse(
        f"# two organisations\nlog {log}\n\nwitness X1 {x1}\nwitness X2 {x2} http://x\n"
        f"witness X3 {x3}\t\ngroup X 2 X1 X2 X3\n"
        f"  witness Y1 {y1}\nwitness Y2 {y2}\ngroup Y any Y1 Y2\n"
        "group XY all X Y\nquorum XY\n"
    )
    assert policy.logs == [log]
    assert policy.witnesses["X2"].url == "http://x"
    assert policy.describe() == "all of (2 of X1, X2, X3), (1 of Y1, Y2)"
    assert policy.met({"X1", "X3", "Y2"})
    assert not policy.met({"X1", "X2", "X3"})
    assert not policy.met({"X1", "Y1", "Y2"})
    assert Policy.parse("quorum none\n").met(set())
    assert Policy.parse(f"witness A {x1}\nquorum A\n").met({"A"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "has no quorum line"),
        ("quorum A\n", "line 1: 'A' is not a witness or group defined above"),
        ("witness A {k0}\nwitness B {k0}\nquorum A\n", "line 2: the key of witness B"),
        ("witness A {k0}\nwitness A {k1}\nquorum A\n", "line 2: the name 'A' is already"),
        ("witness A {k0}\ngroup G 2 A\nquorum G\n", "line 2: group G: the threshold '2'"),
        ("witness A {k0}\ngroup G any A A\nquorum G\n", "line 2: group G lists a member"),
        ("witness A {log}\nquorum A\n", "line 1: the key of w.example/log is not a"),
        ("witness none {k0}\nquorum none\n", "line 1: the name 'none' is already"),
        ("quorum none\nquorum none\n", "line 2: a second quorum line"),
        ("witnesses A {k0}\n", "line 1: unknown keyword 'witnesses'"),
    ],
)
def test_malformed_policies_are_refused_naming_the_line(text, message):
    k0, k1 = _keys(2)
    log = Signer.generate("w.example/log").verifier
    with pytest.raises(PolicyError, match=message.replace("(", r"\(")):
        Policy.parse(text.format(k0=k0, k1=k1, log=log), "p")


def test_a_receipt_round_trips_and_proves_its_event():
    signer = Signer.generate(ORIGIN)
    lines = [b'{"position":%d,"x":1}' % (i + 1) for i in range(6)]
    leaves = [merkle.leaf_hash(line) for line in lines]
    get = _nodes(leaves)
    root = merkle.root_from(6, get(merkle.frontier_nodes(6)))
    note = signer.sign(Checkpoint(ORIGIN, 6, root).text())
    made = receipt.Receipt(lines[3], 3, merkle.prove_inclusion(3, 6, get), note)
    parsed = receipt.parse(made.text())
    assert parsed == made
    assert receipt.verify(parsed, signer.verifier).size == 6
    with pytest.raises(TamperedError, match="the event was altered"):
        receipt.verify(
            parsed._replace(event=lines[3].replace(b"1}", b"2}")), signer.verifier
        )
    with pytest.raises(TamperedError, match="is not the export line of position 4"):
        receipt.verify(parsed._replace(event=lines[2]), signer.verifier)
    with pytest.raises(LedgerError, match=r"its first line is not c2sp\.org/tlog-proof@v1"):
        receipt.parse("c2sp.org/tlog-proof@v2\n" + made.text().split("\n", 1)[1])


def test_a_witness_key_published_elsewhere_parses_with_its_key_id():
    """A cosignature/v1 key of a public witness, as transparency-dev/formats's tests
    list it: its key id (da77ade7) is SHA-256(name ‖ 0x0A ‖ 0x04 ‖ key)[:4] here too,
    and a type 0x01 (log) key is not taken for a witness's."""
    vkey = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
    assert str(CosignerKey.parse(vkey)) == vkey
    with pytest.raises(NoteError, match="is not a cosignature/v1 key"):
        CosignerKey.parse(str(Signer.generate("log.example/a").verifier))


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.booleans(), st.integers(1, 24), st.booleans()), min_size=1, max_size=8
    )
)
def test_whatever_it_is_sent_a_witness_cosigns_one_growing_history(steps):
    """Requests from the log and from a fork under the log's own key, of any sizes, in
    any order, with the old size the witness holds or 0: every checkpoint it cosigns
    extends the one it cosigned before (sizes never go down; the roots are one tree's)."""
    signer = Signer.generate(ORIGIN)
    log, fork = Log(signer), Log(signer, prefix=b"other-")
    with tempfile.TemporaryDirectory(
        dir="/dev/shm" if Path("/dev/shm").is_dir() else None
    ) as tmp:
        state = Path(tmp) / "w"
        witness.init(state, "witness.example/p")
        witness.add_log(state, str(signer.verifier))
        w = witness.Witness(state)
        cosigned: list[Checkpoint] = []
        for forked, size, fresh in steps:
            source = fork if forked else log
            latest = w.latest(ORIGIN)
            held = 0 if latest is None else latest[1].size
            old = 0 if fresh or held > size else held
            answer = w.add_checkpoint(source.request(old, size))
            if answer.status == 200:
                note = source.note(size) + answer.body.decode()
                assert w.cosigner.key.timestamp(note) is not None
                cosigned.append(Checkpoint.parse(note.split("\n\n")[0] + "\n"))
        sizes = [c.size for c in cosigned]
        assert sizes == sorted(sizes)  # never rolled back
        roots = {(c.size, c.root) for c in cosigned}
        heads = [c for c in cosigned if c.size]
        # one history: all cosigned roots are of the log's tree, or all of the fork's
        assert all(_root_of(log, c.size) == c.root for c in heads) or all(
            _root_of(fork, c.size) == c.root for c in heads
        )
        assert len({size for size, _ in roots}) == len(roots)


def _root_of(log: Log, size: int) -> bytes:
    return merkle.root_from(size, log.nodes(size)(merkle.frontier_nodes(size)))
