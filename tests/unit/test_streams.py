"""``evolve`` (one event, the write path's per-event fold) is ``fold`` of that one event,
and folding a stream event by event is folding it at once (no database)."""

from __future__ import annotations

from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.streams import Stream, evolve, fold

from fixtures.tools.generate import generate


def test_evolving_event_by_event_is_folding_at_once():
    events = [
        ev.decoder.decode(line)
        for line in generate(open_cases=40, events=3000, with_recorded_at=True)
    ]
    by_stream: dict[str, list[ev.Event]] = {}
    evolved: dict[str, Stream] = {}
    for event in events:
        key = event.stream
        before = evolved.get(key, Stream(key))
        evolved[key] = evolve(before, event)
        assert evolved[key] == fold(before, [event])
        by_stream.setdefault(key, []).append(event)
    assert {type(e) for e in events} >= {ev.CaseFiled, ev.PartnerRegistered}
    for key, stream_events in by_stream.items():
        assert evolved[key] == fold(Stream(key), stream_events)
        half = len(stream_events) // 2
        assert evolved[key] == fold(
            fold(Stream(key), stream_events[:half]), stream_events[half:]
        )


def test_evolve_works_out_the_facts_of_a_stream_built_by_hand():
    registered = ev.decoder.decode(
        b'{"type":"PartnerRegistered","partner":"POL","name":"Poland","region":"Europe",'
        b'"notification_group":"other","actor":"a","effective_at":"2020-01-01T00:00:00Z"}'
    )
    by_hand = Stream("partner:POL", 1, (registered,))
    changed = ev.decoder.decode(
        b'{"type":"NotificationGroupChanged","partner":"POL","notification_group":"NATO+",'
        b'"actor":"a","rationale":"r","effective_at":"2021-01-01T00:00:00Z"}'
    )
    assert evolve(by_hand, changed) == fold(by_hand, [changed])
    assert evolve(by_hand, changed).facts == ((0, registered), (1, changed))
