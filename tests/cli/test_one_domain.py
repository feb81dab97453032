"""One fold of facts: the rules, `history --state`, the read models and every replay agree.

Each test is a history a user hit before the facts were folded in one place
(ledger/domain/facts.py), replayed through the command line.
"""

from __future__ import annotations

import json

import pytest

R = "recorded for the test"


@pytest.fixture(autouse=True)
def _ledger(run):
    result = run("init", "--checkpoints", "manual")
    assert result.exit_code == 0, result.stderr


def line(kind: str, **fields) -> str:
    return json.dumps({"type": kind, "actor": "dsca.test", **fields})


def partner(code: str, group: str, effective: str, **more) -> str:
    return line(
        "PartnerRegistered",
        partner=code,
        name=code,
        region="Test",
        notification_group=group,
        effective_at=effective,
        **more,
    )


def platform(slug: str, effective: str = "2015-01-01") -> str:
    return line(
        "PlatformListed",
        platform=slug,
        name=slug.upper(),
        prime="Test Corp",
        category="Air defense",
        effective_at=effective,
    )


def group(code: str, value: str, effective: str) -> str:
    return line(
        "NotificationGroupChanged",
        partner=code,
        notification_group=value,
        effective_at=effective,
        rationale=R,
    )


def filed(case: str, code: str, slug: str, effective: str) -> list[str]:
    return [
        line(
            "CaseFiled",
            case=case,
            partner=code,
            platform=slug,
            quantity=2,
            estimated_value_usd=20_000_000,
            channel="FMS",
            mde=True,
            effective_at=effective,
        ),
        line(
            "CaseReviewCleared",
            case=case,
            office="DSCA",
            effective_at=effective,
            rationale=R,
        ),
    ]


def offer(case: str, effective: str, value: int = 20_000_000) -> str:
    return line("OfferIssued", case=case, value_usd=value, effective_at=effective)


def appended(run, *lines: str):
    result = run("append", "-", input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.stderr
    return result


class TestRule3DecidesOnTheGroupInForce:
    """QAT registered NATO+ effective 2022, changed to `other` effective 2020."""

    def history(self, run, registered: str, changed: str):
        appended(
            run,
            partner("QAT", registered, "2022-01-01"),
            group("QAT", changed, "2020-01-01"),
            platform("nasams"),
            *filed("Q-1", "QAT", "nasams", "2020-06-01"),
        )

    def test_an_offer_over_the_threshold_of_the_group_in_force_needs_a_notification(
        self, run
    ):
        self.history(run, "NATO+", "other")
        result = run("append", "-", input=offer("Q-1", "2021-01-01") + "\n")
        assert result.exit_code == 1
        assert result.stderr == (
            "Error: line 1 (OfferIssued) refused by rule 3 (congressional notification): "
            "an offer of $20,000,000 to QAT meets the other major defense equipment "
            "threshold of $14,000,000 in force on 2021-01-01: append CongressionalNotified "
            "first. Nothing was appended.\n"
        )
        partners = json.loads(run("partners", "--as-of", "2021-01-01", "--json").stdout)
        assert [(p["partner"], p["notification_group"]) for p in partners] == [
            ("QAT", "other")
        ]

    def test_the_mirror_case_accepts_an_offer_under_the_nato_threshold(self, run):
        self.history(run, "other", "NATO+")
        appended(run, offer("Q-1", "2021-01-01"))
        assert json.loads(run("cases", "--json").stdout)[0]["stage"] == "offered"

    def test_a_notified_case_waits_the_review_period_of_the_group_in_force(self, run):
        # Notified in 2021 while QAT was `other`: 30 days, not NATO+'s 15.
        self.history(run, "NATO+", "other")
        appended(
            run,
            line(
                "CongressionalNotified",
                case="Q-1",
                transmittal="21-01",
                notified_value_usd=20_000_000,
                effective_at="2021-01-01",
            ),
        )
        result = run("append", "-", input=offer("Q-1", "2021-01-20") + "\n")
        assert result.exit_code == 1
        assert "its 30-day review period began" in result.stderr
        appended(run, offer("Q-1", "2021-01-31"))


def test_history_state_shows_what_the_read_models_show_after_backdated_facts(run):
    appended(
        run,
        partner("POL", "NATO+", "2015-01-01"),
        platform("patriot"),
        line(
            "StrategicValueAssessed",
            partner="POL",
            score=0.9,
            effective_at="2024-01-01",
            rationale=R,
        ),
        line(
            "ProductionCapacitySet",
            platform="patriot",
            units_per_month=12.0,
            effective_at="2024-01-01",
        ),
    )
    # Recorded later, effective earlier: not in force now.
    appended(
        run,
        line(
            "StrategicValueAssessed",
            partner="POL",
            score=0.1,
            effective_at="2023-01-01",
            rationale=R,
        ),
        line(
            "ProductionCapacitySet",
            platform="patriot",
            units_per_month=5.0,
            effective_at="2023-01-01",
        ),
    )
    state = json.loads(run("history", "POL", "--state", "--json").stdout)
    [row] = json.loads(run("partners", "--json").stdout)
    assert state["strategic_score"] == row["strategic"] == 0.9
    state = json.loads(run("history", "patriot", "--state", "--json").stdout)
    assert state["units_per_month"] == 12.0


class TestReferenceFactsHoldInEveryReplay:
    def test_a_late_registration_does_not_hide_a_flag_as_of_before_it(self, run):
        appended(
            run,
            partner("ARE", "other", "2022-01-01", middle_east=True),
            platform("thaad"),
            *filed("A-1", "ARE", "thaad", "2019-06-01"),
            line(
                "CongressionalNotified",
                case="A-1",
                transmittal="20-07",
                notified_value_usd=20_000_000,
                qme_certified=False,
                effective_at="2020-03-01",
            ),
        )
        for cut in ([], ["--as-of", "2022-06-01"], ["--as-of", "2021-01-01"]):
            flags = json.loads(run("audit", "flags", *cut, "--json").stdout)
            assert [f["kind"] for f in flags if f["kind"].startswith("qme")] == [
                "qme-not-certified"
            ], cut

    def test_a_case_filed_before_its_platform_was_listed_is_queued_as_of_then(self, run):
        appended(
            run,
            partner("POL", "NATO+", "2015-01-01"),
            platform("ltamds", effective="2025-01-01"),
            *filed("P-1", "POL", "ltamds", "2020-01-01"),
        )
        live = json.loads(run("queue", "ltamds", "--json").stdout)
        result = run("queue", "ltamds", "--as-of", "2021-01-01", "--json")
        assert result.exit_code == 0, result.stderr
        assert [r["case"] for r in json.loads(result.stdout)] == [r["case"] for r in live]
        assert [r["case"] for r in live] == ["P-1"]


@pytest.mark.parametrize(
    ("cut", "in_force"),
    [
        (["--as-of", "2021-01-01"], "other"),  # the change, effective 2020
        (["--as-of", "2023-01-01"], "NATO+"),  # the registration, effective 2022
        (["--at-position", "2"], "NATO+"),  # every fact recorded by then
    ],
)
def test_a_replay_knows_a_partner_registered_after_the_cut(run, cut, in_force):
    appended(
        run,
        partner("QAT", "NATO+", "2022-01-01"),
        group("QAT", "other", "2020-01-01"),
        platform("nasams"),
    )
    result = run("partners", *cut, "--json")
    assert result.exit_code == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert (row["partner"], row["notification_group"]) == ("QAT", in_force)
