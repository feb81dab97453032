"""Witnesses, quorums and receipts through the CLI, with three real witnesses (HTTP
servers on free ports of localhost, in this process), on each store.

The done-when of issue 15: a log extended normally collects 3 cosignatures; a forked
log (same key, another history) is refused by every witness that saw the original and
fails a 2-of-3 policy; a rollback is refused; a restarted witness keeps its state;
receipts verify offline, and one for an altered event or another log is refused.
"""

from __future__ import annotations

import base64
import re
import shutil
import threading
from pathlib import Path

import pytest
from arms_ledger.cli.main import cli
from arms_ledger.ledger.app import witness, witnessing
from arms_ledger.ledger.transparency.cosignature import AddCheckpoint
from click.testing import CliRunner

from tests import stores
from tests.cli.conftest import one_line_error
from tests.histories import EVERY_TYPE, jsonl

ORIGIN = "dsca.example/fms-queue"
TIME = r"\d+\.\d\d"
FIRST, REST = jsonl(EVERY_TYPE[:20]), jsonl(EVERY_TYPE[20:])


class Witnesses:
    """Three witnesses, each a state directory served on its own port."""

    def __init__(self, root: Path, log_vkey: str):
        self.root = root
        self.paths = [root / f"w{i}" for i in (1, 2, 3)]
        self.vkeys: list[str] = []
        self.servers: list = [None, None, None]
        runner = CliRunner()
        for i, path in enumerate(self.paths, start=1):
            made = runner.invoke(
                cli,
                ["witness", "init", "--state", str(path), "--name", f"wit.example/w{i}"],
            )
            assert made.exit_code == 0, made.output
            self.vkeys.append(made.stdout.strip())
            added = runner.invoke(
                cli, ["witness", "add-log", "--state", str(path), log_vkey]
            )
            assert added.stdout == f"The witness now accepts checkpoints of {ORIGIN}.\n"
            self.start(i - 1)

    def start(self, i: int) -> None:
        server = witness.server(witness.Witness(self.paths[i]), "127.0.0.1", 0)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.servers[i] = server

    def stop(self, i: int) -> None:
        self.servers[i].shutdown()
        self.servers[i].server_close()

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.servers[i].server_address[1]}"

    def policy(self, quorum: str = "group three 2 w1 w2 w3\nquorum three\n") -> str:
        lines = [f"witness w{i + 1} {self.vkeys[i]} {self.url(i)}\n" for i in range(3)]
        return "".join(lines) + quorum

    def evidence(self, i: int) -> list[Path]:
        return sorted((self.paths[i] / witness.EVIDENCE).iterdir())


@pytest.fixture
def setup(run, ledger_dir: Path, tmp_path: Path):
    """A ledger of 20 events and three witnesses of it, named in its `witnesses` file."""
    assert run("init", "--origin", ORIGIN).exit_code == 0
    assert run("append", "-", input=FIRST).exit_code == 0
    vkey = (ledger_dir / "verifier.key").read_text().strip()
    found = Witnesses(tmp_path / "witnesses", vkey)
    (ledger_dir / witnessing.WITNESSES).write_text(found.policy())
    yield found
    for i in range(3):
        found.stop(i)


def cosigned(size: int) -> str:
    return "".join(f"w{i}: cosigned the checkpoint of {size} events\n" for i in (1, 2, 3))


QUORUM_MET = "the quorum (2 of w1, w2, w3) is met.\n"


