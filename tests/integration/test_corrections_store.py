"""Corrections on a real store (SQLite, PostgreSQL): a batch that names its own events by
log position is written only at the log position it numbered them from."""

from __future__ import annotations

import pytest
from arms_ledger.ledger.app.directory import create, open_ledger
from arms_ledger.ledger.errors import Conflict

from tests.cli.test_corrections import FIX_DELIVERY, HISTORY
from tests.histories import decode

DELIVERY = {"type": "DeliveryRecorded", "case": "PL-1", "quantity": 2, "actor": "usasac"}


def test_a_batch_may_correct_its_own_event(ledger_dir):
    ledger = create(ledger_dir)
    try:
        ledger.append(decode(HISTORY))
        head = ledger.head()
        fix = FIX_DELIVERY | {"corrects": head + 1, "corrected": {"quantity": 1}}
        assert ledger.append(decode([DELIVERY, fix])).positions == [head + 1, head + 2]
        case = ledger.load_stream("case:PL-1").case
        assert case is not None and case.delivered == 30 + 1
    finally:
        ledger.close()


def test_a_batch_naming_its_own_positions_is_not_written_after_another_writer(
    ledger_dir, monkeypatch
):
    first = create(ledger_dir)
    second = open_ledger(ledger_dir)
    try:
        first.append(decode(HISTORY))
        head = first.head()
        real_head = second.head

        def racing_head() -> int:  # another writer appends just after it was read
            found = real_head()
            if first.head() == head:
                first.append(decode([DELIVERY]))
            return found

        monkeypatch.setattr(second, "head", racing_head)
        fix = FIX_DELIVERY | {"corrects": head + 1, "corrected": {"quantity": 1}}
        with pytest.raises(Conflict, match="names its own events by log position"):
            second.append(decode([DELIVERY, fix]))
        assert first.head() == head + 1  # only the other writer's event
    finally:
        first.close()
        second.close()
