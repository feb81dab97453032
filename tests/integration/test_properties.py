"""Properties that hold for every history, checked on random ones (hypothesis)."""

from __future__ import annotations

import json
import tempfile
from contextlib import ExitStack, closing
from pathlib import Path

import pytest
from arms_ledger.ledger.app.batch import MemoryWorld
from arms_ledger.ledger.app.directory import create
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.errors import BatchRefused
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.histories import EVERY_TYPE

# Property tests over generated histories (hypothesis).
pytestmark = pytest.mark.slow

SETUP = [r for r in EVERY_TYPE if "case" not in r]  # partners, platforms, policies
CASES = ("A", "B")


def step(kind: str, case: str, day: int) -> dict:
    at = f"2025-{1 + day // 28:02d}-{1 + day % 28:02d}"
    base: dict[str, object] = {"case": case, "actor": "tester", "effective_at": at}
    decision: dict[str, object] = {"rationale": "random walk"}
    kinds: dict[str, dict[str, object]] = {
        "file": {
            "type": "CaseFiled",
            "partner": "POL",
            "platform": "ah-64e",
            "quantity": 5,
            "estimated_value_usd": 50_000_000,
            "channel": "FMS",
            "mde": True,
        },
        "clear": {"type": "CaseReviewCleared", "office": "DSCA"} | decision,
        "review": {"type": "CongressionalReviewStarted"},
        "hold": {"type": "HoldPlaced", "office": "SFRC-chair"} | decision,
        "lift": {"type": "HoldLifted", "office": "SFRC-chair"} | decision,
        "notify": {
            "type": "CongressionalNotified",
            "transmittal": "25-1",
            "notified_value_usd": 50_000_000,
        },
        "emergency": {"type": "EmergencyDeclared"} | decision,
        "offer": {"type": "OfferIssued", "value_usd": 40_000_000},
        "accept": {"type": "OfferAccepted"},
        "implement": {"type": "CaseImplemented"},
        "deliver": {"type": "DeliveryRecorded", "quantity": 2},
        "close": {"type": "CaseClosed"},
        "cancel": {"type": "CaseCancelled", "by": "purchaser"} | decision,
        "suspend": {"type": "CaseSuspended"} | decision,
        "resume": {"type": "CaseResumed"} | decision,
        "expedite": {
            "type": "CaseReprioritized",
            "priority_class": "expedited",
            "authority": "USD(A&S)",
        }
        | decision,
    }
    return base | kinds[kind]


KINDS = (
    "file",
    "clear",
    "review",
    "hold",
    "lift",
    "notify",
    "emergency",
    "offer",
    "accept",
    "implement",
    "deliver",
    "close",
    "cancel",
    "suspend",
    "resume",
    "expedite",
)

LIFECYCLE = (
    "clear",
    "review",
    "hold",
    "lift",
    "notify",
    "offer",
    "accept",
    "implement",
    "deliver",
    "deliver",
    "close",
)


@st.composite
def walks(draw) -> list[dict]:
    """Each case goes some way along its lifecycle, with random other steps mixed in."""
    steps = []
    for case in CASES:
        steps.append(("file", case, 0))
        for n, kind in enumerate(LIFECYCLE[: draw(st.integers(0, len(LIFECYCLE)))], 1):
            steps.append((kind, case, 20 * n))
    noise = st.tuples(st.sampled_from(KINDS), st.sampled_from(CASES), st.integers(0, 300))
    steps += draw(st.lists(noise, max_size=12))
    return [step(k, c, d) for k, c, d in sorted(steps, key=lambda s: s[2])]


def decode(record: dict) -> ev.Event:
    return ev.decoder.decode(json.dumps(record))


# On PostgreSQL every example makes two ledgers, each a schema of its own with its tables
# (~70 ms), and every append is a round trip to the server: 20 examples there, not 60,
# keep the run to a few seconds (the rules are the same; the store is what is checked).
EXAMPLES = {"sqlite": 60, "postgresql": 20}


def test_one_at_a_time_and_one_batch_agree_and_match_the_folded_state(store):
    """Once per store (tests/stores.py)."""
    settings(
        max_examples=EXAMPLES[store],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )(given(walks())(one_at_a_time_and_one_batch_agree_and_match_the_folded_state))()


def one_at_a_time_and_one_batch_agree_and_match_the_folded_state(walk):
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as opened:
        # closed even when an example fails (hypothesis runs many): a PostgreSQL ledger
        # holds a connection until it is closed
        one_by_one = opened.enter_context(closing(create(Path(tmp) / "a")))
        one_by_one.append([decode(r) for r in SETUP])
        accepted = []
        for record in walk:
            head = one_by_one.head()
            try:
                one_by_one.append([decode(record)])
            except BatchRefused:
                assert one_by_one.head() == head  # a refusal writes nothing
            else:
                accepted.append(record)
        batch = opened.enter_context(closing(create(Path(tmp) / "b")))
        batch.append([decode(r) for r in SETUP + accepted])  # the same, all at once

        def payloads(ledger):
            return [
                (r.stream, r.version, r.event.__class__.__name__, r.event.effective_at)
                for r in ledger.read()
            ]

        assert payloads(one_by_one) == payloads(batch)
        event(f"accepted {min(len(accepted) // 5 * 5, 20)}+")
        world = MemoryWorld.of(r.event for r in one_by_one.read())
        for case in CASES:
            stored = one_by_one.load_stream(f"case:{case}")
            assert stored.case == world.stream(f"case:{case}").case
            if stored.case is not None:
                assert 0 <= stored.case.delivered <= stored.case.quantity