def test_a_log_extended_normally_collects_three_cosignatures(setup, run, ledger_dir):
    result = run("audit", "witness")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == cosigned(20) + (
        "The checkpoint of 20 events is cosigned by w1, w2, w3: " + QUORUM_MET
    )
    assert run("append", "-", input=REST).exit_code == 0
    result = run("audit", "witness")  # old size 20, with a consistency proof to 40
    assert result.stdout == cosigned(40) + (
        "The checkpoint of 40 events is cosigned by w1, w2, w3: " + QUORUM_MET
    )
    verified = run("audit", "verify")
    assert verified.exit_code == 0, verified.stderr
    assert re.sub(TIME, "T", verified.stdout) == (
        "Verified 40 events, 78 tree nodes and 2 checkpoints in T s: the log is "
        "intact.\n"
        "Witnessed: the checkpoint of 40 events is cosigned by w1, w2, w3 (quorum: 2 of "
        "w1, w2, w3).\n"
        "The newest checkpoint signed by the key covers every event.\n"
        "20 of 20 decisions are unsigned; this ledger does not enforce authority (no "
        "root named: `arms-ledger init --authority-root KEYFILE`).\n"
    )
    # The export carries the cosignatures; an auditor checks them with the policy.
    export = ledger_dir.parent / "export"
    assert run("audit", "export", str(export)).exit_code == 0
    note = (export / "checkpoint").read_text()
    assert [
        line.split(" ")[1] for line in note.split("\n") if line.startswith("\u2014")
    ] == [
        ORIGIN,
        "wit.example/w1",
        "wit.example/w2",
        "wit.example/w3",
    ]
    policy = ledger_dir.parent / "policy"
    policy.write_text(setup.policy())
    key = str(ledger_dir / "verifier.key")
    checked = run(
        "audit", "verify-export", str(export), "--key", key, "--policy", str(policy)
    )
    assert checked.exit_code == 0, checked.stderr
    assert checked.stdout.endswith(
        "Cosigned by w1, w2, w3: the witness quorum (2 of w1, w2, w3) is met.\n"
    )
    assert run("audit", "latest").stdout == note  # what an overseer keeps, cosigned
    # A replica from the export keeps the cosignatures: its log is witnessed too.
    replica = ledger_dir.parent / "replica"
    made = run("audit", "verify-export", str(export), "--key", key, "--into", str(replica))
    assert made.exit_code == 0, made.stderr
    again = run("--ledger", str(replica), "audit", "verify", "--policy", str(policy))
    assert again.exit_code == 0, again.stderr
    assert again.stdout.split("\n")[1] == (
        "Witnessed: the checkpoint of 40 events is cosigned by w1, w2, w3 (quorum: 2 of "
        "w1, w2, w3)."
    )
    # An export whose checkpoint lost two cosignatures is short of the quorum.
    lines = note.split("\n")
    (export / "checkpoint").write_text("\n".join([*lines[:-3], ""]))
    one_line_error(
        run("audit", "verify-export", str(export), "--key", key, "--policy", str(policy)),
        "the export's checkpoint (40 events) is short of the witness quorum (2 of w1, w2, "
        "w3): cosigned by w1 only",
    )


def test_a_forked_log_is_refused_by_every_witness(setup, run, ledger_dir, tmp_path):
    assert run("audit", "witness").exit_code == 0  # they saw the original at 20
    fork = tmp_path / "fork"
    assert run("--ledger", str(fork), "init", "--origin", ORIGIN).exit_code == 0
    for name in ("signing.key", "verifier.key"):  # the same key, another history
        shutil.copy(ledger_dir / name, fork / name)
    (fork / witnessing.WITNESSES).write_text(setup.policy())
    assert run("--ledger", str(fork), "append", "-", input=FIRST + REST).exit_code == 0
    result = run("--ledger", str(fork), "audit", "witness")
    assert result.exit_code == 1
    refusals = result.stdout.split("\n")[:-1]
    assert len(refusals) == 3
    for i, line in enumerate(refusals, start=1):
        assert line.startswith(
            f"w{i}: refused (422): the consistency proof does not verify: "
        ), line
    assert result.stderr == (
        "Error: the checkpoint of 40 events is short of the witness quorum (2 of w1, w2, "
        "w3): cosigned by none of them\n"
    )
    one_line_error(
        run("--ledger", str(fork), "audit", "verify"),
        "no checkpoint of the log is witnessed: its newest (40 events) is short of the "
        "witness quorum (2 of w1, w2, w3): cosigned by none of them",
    )
    for i in range(3):  # each kept both signed checkpoints as evidence
        (kept,) = setup.evidence(i)
        text = kept.read_text()
        assert text.startswith("# not consistent: ")
        assert f"{ORIGIN}\n20\n" in text and f"{ORIGIN}\n40\n" in text
    # The original still extends what they saw.
    assert run("append", "-", input=REST).exit_code == 0
    assert run("audit", "witness").stdout.startswith(cosigned(40))


