"""The writer's stream cache (ledger/app/batch.py): sized to the open cases."""

from __future__ import annotations

from datetime import UTC, datetime

from arms_ledger.ledger.app.batch import StreamCache
from arms_ledger.ledger.domain.cases import CaseState
from arms_ledger.ledger.domain.streams import Stream

FILED = datetime(2026, 1, 5, tzinfo=UTC)


def case_stream(key: str, stage: str) -> Stream:
    case = CaseState(
        case=key,
        partner="POL",
        platform="f-35a",
        quantity=32,
        estimated_value_usd=4_600_000_000,
        channel="FMS",
        mde=True,
        construction=False,
        filed_at=FILED,
        last_effective_at=FILED,
        stage=stage,
    )
    return Stream(key, 3, (), case)


def test_an_ended_case_leaves_the_cache_and_an_open_one_stays():
    cache = StreamCache()
    cache.put(
        {"case:A": case_stream("case:A", "delivering"), "partner:P": Stream("partner:P", 2)}
    )
    assert set(cache.streams) == {"case:A", "partner:P"}
    for stage in ("closed", "cancelled", "expired"):
        cache.put({"case:A": case_stream("case:A", "delivering")})
        cache.put({"case:A": case_stream("case:A", stage)})
        assert set(cache.streams) == {"partner:P"}, stage
    assert cache.get("case:A") == Stream("case:A")  # read again from the store


def test_beyond_its_size_the_least_recently_used_go_first(monkeypatch):
    monkeypatch.setattr(StreamCache, "MAX_STREAMS", 2)
    cache = StreamCache()
    cache.put({"a": Stream("a", 1), "b": Stream("b", 1)})
    cache.put({"a": Stream("a", 2)})  # a used again
    cache.put({"c": Stream("c", 1)})
    assert list(cache.streams) == ["a", "c"]
    cache.put({"d": Stream("d", 0)})  # an empty stream is not kept
    assert list(cache.streams) == ["a", "c"]
