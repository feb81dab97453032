"""The EEUM inventory clocks (``oversight.eeum_clocks``), the one definition both the
deadlines monitor and the ``oversight_flags`` view judge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from arms_ledger.ledger.domain import oversight as o


def day(n: int) -> datetime:
    return datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=n)


ON = o.Designation(1, "jav", True, day(0))
DELIVERY = o.Delivery(10, "C1", "UKR", "jav", 5, day(10))


def owed(clocks: list[o.EEUMClock], at: datetime) -> list[tuple[str, str]]:
    return [
        (k.kind, status) for k in clocks if (status := o.clock_status(k, at)) is not None
    ]


def test_an_initial_inventory_is_due_then_overdue_until_one_is_recorded():
    late = o.Inventory(20, "C1", "eeum-initial-inventory", day(150))
    clocks = o.eeum_clocks([DELIVERY], [late], [ON])
    initial = [k for k in clocks if k.kind == "eeum-initial-inventory"]
    assert [(k.due, k.closed) for k in initial] == [(day(100), day(150))]
    assert owed(initial, day(99)) == [("eeum-initial-inventory", "due")]
    assert owed(initial, day(100)) == [("eeum-initial-inventory", "overdue")]
    assert owed(initial, day(150)) == []  # recorded late: the duty is done


def test_the_annual_inventory_counts_from_the_last_and_only_while_designated():
    done = o.Inventory(20, "C1", "eeum-initial-inventory", day(40))
    off = o.Designation(2, "jav", False, day(500))
    clocks = o.eeum_clocks([DELIVERY], [done], [ON, off])
    annual = [k for k in clocks if k.kind == "eeum-annual-inventory"]
    assert [(k.position, k.since, k.due, k.opened, k.closed) for k in annual] == [
        (10, day(10), day(375), day(10), day(40)),
        (20, day(40), day(405), day(40), day(500)),
    ]
    assert owed(annual, day(406)) == [("eeum-annual-inventory", "overdue")]
    assert owed(annual, day(500)) == []  # de-designated


def test_a_delivery_of_a_platform_not_designated_then_owes_nothing():
    assert o.eeum_clocks([DELIVERY], [], [o.Designation(1, "jav", True, day(11))]) == []