def test_a_rollback_is_refused_and_a_restarted_witness_keeps_its_state(
    setup, run, ledger_dir, tmp_path
):
    assert run("audit", "witness").exit_code == 0
    old = stores.copy_ledger(ledger_dir, tmp_path / "old")  # the log at 20 events
    assert run("append", "-", input=REST).exit_code == 0
    assert run("audit", "witness").exit_code == 0  # they saw 40
    setup.stop(0)
    setup.start(0)  # w1 restarted, on another port, from its state directory
    (old / witnessing.WITNESSES).write_text(setup.policy())
    result = run("--ledger", str(old), "audit", "witness")
    assert result.stdout == "".join(
        f"w{i}: refused: it has cosigned 40 events of this log, which has 20: the log "
        "was rolled back, or another history was shown to it\n"
        for i in (1, 2, 3)
    ) + (  # what they cosigned before, at 20 events, still stands
        "The checkpoint of 20 events is cosigned by w1, w2, w3: " + QUORUM_MET
    )
    # The protocol itself: old size above the checkpoint's is 400; a stale old size is
    # 409 with the witness's size, as text/x.tlog.size.
    note = (old / "checkpoint").read_text()
    url = f"{setup.url(0)}/add-checkpoint"
    status, _, body = witnessing._post(url, AddCheckpoint(40, [], note).body(), 5)
    assert (status, body) == (400, b"old size 40 is above the checkpoint's 20\n")
    assert witnessing._post(url, AddCheckpoint(0, [], note).body(), 5) == (
        409,
        "text/x.tlog.size",
        b"40\n",
    )
    status_of = CliRunner().invoke(
        cli, ["witness", "status", "--state", str(setup.paths[0])]
    )
    assert status_of.stdout == (
        f"Witness {setup.vkeys[0]}\n  {ORIGIN}: 40 events\n"
        f"0 evidence file(s) in {setup.paths[0] / witness.EVIDENCE}\n"
    )


def test_receipts_verify_offline_and_refuse_altered_events_and_other_logs(
    setup, run, ledger_dir, tmp_path
):
    assert run("audit", "witness").exit_code == 0
    out = tmp_path / "r17.tlog-proof"
    made = run("audit", "receipt", "17", "-o", str(out))
    assert made.stdout == (
        f"Wrote the receipt of position 17 to {out}: checkpoint of 20 events, cosigned "
        "by wit.example/w1, wit.example/w2, wit.example/w3.\n"
    )
    lines = out.read_text().split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1" and lines[2] == "index 16"
    event = base64.b64decode(lines[1].removeprefix("extra "))
    assert event.startswith(b'{"position":17,')
    policy = tmp_path / "policy"
    policy.write_text(setup.policy())
    key = str(ledger_dir / "verifier.key")
    runner = CliRunner()

    def verify(path: Path, *more: str):
        args = ["audit", "verify-receipt", str(path), "--log-key", key, *more]
        return runner.invoke(cli, args)

    checked = verify(out, "--policy", str(policy))
    assert (checked.exit_code, checked.stderr) == (0, "")
    assert checked.stdout == (
        f"Position 17 is in the checkpoint of 20 events of {ORIGIN}, signed by its key.\n"
        "Cosigned by w1, w2, w3: the quorum (2 of w1, w2, w3) is met.\n"
        f"{event.decode()}\n"
    )
    # A policy naming the log's key stands for --key (C2SP tlog-policy `log` lines).
    with_log = tmp_path / "with-log"
    with_log.write_text(f"log {(ledger_dir / 'verifier.key').read_text()}" + setup.policy())
    by_policy = runner.invoke(
        cli, ["audit", "verify-receipt", str(out), "--policy", str(with_log)]
    )
    assert by_policy.stdout == checked.stdout
    one_line_error(
        runner.invoke(cli, ["audit", "verify-receipt", str(out), "--policy", str(policy)]),
        f"no key for the log {ORIGIN}: pass --key, or a --policy with a 'log <vkey>' "
        "line for it",
    )
    altered = tmp_path / "altered.tlog-proof"
    changed = event.replace(b'"position":17,', b'"position":17, ', 1)
    altered.write_text(
        "\n".join([lines[0], "extra " + base64.b64encode(changed).decode(), *lines[2:]])
    )
    result = verify(altered)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith(
        f"Error: {altered}: the event at position 17 is not in the log's checkpoint of 20 "
        "events ("
    )
    assert result.stderr.endswith(
        "): the event was altered, or the receipt is for another log\n"
    )
    assert result.stderr.count("\n") == 1
    # Another log, under the same origin and with its own key.
    other = tmp_path / "other"
    assert run("--ledger", str(other), "init", "--origin", ORIGIN).exit_code == 0
    assert run("--ledger", str(other), "append", "-", input=FIRST).exit_code == 0
    theirs = tmp_path / "other.tlog-proof"
    assert (
        run("--ledger", str(other), "audit", "receipt", "17", "-o", str(theirs)).exit_code
        == 0
    )
    own_id = key_id_of(ledger_dir)
    one_line_error(
        verify(theirs),
        f"{theirs} is not from the log {ORIGIN}: the note is not signed by {ORIGIN} "
        f"(key id {own_id})",
    )
    # Cosignatures short of the policy's quorum.
    bare = tmp_path / "bare.tlog-proof"
    bare.write_text("\n".join(x for x in lines if not x.startswith("\u2014 wit.")))
    one_line_error(
        verify(bare, "--policy", str(policy)),
        f"{bare}'s checkpoint is short of the witness quorum (2 of w1, w2, w3): "
        "cosigned by none of them",
    )


