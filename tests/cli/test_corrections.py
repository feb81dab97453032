"""Corrections through the command line (docs/domain.md, "Corrections"): a delivery's
quantity and an offer's value corrected by a JSON line or by ``arms-ledger correct``,
seen in the read models, the audit trail and the flags, kept by a rebuild and by a
replica; what the rules forbid refused with one line."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import line, one_line_error, registration

HISTORY = [
    registration() | {"effective_at": "2020-01-01"},
    {
        "type": "PlatformListed",
        "platform": "ah-64e",
        "name": "AH-64E Apache",
        "prime": "Boeing",
        "category": "Aircraft",
        "actor": "dsca",
        "effective_at": "2020-01-01",
    },
    {
        "type": "CaseFiled",
        "case": "PL-1",
        "partner": "POL",
        "platform": "ah-64e",
        "quantity": 40,
        "estimated_value_usd": 10_000_000,
        "channel": "FMS",
        "actor": "dsca.cwd",
        "effective_at": "2024-01-01",
    },
    {
        "type": "CaseReviewCleared",
        "case": "PL-1",
        "office": "DSCA",
        "actor": "dsca.cwd",
        "rationale": "LOR complete",
        "effective_at": "2024-01-02",
    },
    {
        "type": "OfferIssued",
        "case": "PL-1",
        "value_usd": 9_000_000,
        "actor": "usasac",
        "effective_at": "2024-01-03",
    },  # position 5
    {
        "type": "OfferAccepted",
        "case": "PL-1",
        "actor": "dfas",
        "effective_at": "2024-01-04",
    },
    {
        "type": "CaseImplemented",
        "case": "PL-1",
        "actor": "usasac",
        "effective_at": "2024-01-05",
    },
    {
        "type": "DeliveryRecorded",
        "case": "PL-1",
        "quantity": 30,
        "actor": "usasac",
        "effective_at": "2024-02-01",
    },  # position 8
]
OFFER, DELIVERY = 5, 8
FIX_DELIVERY = {
    "type": "EventCorrected",
    "case": "PL-1",
    "corrects": DELIVERY,
    "corrected": {"quantity": 3},
    "actor": "usasac.clerk",
    "rationale": "typed 30 for 3",
}


@pytest.fixture
def loaded(run):
    assert run("init").exit_code == 0
    result = run("append", "-", input="".join(line(e) for e in HISTORY))
    assert result.exit_code == 0, result.stderr
    return run


def case_row(run, *cut: str) -> dict:
    rows = json.loads(run("cases", "--json", *cut).stdout)
    return {k: rows[0][k] for k in ("stage", "delivered", "quantity_left", "value_usd")}


def corrected(run) -> None:
    """The delivery corrected by a JSON line, the offer by ``correct``."""
    result = run("append", "-", input=line(FIX_DELIVERY))
    assert (result.exit_code, result.stdout) == (0, "Appended 1 event at position 9.\n")
    result = run(
        "correct",
        str(OFFER),
        "--set",
        "value_usd=8,000,000",
        "--actor",
        "usasac.clerk",
        "--rationale",
        "the LOA's value was mistyped",
    )
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "Appended EventCorrected to case:PL-1 at position 10.\n",
        "",
    )


def test_corrections_change_the_read_models(loaded):
    before = {"stage": "delivering", "delivered": 30, "quantity_left": 10}
    assert case_row(loaded) == before | {"value_usd": 9_000_000}
    corrected(loaded)
    after = {"stage": "delivering", "delivered": 3, "quantity_left": 37}
    assert case_row(loaded) == after | {"value_usd": 8_000_000}
    queue = json.loads(loaded("queue", "ah-64e", "--json").stdout)
    assert [(r["case"], r["quantity_left"]) for r in queue] == [("PL-1", 37)]
    deliveries = json.loads(
        loaded("query", "SELECT position, quantity FROM deliveries", "--json").stdout
    )
    assert deliveries == [{"position": DELIVERY, "quantity": 3}]


def test_the_audit_trail_shows_both_versions_and_who_corrected(loaded):
    corrected(loaded)
    trail = json.loads(loaded("audit", "trail", "PL-1", "--json").stdout)
    by_position = {r["position"]: r for r in trail}
    assert json.loads(by_position[DELIVERY]["payload"]) == {"case": "PL-1", "quantity": 30}
    correction = by_position[9]
    assert (correction["type"], correction["actor"], correction["rationale"]) == (
        "EventCorrected",
        "usasac.clerk",
        "typed 30 for 3",
    )
    assert correction["effective_at"] == "2024-02-01T00:00:00Z"  # the delivery's
    assert json.loads(correction["payload"]) == {
        "case": "PL-1",
        "corrects": DELIVERY,
        "corrected": {"quantity": 3},
        "retracted": False,
        "of": "DeliveryRecorded",
        "was": {"quantity": 30},
    }
    assert json.loads(by_position[10]["payload"])["was"] == {"value_usd": 9_000_000}


def test_audit_explain_lists_the_corrections(loaded):
    corrected(loaded)
    result = loaded("audit", "explain", "PL-1")
    assert result.exit_code == 0
    assert result.stdout.endswith(
        "\nCorrections of PL-1:\n"
        "  #9 effective 2024-02-01: DeliveryRecorded at log position 8 corrected by "
        "usasac.clerk: quantity 30 -> 3 (typed 30 for 3)\n"
        "  #10 effective 2024-01-03: OfferIssued at log position 5 corrected by "
        "usasac.clerk: value_usd 9,000,000 -> 8,000,000 (the LOA's value was "
        "mistyped)\n"
    )
    found = json.loads(loaded("audit", "explain", "PL-1", "--json").stdout)
    assert [c["position"] for c in found["corrections"]] == [9, 10]


def test_every_correction_raises_a_flag(loaded):
    corrected(loaded)
    flags = json.loads(loaded("audit", "flags", "--json").stdout)
    assert [
        (f["kind"], f["event_position"], f["detail"])
        for f in flags
        if f["kind"] == "correction"
    ] == [
        (
            "correction",
            10,
            "OfferIssued at log position 5 corrected by usasac.clerk: "
            "value_usd 9,000,000 -> 8,000,000",
        ),
        (
            "correction",
            9,
            "DeliveryRecorded at log position 8 corrected by usasac.clerk: "
            "quantity 30 -> 3",
        ),
    ]
    # A correction takes effect when the corrected event did: no backdated flag.
    assert not [
        f for f in flags if f["event_position"] in (9, 10) and f["kind"] != "correction"
    ]


def test_replays_show_the_original_before_the_correction_was_recorded(loaded):
    known = json.loads(loaded("log", "--json").stdout)[-1]["recorded_at"]
    corrected(loaded)
    assert case_row(loaded, "--known-at", known)["delivered"] == 30
    assert case_row(loaded, "--as-of", "2024-03-01")["delivered"] == 3
    assert case_row(loaded, "--as-of", "2024-01-03T12:00:00Z") == {
        "stage": "offered",
        "delivered": 0,
        "quantity_left": 40,
        "value_usd": 8_000_000,
    }


def test_corrections_survive_a_rebuild_and_a_replica(loaded, ledger_dir, tmp_path):
    corrected(loaded)
    live = case_row(loaded)
    assert loaded("rebuild").exit_code == 0
    assert case_row(loaded) == live
    export, replica = tmp_path / "export", tmp_path / "replica"
    assert loaded("audit", "export", str(export)).exit_code == 0
    key = (ledger_dir / "verifier.key").read_text().strip()
    result = loaded(
        "--ledger", str(replica), "init", "--from-export", str(export), "--key", key
    )
    assert result.exit_code == 0, result.stderr
    assert case_row(lambda *a: loaded("--ledger", str(replica), *a)) == live


def test_a_retracted_delivery_leaves_the_case_and_its_table(loaded):
    retract = FIX_DELIVERY | {"corrected": {}, "retracted": True}
    assert loaded("append", "-", input=line(retract)).exit_code == 0
    assert case_row(loaded) == {
        "stage": "implemented",
        "delivered": 0,
        "quantity_left": 40,
        "value_usd": 9_000_000,
    }
    deliveries = loaded("query", "SELECT count(*) AS n FROM deliveries", "--json")
    assert json.loads(deliveries.stdout) == [{"n": 0}]
    one_line_error(
        loaded("append", "-", input=line(FIX_DELIVERY)),
        "line 1 (EventCorrected) refused by corrections: the DeliveryRecorded at log "
        "position 8 was retracted by usasac.clerk (effective 2024-02-01T00:00:00Z); a "
        "retraction is final: record a new DeliveryRecorded. Nothing was appended.",
    )


def test_a_correction_may_follow_its_event_in_one_batch(run):
    assert run("init").exit_code == 0
    result = run("append", "-", input="".join(line(e) for e in [*HISTORY, FIX_DELIVERY]))
    assert (result.exit_code, result.stdout) == (0, "Appended 9 events at positions 1-9.\n")
    assert case_row(run)["delivered"] == 3


def test_a_correction_of_a_correction_is_corrected_at_the_original(loaded):
    corrected(loaded)
    again = FIX_DELIVERY | {"corrected": {"quantity": 4}}
    assert loaded("append", "-", input=line(again)).exit_code == 0
    trail = json.loads(loaded("audit", "trail", "PL-1", "--json").stdout)
    assert json.loads(trail[-1]["payload"])["was"] == {"quantity": 3}
    assert case_row(loaded)["delivered"] == 4


REFUSED = "line 1 (EventCorrected) refused by"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"corrected": {"quantity": 50}},
            f"{REFUSED} rule 4 (offers and deliveries): correcting the DeliveryRecorded "
            "at log position 8 would make case PL-1's deliveries total 50, beyond its "
            "quantity of 40",
        ),
        (
            {"corrects": 6, "corrected": {"deposit_usd": 1}},
            f"{REFUSED} corrections: OfferAccepted cannot be corrected: it moved case "
            "PL-1 on and what followed depended on it; only these can be: CaseFiled "
            "(quantity, estimated_value_usd); CongressionalNotified (notified_value_usd); "
            "OfferIssued (value_usd); DeliveryRecorded (quantity)",
        ),
        (
            {"corrects": 1},
            f"{REFUSED} corrections: the event at log position 1 is PartnerRegistered of "
            "partner:POL, not of case PL-1; a correction names the case of the event it "
            "corrects, and only case events are corrected (a partner's, platform's or "
            "policy's fact is replaced by recording a later one)",
        ),
        (
            {"corrects": OFFER, "corrected": {}, "retracted": True},
            f"{REFUSED} corrections: OfferIssued cannot be retracted (later events of "
            "case PL-1 depended on it); correct its value_usd instead, or cancel the "
            "case with CaseCancelled",
        ),
        (
            {"corrects": OFFER, "corrected": {"value_usd": 200_000_000}},
            f"{REFUSED} rule 3 (congressional notification): the corrected OfferIssued "
            "would not have been accepted: an offer of $200,000,000 to POL meets the "
            "NATO+ defense articles and services threshold of $100,000,000 in force on "
            "2024-01-03: append CongressionalNotified first",
        ),
        (
            {"corrected": {"quantity": 30}},
            f"{REFUSED} corrections: the DeliveryRecorded at log position 8 already has "
            "quantity 30: the correction changes nothing",
        ),
        (
            {"was": {"quantity": 31}},
            f"{REFUSED} corrections: was quantity 31 does not match the values in force, "
            "quantity 30: the event was corrected since; `arms-ledger audit trail "
            "case:PL-1` shows its corrections",
        ),
        (
            {"corrects": 99},
            f"{REFUSED} corrections: there is no event at log position 99 to correct; "
            "`arms-ledger log` shows the positions",
        ),
        (
            {"effective_at": "2024-03-01"},
            "line 1 (EventCorrected): effective_at 2024-03-01T00:00:00Z is not that of "
            "the event it corrects (2024-02-01T00:00:00Z): a correction takes effect "
            "when the corrected event did; remove effective_at",
        ),
        (
            {"rationale": None},
            f"{REFUSED} rule 5 (decisions carry a rationale): EventCorrected is a "
            "decision: give a rationale saying why it was taken (--rationale, or "
            '"rationale" in JSON)',
        ),
    ],
)
def test_what_the_rules_forbid_is_refused_with_one_line(loaded, change, message):
    record = {k: v for k, v in (FIX_DELIVERY | change).items() if v is not None}
    one_line_error(
        loaded("append", "-", input=line(record)), f"{message}. Nothing was appended."
    )
    assert case_row(loaded)["delivered"] == 30


def test_a_closed_case_stays_fully_delivered(loaded):
    assert (
        loaded(
            "append", "-", input=line(FIX_DELIVERY | {"corrected": {"quantity": 40}})
        ).exit_code
        == 0
    )
    close = {
        "type": "CaseClosed",
        "case": "PL-1",
        "actor": "usasac",
        "effective_at": "2024-03-01",
    }
    assert loaded("append", "-", input=line(close)).exit_code == 0
    one_line_error(
        loaded("append", "-", input=line(FIX_DELIVERY)),
        f"{REFUSED} rule 2 (order): case PL-1 was closed as fully delivered; "
        "correcting the DeliveryRecorded at log position 8 would leave 3 of 40 "
        "delivered. Nothing was appended.",
    )


def test_correct_refuses_with_one_line(loaded):
    one_line_error(
        loaded("correct", "1", "--set", "quantity=3", "--actor", "a", "--rationale", "r"),
        "the event at log position 1 is PartnerRegistered of partner:POL: only a "
        "case's events are corrected (a partner's, platform's or policy's fact is "
        "replaced by recording a later one)",
    )
    one_line_error(
        loaded("correct", "99", "--retract", "--actor", "a", "--rationale", "r"),
        "there is no event at log position 99; `arms-ledger log` shows the positions",
    )
    one_line_error(
        loaded("correct", "8", "--set", "colour=3", "--actor", "a", "--rationale", "r"),
        "EventCorrected refused by corrections: DeliveryRecorded's colour cannot be "
        "corrected; its correctable field(s): quantity",
    )
    result = loaded("correct", "8", "--set", "quantity=three", "--actor", "a")
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "Error: Invalid value for --set: 'quantity=three' is not FIELD=NUMBER; e.g. "
        "--set quantity=3 or --set value_usd=8000000\n"
    )


def test_a_correction_appended_again_under_its_idempotency_key_is_skipped(loaded):
    keyed = line(FIX_DELIVERY | {"idempotency_key": "fix-8"})
    assert loaded("append", "-", input=keyed).stdout == "Appended 1 event at position 9.\n"
    assert loaded("append", "-", input=keyed).stdout == (
        "Appended nothing.\n"
        "Skipped line 1: its idempotency key was already appended as version 7 of "
        "case:PL-1.\n"
    )
    assert case_row(loaded)["delivered"] == 3
