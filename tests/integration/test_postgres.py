"""What only the PostgreSQL store has: its URL, its connection errors, gap-free positions
under the library's table lock, and several ledger directories sharing one log."""

from __future__ import annotations

import json

import pytest
from arms_ledger.cli.main import cli
from arms_ledger.ledger.app import transparency
from arms_ledger.ledger.app.directory import create, open_ledger
from arms_ledger.ledger.errors import LedgerError
from arms_ledger.ledger.store.postgres import Location
from click.testing import CliRunner
from eventsourcing.persistence import IntegrityError, StoredEvent

from tests import stores
from tests.histories import EVERY_TYPE, decode


@pytest.fixture
def pg():
    """A fresh schema's URL; skipped (or failed in CI) without a server."""
    with stores.using("postgresql"):
        yield stores.new_pg_store()


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


# --- the URL ------------------------------------------------------------------------------


def test_a_url_names_host_port_database_user_and_schema():
    location = Location("postgresql://alice@db.example:6543/ledgers?schema=office_a")
    assert (
        location.host,
        location.port,
        location.dbname,
        location.user,
        location.schema,
    ) == ("db.example", 6543, "ledgers", "alice", "office_a")
    assert location.url == "postgresql://alice@db.example:6543/ledgers?schema=office_a"
    assert Location("postgres://bob@h/d").url == "postgresql://bob@h:5432/d"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u:secret@h/d", "remove it and give the password in PGPASSWORD"),
        ("mysql://u@h/d", "expected `sqlite` or a URL like postgresql://"),
        ("postgresql://u@h/d?sslmode=off", "unknown parameter 'sslmode'"),
        ("postgresql://u@h/d?schema=a;drop", "must be a plain identifier"),
        ("postgresql://u@h:notaport/d", "store URL"),
    ],
)
def test_a_bad_url_is_one_line_naming_what_to_fix(url, message, tmp_path):
    with pytest.raises(LedgerError, match=message.replace("(", r"\(")):
        Location(url)
    result = invoke("--ledger", str(tmp_path / "l"), "--store", url, "init")
    assert result.exit_code == 1
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "l").exists()


def test_an_unreachable_server_is_one_line_naming_the_host_and_writes_nothing(tmp_path):
    url = "postgresql://postgres@127.0.0.1:1/test"  # nothing listens on port 1
    result = invoke("--ledger", str(tmp_path / "l"), "--store", url, "init")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: cannot connect to PostgreSQL at 127.0.0.1:1 "
        "(database test, user postgres): "
    )
    assert "check that the server is running" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "l").exists()


def test_the_store_also_comes_from_the_environment(tmp_path):
    env = {"ARMS_LEDGER_STORE": "postgresql://postgres@127.0.0.1:1/test"}
    result = invoke("--ledger", str(tmp_path / "l"), "init", env=env)
    assert result.exit_code == 1 and "127.0.0.1:1" in result.stderr


# --- on a real server --------------------------------------------------------------------


def test_init_records_the_store_and_every_command_uses_it(pg, tmp_path):
    path = tmp_path / "l"
    assert invoke("--ledger", str(path), "--store", pg, "init").exit_code == 0
    meta = json.loads((path / "ledger.json").read_text())
    assert meta["store"] == Location(pg).url
    assert not (path / "events.db").exists()  # the events are on the server
    ledger = open_ledger(path)
    assert ledger.store == Location(pg).url
    ledger.append(decode(EVERY_TYPE[:5]))
    ledger.close()
    result = invoke("--ledger", str(path), "audit", "verify")
    assert result.exit_code == 0 and "Verified 5 events" in result.stdout
    # a --store that is not the ledger's is refused, not silently ignored
    result = invoke("--ledger", str(path), "--store", "sqlite", "log")
    assert result.exit_code == 1
    assert "keeps its events in postgresql://" in result.stderr


def test_a_failed_insert_leaves_no_gap_in_positions(pg, tmp_path):
    ledger = create(tmp_path / "l", store=pg)
    ledger.append(decode(EVERY_TYPE[:3]))
    taken = ledger.recorder.select_notifications(start=1, limit=1)[0]
    clash = StoredEvent(
        taken.originator_id, taken.originator_version, taken.topic, taken.state
    )
    with pytest.raises(IntegrityError):
        ledger.recorder.insert_events([clash])
    assert ledger.append(decode(EVERY_TYPE[3:5])).positions == [4, 5]
    assert transparency.verify(ledger).events == 5
    ledger.close()


def test_two_directories_share_one_log_and_each_signs_with_its_own_key(pg, tmp_path):
    a, b = tmp_path / "office-a", tmp_path / "office-b"
    result = invoke("--ledger", str(a), "--store", pg, "init", "--origin", "a.example/log")
    assert result.exit_code == 0
    first = open_ledger(a)
    first.append(decode(EVERY_TYPE[:10]))
    result = invoke("--ledger", str(b), "--store", pg, "init", "--origin", "b.example/log")
    assert result.exit_code == 0
    assert (
        "on the shared log at postgresql://" in result.stdout
        and ": 10 events" in result.stdout
    )
    second = open_ledger(b)
    second.append(decode(EVERY_TYPE[10:18]))
    first.append(decode(EVERY_TYPE[18:20]))
    assert [r.position for r in second.read()] == list(range(1, 21))
    signers = {c.verifier.split("+")[0] for c in transparency.checkpoints(second)}
    assert signers == {"a.example/log", "b.example/log"}
    for ledger in (first, second):
        assert transparency.verify(ledger).events == 20
        ledger.close()
    # each directory's read models are built from the shared log
    for path in (a, b):
        result = invoke(
            "--ledger", str(path), "query", "SELECT count(*) AS n FROM partners", "--json"
        )
        assert result.exit_code == 0 and json.loads(result.stdout) == [{"n": 2}]


def test_init_refuses_an_origin_another_key_signs_the_shared_log_under(pg, tmp_path):
    """Issue 19, item 4: two offices with one origin on one log would break `audit
    verify` in both for good; the second `init` is refused before it signs anything."""
    a, b = tmp_path / "office-a", tmp_path / "office-b"
    assert (
        invoke("--ledger", str(a), "--store", pg, "init", "--origin", "x.gov/log").exit_code
        == 0
    )
    first = open_ledger(a)
    first.append(decode(EVERY_TYPE[:3]))
    verifier = (a / "verifier.key").read_text().strip()
    result = invoke("--ledger", str(b), "--store", pg, "init", "--origin", "x.gov/log")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: the origin x.gov/log already names checkpoints of this log, signed with "
        f"another key ({verifier}): each office sharing a log needs an origin of its "
        "own; choose another --origin\n"
    )
    assert not (b / "ledger.json").exists()
    assert transparency.verify(first).events == 3
    first.close()