def key_id_of(ledger_dir: Path) -> str:
    return (ledger_dir / "verifier.key").read_text().split("+")[1]


def test_the_web_view_says_whether_the_witnesses_vouch_for_the_log(setup, run, ledger_dir):
    from arms_ledger.cli.serve import whatif_source
    from arms_ledger.ledger.app.directory import open_ledger
    from arms_ledger.projections import engine

    from tests.web.conftest import client

    def status() -> str:
        ledger = open_ledger(ledger_dir, write=False)
        try:
            source = whatif_source(ledger, engine.Cut(), ledger_dir)
            with client(
                ledger_dir / engine.PROJECTIONS_DB, "Live", immutable=False, log=source
            ) as web:
                page = web.get("/-/whatif").text
        finally:
            ledger.close()
        (found,) = re.findall(r'<span class="whatif-witnessed">([^<]*)</span>', page)
        return found

    assert status() == (
        "Not witnessed: no checkpoint of the log is witnessed: its newest (20 events) is "
        "short of the witness quorum (2 of w1, w2, w3): cosigned by none of them."
    )
    assert run("audit", "witness").exit_code == 0
    assert status() == (
        "Witnessed: the checkpoint of 20 events is cosigned by w1, w2, w3 (quorum: 2 of "
        "w1, w2, w3)."
    )


@pytest.mark.slow
def test_the_witness_command_serves_and_keeps_its_state_across_restarts(tmp_path):
    """`arms-ledger witness serve` as a process of its own: stopped with Ctrl-C
    (SIGINT) and started again, it still knows what it cosigned."""
    import os
    import signal
    import subprocess
    import sys

    from arms_ledger.ledger.transparency.note import Signer

    from tests.unit.test_witness_formats import Log

    log = Log(Signer.generate(ORIGIN))
    state = tmp_path / "w"
    runner = CliRunner()
    assert (
        runner.invoke(
            cli, ["witness", "init", "--state", str(state), "--name", "w.example/1"]
        ).exit_code
        == 0
    )
    assert (
        runner.invoke(
            cli, ["witness", "add-log", "--state", str(state), str(log.signer.verifier)]
        ).exit_code
        == 0
    )
    command = [
        sys.executable,
        "-m",
        "arms_ledger.cli",
        "witness",
        "serve",
        "--state",
        str(state),
        "--port",
        "0",
    ]

    def start() -> tuple[subprocess.Popen, str]:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        )
        assert process.stdout is not None
        first = process.stdout.readline()
        url = re.fullmatch(
            r"Witness w\.example/1 \(1 log key\(s\)\) listening on (http://127\.0\.0\.1:\d+)/add-checkpoint\n",
            first,
        )
        assert url is not None, first
        return process, url.group(1) + "/add-checkpoint"

    def stop(process: subprocess.Popen) -> None:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert process.stdout is not None
        process.stdout.close()

    process, url = start()
    try:
        assert witnessing._post(url, log.request(0, 5), 5)[0] == 200
        assert witnessing._post(url, log.request(5, 8), 5)[0] == 200
    finally:
        stop(process)
    process, url = start()
    try:
        assert witnessing._post(url, log.request(0, 9), 5) == (
            409,
            "text/x.tlog.size",
            b"8\n",
        )
        assert witnessing._post(url, log.request(8, 9), 5)[0] == 200
    finally:
        stop(process)


