"""Catching up reads only what the new events touch, not the whole log."""

from __future__ import annotations

import json

from arms_ledger.cli.demo import SCENARIO
from arms_ledger.cli.write import load_history
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.domain import events as ev
from arms_ledger.projections import engine
from arms_ledger.projections.projector import Stored


def test_one_new_event_reads_one_event_and_the_streams_it_touches(
    ledger, ledger_dir, monkeypatch
):
    load_history(ledger, SCENARIO)
    engine.live(ledger, ledger_dir).close()

    read, streams, queues = [], [], []
    original_read, original_stream = Ledger.read, Ledger.stream_records
    original_queue = Stored.queue

    def counting_read(self, **kwargs):
        for recorded in original_read(self, **kwargs):
            read.append((kwargs.get("types", ()), recorded.position))
            yield recorded

    def counting_stream(self, key):
        streams.append(key)
        return original_stream(self, key)

    def counting_queue(self, p):
        queues.append(p)
        return original_queue(self, p)

    monkeypatch.setattr(Ledger, "read", counting_read)
    monkeypatch.setattr(Ledger, "stream_records", counting_stream)
    monkeypatch.setattr(Stored, "queue", counting_queue)

    delivery = {
        "type": "DeliveryRecorded",
        "case": "PL-B-ABR",
        "quantity": 4,
        "actor": "usasac",
    }
    ledger.append([ev.decoder.decode(json.dumps(delivery))])
    read.clear()
    streams.clear()
    conn = engine.live(ledger, ledger_dir)
    conn.close()
    # The new event, and the three policy adoptions (through the type index) to know
    # the policy in force.
    policies = ("PriorityPolicyAdopted", "NotificationThresholdsSet")
    assert read == [((), 912), (policies, 1), (policies, 13), (policies, 760)]
    assert sorted(streams) == ["case:PL-B-ABR", "platform:m1a2-sepv3"]  # not its partner
    assert queues == ["m1a2-sepv3"]


def test_a_current_projection_reads_nothing(ledger, ledger_dir, monkeypatch):
    load_history(ledger, SCENARIO)
    engine.live(ledger, ledger_dir).close()
    monkeypatch.setattr(
        Ledger,
        "read",
        lambda self, **kw: (_ for _ in ()).throw(AssertionError("read the log")),
    )
    engine.live(ledger, ledger_dir).close()
