"""Issue 16, item 1: ``whatif`` predicts what adopting the proposal would show.

Over the random histories of ``test_projection_properties`` (partners, policies in both
modes at random effective times, capacity changes, cases along their lifecycle) and a
random proposal, ``projections.whatif.compare`` on the whole log gives the "after"
queues; the same proposal is then appended for real, as a ``PriorityPolicyAdopted``
with the effective time ``compare`` gave it, to a copy of the ledger, and the queues of
a rebuild of the copy must be exactly the predicted ones, on every platform (position,
case, tier, score, estimated completion). SQLite only: the property is about the read
side, which is SQLite on both stores.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import msgspec
import pytest
from arms_ledger.ledger.app.directory import create, open_ledger
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import instant
from arms_ledger.projections import engine, queries, whatif
from arms_ledger.projections.runner import LIVE, Cut
from hypothesis import HealthCheck, event, given, settings, target
from hypothesis import strategies as st

from tests import stores
from tests.integration.test_projection_properties import (
    TIERS,
    WEIGHTS,
    append_accepted,
    histories,
)

pytestmark = pytest.mark.slow  # about 7 s: each example replays, copies and rebuilds

# Valid proposals: the ids overlap those of the histories (a proposal may be one more
# version of a policy the log holds), both modes, the weights and tiers they use.
proposals = st.builds(
    lambda policy, mode, weights, tiers, pct: ev.PriorityPolicyAdopted(
        actor="whatif",
        rationale="a what-if proposal, not adopted",
        policy=policy,
        mode=mode,
        weights=msgspec.convert(weights, ev.Weights),
        tiers=msgspec.convert(tiers, ev.Tiers),
        targets=ev.Targets(pct_gdp=pct),
    ),
    st.sampled_from(("whatif", "af-2026", "alt")),
    st.sampled_from(("fcfs", "scored", "scored")),
    st.sampled_from(WEIGHTS),
    st.sampled_from(TIERS),
    st.sampled_from((2.0, 3.5, 5.0)),
)


def _queues(conn) -> list[tuple]:
    """(platform, position, case, tier, score, est. completion) of every queued case."""
    platforms = [
        r["platform"] for r in queries.rows(conn, "SELECT platform FROM platforms")
    ]
    return sorted(
        (p, r["position"], r["case"], r["tier"], r["score"], r["est_completion_months"])
        for p in platforms
        for r in queries.queue(conn, p)
    )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), proposals, st.sampled_from((None, 0.0, 0.3, 0.6, 0.9, None)))
def test_adopting_the_proposal_yields_the_queues_whatif_predicted(history, proposal, when):
    """The proposal appended for real (``effective_at`` as ``compare`` applied it: the
    cut's as-of time, else the log's last effective time) to a copy of the ledger gives
    the predicted queues: those of the copy's read models, replayed as of that time for
    an as-of cut (``when``: a point along the log's effective times, None for now)."""
    with tempfile.TemporaryDirectory() as folder, stores.using("sqlite"):
        tmp = Path(folder)
        ledger = create(tmp / "ledger")
        try:
            append_accepted(ledger, history)
            cut = LIVE
            if when is not None:
                times = sorted(
                    instant(e.effective_at)
                    for page in ledger.reader.pages(0, ledger.head())
                    for _, _, _, e in page
                )
                cut = Cut(as_of=times[int(when * (len(times) - 1))])
            event(f"cut: {'as of' if when is not None else 'now'}")
            found = whatif.compare(ledger.reader, cut, lambda _current: proposal)
        finally:
            ledger.close()
        predicted = sorted(
            (
                r["platform"],
                r["position_after"],
                r["case"],
                r["tier_after"],
                r["score_after"],
                r["est_completion_after"],
            )
            for r in found.cases
        )
        event(f"queued cases: {min(len(predicted) // 4 * 4, 12)}+")
        moved = sum(r["moved"] != 0 for r in found.cases)
        changed = sum(
            (r["tier_before"], r["score_before"], r["est_completion_before"])
            != (r["tier_after"], r["score_after"], r["est_completion_after"])
            for r in found.cases
        )
        event(f"some case moved: {moved > 0}")
        event(f"some tier, score or completion changed: {changed > 0}")
        target(float(moved), label="cases moved")  # steer towards proposals that move
        shutil.copytree(tmp / "ledger", tmp / "copy")
        copy = open_ledger(tmp / "copy")
        try:
            adopted = msgspec.structs.replace(found.proposed[0], recorded_at=None)
            copy.append([adopted])
            conn = engine.connect(tmp / "adopted.db")
            try:
                engine.replay(copy.reader, conn, cut)
                assert _queues(conn) == predicted
            finally:
                conn.close()
        finally:
            copy.close()
