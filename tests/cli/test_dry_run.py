"""``append --dry-run``: the batch is decided exactly as an append decides it (every rule,
the same one-line refusals) and nothing is written: no event, no tree node, no
checkpoint, no read model, no file of the ledger's directory changed. On each store."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.histories import EVERY_TYPE, jsonl
from tests.stores import raw

FIRST, BATCH = EVERY_TYPE[:3], EVERY_TYPE[3:6]


def state(ledger_dir: Path) -> tuple:
    """Everything an append could change: the store's tables, and every file of the
    ledger's directory (the read models, the kept checkpoint, ledger.json)."""
    with raw(ledger_dir) as db:
        tables = tuple(
            db.execute(f"SELECT count(*) FROM {table}").fetchone()
            for table in ("stored_events", "tlog_nodes", "tlog_checkpoints")
        )
        events = db.execute("SELECT max(rowid) FROM stored_events").fetchone()
    files = {
        str(p.relative_to(ledger_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(ledger_dir.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }
    return tables, events, files


@pytest.fixture
def started(run, ledger_dir):
    """A ledger with three events appended: its read models and checkpoint exist."""
    assert run("init").exit_code == 0
    result = run("append", "-", input=jsonl(FIRST))
    assert result.stdout == "Appended 3 events at positions 1-3.\n", result.output
    return run


def test_a_dry_run_says_what_would_be_appended_and_writes_nothing(started, ledger_dir):
    before = state(ledger_dir)
    result = started("append", "--dry-run", "-", input=jsonl(BATCH))
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "Would append 3 events at positions 4-6; nothing was written (--dry-run).\n",
        "",
    )
    assert state(ledger_dir) == before
    assert len(json.loads(started("log", "--json").stdout)) == 3
    # the positions said are those the append then takes
    result = started("append", "-", input=jsonl(BATCH))
    assert result.stdout == "Appended 3 events at positions 4-6.\n"
    assert state(ledger_dir) != before


def test_a_dry_run_reports_json(started, ledger_dir):
    before = state(ledger_dir)
    result = started("append", "--dry-run", "--json", "-", input=jsonl(BATCH[:1]))
    assert json.loads(result.stdout) == {
        "dry_run": True,
        "would_append": 1,
        "appended": 0,
        "positions": [4],
        "skipped": [],
    }
    assert state(ledger_dir) == before


def test_a_refused_batch_is_refused_by_a_dry_run_in_the_same_words(started, ledger_dir):
    bad = [*BATCH, {"type": "CaseClosed", "case": "NOPE", "actor": "a"}]
    before = state(ledger_dir)
    dry = started("append", "--dry-run", "-", input=jsonl(bad))
    assert (dry.exit_code, dry.stdout) == (1, "")
    assert dry.stderr == (
        "Error: line 4 (CaseClosed) refused by rule 1 (references): case NOPE is not "
        "filed; append CaseFiled for it first. Nothing was appended.\n"
    )
    real = started("append", "-", input=jsonl(bad))
    assert (real.exit_code, real.stdout, real.stderr) == (1, "", dry.stderr)
    assert state(ledger_dir) == before


def test_a_dry_run_refuses_malformed_input_in_the_same_words(started, ledger_dir):
    before = state(ledger_dir)
    text = jsonl(BATCH[:1]) + '{"type":"CaseFiled"\n'
    dry = started("append", "--dry-run", "-", input=text)
    real = started("append", "-", input=text)
    assert (dry.exit_code, dry.stdout) == (1, "")
    assert dry.stderr == real.stderr
    assert dry.stderr.startswith("Error: line 2: malformed JSON")
    assert state(ledger_dir) == before


def test_a_dry_run_says_which_lines_would_be_skipped(started, ledger_dir):
    record = BATCH[0] | {"idempotency_key": "k-1"}
    assert started("append", "-", input=jsonl([record])).exit_code == 0
    before = state(ledger_dir)
    result = started("append", "--dry-run", "-", input=jsonl([BATCH[1], record]))
    assert result.stdout == (
        "Would append 1 event at position 5; nothing was written (--dry-run).\n"
        "Line 2 would be skipped: its idempotency key was already appended as version "
        f"1 of partner:{BATCH[0]['partner']}.\n"
    )
    only = started("append", "--dry-run", "-", input=jsonl([record]))
    assert only.stdout.splitlines()[0] == (
        "Would append nothing; nothing was written (--dry-run)."
    )
    assert state(ledger_dir) == before


def test_a_dry_run_needs_a_ledger_it_could_append_to(run, ledger_dir):
    result = run("append", "--dry-run", "-", input=jsonl(BATCH))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: no ledger at {ledger_dir}")
