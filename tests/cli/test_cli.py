"""The arms-ledger command through CliRunner: exact output, exit codes, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from arms_ledger.ledger.domain import events as ev

from tests.histories import ALL_TYPES, EVERY_TYPE, jsonl
from tests.stores import raw


@pytest.fixture
def initialized(run):
    assert run("init").exit_code == 0
    return run


def count(ledger_dir: Path) -> int:
    with raw(ledger_dir) as db:
        return db.execute("SELECT count(*) FROM stored_events").fetchone()[0]


def test_init_creates_a_ledger_once(run, ledger_dir):
    result = run("init", "--origin", "dsca.example/fms")
    key = (ledger_dir / "verifier.key").read_text()
    assert (result.exit_code, result.stdout) == (
        0,
        f"Created an empty ledger at {ledger_dir}\nVerifier key: {key}",
    )
    assert key.startswith("dsca.example/fms+")
    assert (ledger_dir / "signing.key").stat().st_mode & 0o777 == 0o600
    again = run("init")
    assert again.exit_code == 1
    assert again.stderr == f"Error: there is already a ledger at {ledger_dir}\n"


def test_the_ledger_option_beats_the_environment(run, tmp_path):
    other = tmp_path / "other"
    result = run("--ledger", str(other), "init")
    assert result.stdout.startswith(f"Created an empty ledger at {other}\n")
    assert (other / "ledger.json").exists()


def test_commands_need_a_ledger(run, ledger_dir):
    result = run("log")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: no ledger at {ledger_dir}; create one with `arms-ledger init`, or point "
        "--ledger / ARMS_LEDGER at an existing one\n"
    )


def test_append_every_event_type_and_read_it_back_as_json(initialized, ledger_dir):
    result = initialized("append", "-", input=jsonl(ALL_TYPES))
    assert result.exit_code == 0, result.stderr
    n = len(ALL_TYPES)
    assert result.stdout == f"Appended {n} events at positions 1-{n}.\n"
    log = initialized("log", "--json")
    assert log.exit_code == 0
    rows = json.loads(log.stdout)
    assert [r["type"] for r in rows] == [r["type"] for r in ALL_TYPES]
    assert {r["type"] for r in rows} == set(ev.EVENT_TYPES)
    first = rows[0]
    assert list(first)[:8] == [
        "position",
        "type",
        "actor",
        "rationale",
        "reference",
        "effective_at",
        "recorded_at",
        "idempotency_key",
    ]
    for row, given in zip(rows, ALL_TYPES, strict=True):
        for key, value in given.items():
            if key in ("effective_at", "offer_expires_at"):  # made canonical
                canonical = value if value.endswith("Z") else f"{value}T00:00:00Z"
                assert row[key] == canonical
            else:
                assert row[key] == value, (row["type"], key)
    # The ledger fills what a correction replaces, and when it takes effect.
    assert {k: rows[len(EVERY_TYPE)][k] for k in ("of", "was", "effective_at")} == {
        "of": "OfferIssued",
        "was": {"value_usd": 5_000_000},
        "effective_at": "2024-07-03T00:00:00Z",
    }


def test_a_batch_with_one_bad_line_writes_nothing(initialized, ledger_dir):
    lines = [
        *EVERY_TYPE[:20],
        {"type": "DeliveryRecorded", "case": "PL-1", "quantity": 1, "actor": "usasac"},
        *EVERY_TYPE[20:],
    ]
    result = initialized("append", "-", input=jsonl(lines))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: line 21 (DeliveryRecorded) refused by rule 4 (offers and deliveries): "
        "deliveries only after CaseImplemented; case PL-1 is at stage review-cleared. "
        "Nothing was appended.\n"
    )
    assert count(ledger_dir) == 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"type":"CaseFiled","case":"X","actor":"a"',
            "line 2: malformed JSON (Input data was truncated); each line must be one JSON "
            "object",
        ),
        (
            '{"type":"Approved","case":"X","actor":"a"}',
            "line 2 (Approved): unknown event type 'Approved'; "
            "`arms-ledger schema --types` lists the event types",
        ),
        (
            '{"type":"CaseClosed","case":"X","actor":"a","colour":"red"}',
            "line 2 (CaseClosed): Object contains unknown field `colour` "
            "(`arms-ledger schema TYPE` shows the fields of each type)",
        ),
        (
            '{"type":"DeliveryRecorded","case":"X","actor":"a","quantity":"ten"}',
            "line 2 (DeliveryRecorded): Expected `int`, got `str` - at `$.quantity` "
            "(`arms-ledger schema TYPE` shows the fields of each type)",
        ),
        (
            '{"type":"CaseClosed","actor":"a"}',
            "line 2 (CaseClosed): Object missing required field `case` "
            "(`arms-ledger schema TYPE` shows the fields of each type)",
        ),
        (
            '{"case":"X","actor":"a"}',
            'line 2: no "type"; every event names its type, e.g. "type": "CaseFiled"',
        ),
        (
            '{"type":"CaseClosed","case":"X","actor":"a","recorded_at":"2026-01-01"}',
            "line 2 (CaseClosed): recorded_at is set by the ledger when an event is "
            "appended; remove it from the input",
        ),
        (
            '{"type":"CaseClosed","case":"NOPE","actor":"a"}',
            "line 2 (CaseClosed) refused by rule 1 (references): case NOPE is not filed; "
            "append CaseFiled for it first",
        ),
        (
            '{"type":"PartnerSuspended","partner":"POL","actor":"a"}',
            "line 2 (PartnerSuspended) refused by rule 5 (decisions carry a rationale): "
            "PartnerSuspended is a decision: give a rationale saying why it was taken "
            '(--rationale, or "rationale" in JSON)',
        ),
    ],
)
def test_bad_input_is_one_line_exit_1_and_nothing_written(
    initialized, ledger_dir, line, message
):
    register = json.dumps(EVERY_TYPE[2])
    result = initialized("append", "-", input=f"{register}\n{line}\n")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"Error: {message}. Nothing was appended.\n"
    assert count(ledger_dir) == 0


def test_append_reads_a_file_and_reports_json(initialized, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(jsonl(EVERY_TYPE[:3]))
    result = initialized("append", str(path), "--json")
    assert json.loads(result.stdout) == {
        "appended": 3,
        "positions": [1, 2, 3],
        "skipped": [],
    }


def test_idempotent_append_reports_what_it_skipped(initialized):
    record = EVERY_TYPE[2] | {"idempotency_key": "pol-1"}
    initialized("append", "-", input=jsonl([record]))
    result = initialized("append", "-", input=jsonl([EVERY_TYPE[3], record]))
    assert result.stdout == (
        "Appended 1 event at position 2.\n"
        "Skipped line 2: its idempotency key was already appended as version 1 of "
        "partner:POL.\n"
    )


def test_empty_input_is_an_error(initialized):
    result = initialized("append", "-", input="\n")
    assert result.exit_code == 1
    assert result.stderr == "Error: no events in the input; give one JSON object per line\n"


def test_usage_errors_exit_2(initialized):
    assert initialized("append").exit_code == 2
    assert initialized("log", "--limit", "0").exit_code == 2
    result = initialized("log", "--type", "Nope")
    assert result.exit_code == 2
    assert "unknown event type 'Nope'" in result.stderr


class TestTypedCommands:
    def test_the_frequent_decisions_without_json(self, initialized, monkeypatch):
        monkeypatch.setenv("ARMS_LEDGER_ACTOR", "dsca.cwd")
        steps = [
            (
                "partner",
                "register",
                "POL",
                "--name",
                "Poland",
                "--region",
                "Europe",
                "--notification-group",
                "NATO+",
                "--nato-member",
                "--effective-at",
                "2020-01-01",
            ),
            (
                "platform",
                "add",
                "ah-64e",
                "--name",
                "AH-64E Apache",
                "--prime",
                "Boeing",
                "--category",
                "Aircraft",
                "--effective-at",
                "2020-01-01",
            ),
            (
                "policy",
                "adopt",
                "america-first-2026",
                "--mode",
                "scored",
                "--legal-basis",
                "E.O. 14383",
                "--weights-investment",
                "0.5",
                "--weights-economic",
                "0.2",
                "--rationale",
                "E.O. 14383 section 4",
                "--effective-at",
                "2026-02-06",
            ),
            (
                "partner",
                "spending",
                "POL",
                "--year",
                "2025",
                "--pct-gdp",
                "4.48",
                "--source",
                "NATO",
                "--effective-at",
                "2025-08-28",
            ),
            (
                "partner",
                "assess",
                "POL",
                "--score",
                "0.9",
                "--factors",
                "eastern-flank",
                "--factors",
                "hosts-us-forces",
                "--rationale",
                "frontline ally",
                "--effective-at",
                "2026-02-10",
            ),
            (
                "case",
                "file",
                "PL-B-AHA",
                "--partner",
                "POL",
                "--platform",
                "ah-64e",
                "--quantity",
                "96",
                "--estimated-value-usd",
                "12000000000",
                "--channel",
                "FMS",
                "--mde",
                "--effective-at",
                "2022-09-01",
            ),
            (
                "case",
                "clear",
                "PL-B-AHA",
                "--office",
                "State",
                "--rationale",
                "LOR complete",
                "--effective-at",
                "2023-06-01",
            ),
            (
                "case",
                "notify",
                "PL-B-AHA",
                "--transmittal",
                "23-57",
                "--notified-value-usd",
                "12000000000",
                "--effective-at",
                "2023-08-21",
            ),
            (
                "case",
                "offer",
                "PL-B-AHA",
                "--value-usd",
                "10000000000",
                "--effective-at",
                "2023-09-05",
            ),
            ("case", "accept", "PL-B-AHA", "--effective-at", "2023-10-01"),
            ("case", "implement", "PL-B-AHA", "--effective-at", "2023-10-02"),
            (
                "case",
                "deliver",
                "PL-B-AHA",
                "--quantity",
                "8",
                "--effective-at",
                "2026-01-10",
            ),
            (
                "case",
                "reprioritize",
                "PL-B-AHA",
                "--priority-class",
                "expedited",
                "--authority",
                "USD(A&S)",
                "--rationale",
                "eastern flank readiness",
                "--effective-at",
                "2026-01-11",
            ),
        ]
        for position, args in enumerate(steps, start=1):
            result = initialized(*args)
            assert result.exit_code == 0, (args, result.stderr)
            stream = f"{args[0]}:{args[2]}"
            assert result.stdout.endswith(f" to {stream} at position {position}.\n")
        state = json.loads(initialized("history", "PL-B-AHA", "--state", "--json").stdout)
        assert (state["stage"], state["delivered"], state["priority_class"]) == (
            "delivering",
            8,
            "expedited",
        )
        policy = json.loads(
            initialized("log", "--type", "PriorityPolicyAdopted", "--json").stdout
        )
        assert policy[0]["weights"] == {
            "investment": 0.5,
            "strategic": 0.3,
            "economic": 0.2,
        }
        assessed = json.loads(
            initialized("log", "--type", "StrategicValueAssessed", "--json").stdout
        )
        assert assessed[0]["factors"] == ["eastern-flank", "hosts-us-forces"]

    def test_a_refused_decision_names_the_rule(self, initialized):
        result = initialized(
            "case", "deliver", "C1", "--quantity", "1", "--actor", "usasac"
        )
        assert (result.exit_code, result.stdout) == (1, "")
        assert result.stderr == (
            "Error: DeliveryRecorded refused by rule 1 (references): case C1 is not filed; "
            "append CaseFiled for it first\n"
        )

    def test_a_bad_value_names_the_option(self, initialized):
        result = initialized("case", "deliver", "C1", "--quantity", "0", "--actor", "a")
        assert (
            result.stderr
            == "Error: DeliveryRecorded: Expected `int` >= 1 - at --quantity\n"
        )

    def test_actor_is_required(self, initialized):
        result = initialized("case", "close", "C1")
        assert result.exit_code == 2
        assert "Missing option '--actor'" in result.stderr


class TestReading:
    @pytest.fixture
    def full(self, initialized):
        assert initialized("append", "-", input=jsonl(EVERY_TYPE)).exit_code == 0
        return initialized

    def test_log_filters_by_type_actor_and_time(self, full):
        rows = json.loads(
            full("log", "--type", "HoldPlaced", "--type", "HoldLifted", "--json").stdout
        )
        assert [r["type"] for r in rows] == ["HoldPlaced", "HoldLifted"]
        rows = json.loads(full("log", "--acted-by", "hfac.chair", "--json").stdout)
        assert [r["position"] for r in rows] == [22, 23]
        rows = json.loads(
            full("log", "--from", "2025-01-01", "--to", "2025-09-30", "--json").stdout
        )
        assert [r["type"] for r in rows] == ["DeliveryRecorded"]
        assert json.loads(full("log", "--recorded-to", "2000-01-01", "--json").stdout) == []

    def test_log_of_one_stream(self, full):
        rows = json.loads(full("log", "--stream", "case:PL-2", "--json").stdout)
        assert [r["type"] for r in rows] == [
            "CaseFiled",
            "CaseReviewCleared",
            "OfferIssued",
            "OfferExpired",
        ]
        assert rows == json.loads(full("log", "--stream", "PL-2", "--json").stdout)

    def test_log_nl_and_csv(self, full):
        nl = full("log", "--type", "CaseClosed", "--nl").stdout.splitlines()
        assert len(nl) == 1 and json.loads(nl[0])["case"] == "PL-1"
        csv_lines = full("log", "--type", "CaseClosed", "--csv").stdout.splitlines()
        assert csv_lines[0].startswith(
            "position,type,actor,rationale,reference,effective_at,"
        )
        assert csv_lines[1].startswith("31,CaseClosed,usasac,,,2025-10-03T00:00:00Z,")

    def test_log_table(self, full):
        out = full("log", "--type", "HoldPlaced").stdout.splitlines()
        assert out[0].split() == [
            "position",
            "effective_at",
            "type",
            "stream",
            "actor",
            "details",
        ]
        assert out[2].split() == [
            "22",
            "2024-07-20T00:00:00Z",
            "HoldPlaced",
            "case:PL-1",
            "hfac.chair",
            "office=HFAC-chair",
            "—",
            "questions",
            "on",
            "end",
            "use",
        ]

    def test_history_shows_events_and_state_at_any_version(self, full):
        events = json.loads(
            full("history", "case:PL-1", "--at-version", "4", "--json").stdout
        )
        assert [(e["version"], e["type"]) for e in events] == [
            (1, "CaseFiled"),
            (2, "CaseReviewCleared"),
            (3, "CongressionalReviewStarted"),
            (4, "HoldPlaced"),
        ]
        state = json.loads(
            full("history", "PL-1", "--at-version", "4", "--state", "--json").stdout
        )
        assert (state["stage"], state["holds"]) == ("congressional-review", ["HFAC-chair"])
        table = full("history", "PL-1").stdout
        assert "State of case:PL-1 at version 13:" in table
        assert "stage                closed" in table

    def test_history_of_an_unknown_id(self, full):
        result = full("history", "XX-9")
        assert result.exit_code == 1
        assert result.stderr == (
            "Error: no partner, platform, case or policy 'XX-9' in the ledger; "
            "`arms-ledger log` lists what there is\n"
        )
        assert full("history", "PL-1", "--at-version", "99").stderr == (
            "Error: case:PL-1 has 13 events; there is no version 99\n"
        )


def test_schema_lists_types_and_prints_one(run):
    types = run("schema", "--types").stdout.splitlines()
    assert len(types) == len(ev.EVENT_TYPES)
    assert types[0].split() == ["PartnerRegistered", "partner"]
    one = json.loads(run("schema", "CaseFiled", "--json").stdout)
    assert one["$ref"] == "#/$defs/CaseFiled"
    assert list(one["$defs"]) == ["CaseFiled"]  # only the definitions it needs
    assert "recorded_at" not in one["$defs"]["CaseFiled"]["properties"]
    policy = json.loads(run("schema", "PriorityPolicyAdopted", "--json").stdout)
    assert list(policy["$defs"]) == ["PriorityPolicyAdopted", "Targets", "Tiers", "Weights"]


HOLD_PLACED_FIELDS = """\
field            type  required  meaning                                                    allowed
---------------  ----  --------  ---------------------------------------------------------  --------------------------------------------------
type             text  yes       the event type                                             HoldPlaced
case             text  yes       case identifier chosen by the filer (PL-B-AHA)
office           enum  yes       the committee office that places the hold                  SFRC-chair, SFRC-ranking, HFAC-chair, HFAC-ranking
actor            text  yes       who acted, e.g. dsca.cwd.jsmith or state.pm-rsat           up to 200 characters
rationale        text  yes       why; required on a decision, optional otherwise            1-4,000 characters
reference        text  no        a transmittal number, a document id, an address            up to 500 characters
effective_at     time  no        when it took effect; default: when recorded, never after   RFC 3339 date or datetime, UTC
idempotency_key  text  no        the same key appended twice in one stream is written once  1-200 characters
signature        text  no        a decision's Ed25519 signature by its actor (base64)
"""  # noqa: E501


def test_schema_type_shows_its_fields_in_a_short_table(run):
    result = run("schema", "HoldPlaced")
    assert (result.exit_code, result.stdout) == (0, HOLD_PLACED_FIELDS)


def test_schema_type_wraps_its_fields_to_the_terminal(run, monkeypatch):
    monkeypatch.setenv("COLUMNS", "72")
    lines = run("schema", "HoldPlaced").stdout.splitlines()
    assert max(len(x) for x in lines) <= 72
    assert lines[:8] == [
        "field            type  required  meaning             allowed",
        "---------------  ----  --------  ------------------  ------------------",
        "type             text  yes       the event type      HoldPlaced",
        "case             text  yes       case identifier",
        "                                 chosen by the",
        "                                 filer (PL-B-AHA)",
        "office           enum  yes       the committee       SFRC-chair,",
        "                                 office that places  SFRC-ranking,",
    ]
    assert run("schema", "HoldPlaced", "--wide").stdout == HOLD_PLACED_FIELDS


def test_schema_type_shows_nested_fields_defaults_units_and_ranges(run):
    rows = {
        r.split("  ")[0]: r
        for r in run("schema", "PriorityPolicyAdopted").stdout.splitlines()[2:]
    }
    assert rows["weights.investment"].split() == [
        "weights.investment", "number", "default", "0.4", "weight", "of", "defense",
        "investment", ">=", "0,", "<=", "1",
    ]  # fmt: skip
    filed = run("schema", "CaseFiled").stdout
    assert "the case's estimated value (whole U.S. dollars)" in filed
    assert "FMS, DCS" in filed


def test_published_schema_is_current():
    published = Path(__file__).resolve().parents[2] / "ledger" / "schema.json"
    assert json.loads(published.read_text()) == json.loads(json.dumps(ev.input_schema())), (
        "regenerate with: arms-ledger schema > ledger/schema.json"
    )
