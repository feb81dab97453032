"""The priority policy as pure functions: scores, tiers, sort keys, queue changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.priority import Entry, score, sort_key
from arms_ledger.projections.queue import Change, Queue


def entry(
    case: str,
    *,
    klass="normal",
    override=False,
    tier=3,
    score=0.0,
    filed="2024-01-01",
    left=10,
) -> Entry:
    at = datetime.fromisoformat(filed).replace(tzinfo=UTC)
    return Entry(case, "P", klass, override, tier, score, filed, at, "implemented", left)


def policy(**changes) -> ev.PriorityPolicyAdopted:
    return ev.PriorityPolicyAdopted(
        policy="p", mode="scored", actor="a", rationale="r", **changes
    )


class TestScore:
    def test_model_md_formula_with_the_default_policy(self):
        # I = min(4.48 / 5, 1) = 0.896; S = 0.9; E = min(2e9 / 5e9, 1) = 0.4
        s = score(4.48, 0.9, 2_000_000_000, policy())
        assert (s.investment, s.strategic, s.economic) == pytest.approx((0.896, 0.9, 0.4))
        assert s.score == round(0.4 * 0.896 + 0.3 * 0.9 + 0.3 * 0.4, 4) == 0.7484
        assert s.tier == 1

    def test_components_are_capped_at_one_and_missing_facts_count_zero(self):
        s = score(12.0, None, 9_000_000_000, policy())
        assert (s.investment, s.strategic, s.economic, s.score) == (1.0, 0.0, 1.0, 0.7)

    @pytest.mark.parametrize(
        ("value", "tier"), [(0.70, 1), (0.6999, 2), (0.45, 2), (0.4499, 3)]
    )
    def test_tiers_include_their_threshold(self, value, tier):
        # strategic weight 1: the score is S itself
        p = policy(weights=ev.Weights(investment=0.0, strategic=1.0, economic=0.0))
        assert score(None, value, 0, p).tier == tier

    def test_the_policy_sets_weights_targets_and_tiers(self):
        p = policy(
            weights=ev.Weights(investment=0.5, strategic=0.2, economic=0.3),
            targets=ev.Targets(pct_gdp=2.0, economic_usd=1_000_000_000),
            tiers=ev.Tiers(tier1=0.9, tier2=0.8),
        )
        s = score(1.0, 0.5, 500_000_000, p)
        assert (s.score, s.tier) == (round(0.5 * 0.5 + 0.2 * 0.5 + 0.3 * 0.5, 4), 3)


class TestSortKey:
    def test_model_md_order(self):
        cases = [
            entry("h", klass="deferred", override=True, tier=1, score=0.99),
            entry("g", tier=3, score=0.1, filed="2020-01-01"),
            entry("f", tier=2, score=0.5, filed="2024-01-02"),
            entry("e", tier=2, score=0.5, filed="2024-01-01"),
            entry("d", tier=2, score=0.6),
            entry("c2", tier=1, score=0.7),
            entry("c1", tier=1, score=0.7),
            entry("b", override=True, tier=3, score=0.0),
            entry("a", klass="expedited", tier=3),
        ]
        ordered = sorted(cases, key=lambda e: sort_key(e, "scored"))
        assert [e.case for e in ordered] == ["a", "b", "c1", "c2", "d", "e", "f", "g", "h"]

    def test_fcfs_drops_tier_and_score(self):
        cases = [
            entry("x", tier=1, score=0.9, filed="2024-05-01"),
            entry("y", tier=3, score=0.1, filed="2024-01-01"),
            entry("z", klass="expedited", filed="2025-01-01"),
        ]
        ordered = sorted(cases, key=lambda e: sort_key(e, "fcfs"))
        assert [e.case for e in ordered] == ["z", "y", "x"]


class TestQueueChanges:
    def queue(self) -> Queue:
        q = Queue(
            "p",
            "scored",
            [
                entry(c, score=s)
                for c, s in (("A", 0.4), ("B", 0.3), ("C", 0.2), ("D", 0.1))
            ],
        )
        assert q.end() == []
        return q

    def test_a_case_entering_shifts_those_behind(self):
        q = self.queue()
        q.put(entry("N", score=0.25))
        assert q.end() == [
            Change("N", "entered", None, 3),
            Change("C", "shifted", 3, 4),
            Change("D", "shifted", 4, 5),
        ]

    def test_a_case_leaving_shifts_those_behind(self):
        q = self.queue()
        q.remove("B")
        assert q.end() == [
            Change("B", "left", 2, None),
            Change("C", "shifted", 3, 2),
            Change("D", "shifted", 4, 3),
        ]

    def test_a_move_shifts_only_the_cases_it_passes(self):
        q = self.queue()
        q.put(entry("D", score=0.35))
        assert q.end() == [
            Change("D", "moved", 4, 2),
            Change("B", "shifted", 2, 3),
            Change("C", "shifted", 3, 4),
        ]
        q.put(entry("A", score=0.0))
        assert q.end() == [
            Change("D", "shifted", 2, 1),
            Change("B", "shifted", 3, 2),
            Change("C", "shifted", 4, 3),
            Change("A", "moved", 1, 4),
        ]

    def test_changes_that_cancel_out_within_one_event_are_not_reported(self):
        q = self.queue()
        q.put(entry("N", score=0.35))  # enters at 2, B..D shift down
        q.remove("A")  # leaves from 1: everyone shifts back up
        assert q.end() == [Change("A", "left", 1, None), Change("N", "entered", None, 1)]

    def test_a_new_entry_with_the_same_key_changes_no_position(self):
        q = self.queue()
        q.put(entry("B", score=0.3, left=1))
        assert q.end() == []
        assert q.entries["B"].quantity_left == 1

    def test_reorder_under_a_new_mode(self):
        q = Queue(
            "p",
            "fcfs",
            [
                entry("A", score=0.1, filed="2020-01-01"),
                entry("B", score=0.9, filed="2021-01-01"),
            ],
        )
        q.reorder("scored", list(q.entries.values()))
        assert q.end() == [Change("B", "moved", 2, 1), Change("A", "moved", 1, 2)]

    def test_rows_estimate_completion_from_capacity(self):
        q = self.queue()
        rows = q.rows(units_per_month=4.0)
        assert [(r[1], r[2], r[11], r[12]) for r in rows] == [
            (1, "A", 10, 2.5),
            (2, "B", 20, 5.0),
            (3, "C", 30, 7.5),
            (4, "D", 40, 10.0),
        ]
        assert q.rows(units_per_month=None)[0][12] is None