def test_the_witness_commands_refuse_bad_input_in_one_line(tmp_path):
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli, ["witness", *args])

    state = tmp_path / "w"
    made = run("init", "--state", str(state), "--name", "w.example/1")
    assert made.stdout.startswith("w.example/1+") and made.exit_code == 0
    assert (state / "witness.key").stat().st_mode & 0o777 == 0o600
    one_line_error(
        run("init", "--state", str(state), "--name", "w.example/2"),
        f"{state} is not empty; a witness needs a directory of its own",
    )
    one_line_error(
        run("init", "--state", str(tmp_path / "v"), "--name", "has space"),
        "--name: key name 'has space' must be non-empty, without spaces or '+' (e.g. "
        "arms-ledger.example/dsca)",
    )
    one_line_error(
        run("add-log", "--state", str(state), "not-a-key"),
        "VKEY: a verifier key has the form <name>+<8 hex digits>+<base64 key>, got "
        "'not-a-key'",
    )
    one_line_error(
        run("serve", "--state", str(tmp_path / "nothing")),
        f"cannot read {tmp_path / 'nothing' / 'witness.key'}: No such file or directory; "
        f"is {tmp_path / 'nothing'} a witness (`arms-ledger witness init`)?",
    )


def test_the_audit_commands_refuse_bad_input_in_one_line(run, ledger_dir, tmp_path):
    assert run("init", "--origin", ORIGIN).exit_code == 0
    assert run("append", "-", input=FIRST).exit_code == 0
    one_line_error(
        run("audit", "witness"),
        f"no witness to ask: {ledger_dir / 'witnesses'} names none with a URL ('witness "
        "NAME VKEY URL' lines and a 'quorum' line; docs/witnesses.md)",
    )
    one_line_error(
        run("audit", "receipt", "21"), "position 21: the log has 20 events (1 to 20)"
    )
    policy = tmp_path / "policy"
    policy.write_text("witness w1 nonsense\nquorum w1\n")
    one_line_error(
        run("audit", "verify", "--policy", str(policy)),
        f"{policy} line 1: a witness key has the form <name>+<8 hex digits>+<base64 "
        "key>, got 'nonsense'",
    )
    bad = tmp_path / "bad.tlog-proof"
    bad.write_text("c2sp.org/tlog-proof@v1\nindex 3\n\n")
    key = str(ledger_dir / "verifier.key")
    one_line_error(
        run("audit", "verify-receipt", str(bad), "--key", key),
        f"{bad} is not a tlog-proof receipt: it has no 'extra' line holding the event",
    )
    # Without witnesses, a receipt still proves inclusion under the log's key.
    made = run("audit", "receipt", "3")
    assert made.exit_code == 0 and made.stdout.startswith("c2sp.org/tlog-proof@v1\n")
    receipt_file = tmp_path / "r3.tlog-proof"
    receipt_file.write_text(made.stdout)
    checked = run("audit", "verify-receipt", str(receipt_file), "--key", key)
    assert checked.stdout.split("\n")[:2] == [
        f"Position 3 is in the checkpoint of 20 events of {ORIGIN}, signed by its key.",
        "No --policy given: the witnesses' cosignatures were not checked.",
    ]
