"""Issue 19: any log the rules accept can be rebuilt, exported, verified offline and
served. Over the generated histories of ``test_projection_properties`` (every record
appended one at a time, those a rule refuses skipped): the read models rebuild, `audit
verify` passes and its newest checkpoint covers every event, `audit export` writes an
export that `audit verify-export` checks alone and turns into a replica whose read
models equal the ledger's, and the web view serves its pages over them."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from arms_ledger.cli.main import cli
from arms_ledger.ledger.app.directory import create
from arms_ledger.projections import engine, web
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

from tests import stores
from tests.integration.projection_tables import assert_same_read_models
from tests.integration.test_projection_properties import append_accepted, histories

pytestmark = pytest.mark.slow  # a few seconds per history: rebuilds, exports, serves


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_any_accepted_log_rebuilds_exports_verifies_and_serves(history):
    with tempfile.TemporaryDirectory() as folder, stores.using("sqlite"):
        tmp = Path(folder)
        ledger = create(tmp / "ledger")
        try:
            kept = append_accepted(ledger, history)
        finally:
            ledger.close()
        runner = CliRunner()

        def run(*args: str):
            result = runner.invoke(cli, ["--ledger", str(tmp / "ledger"), *args])
            assert result.exit_code == 0, (args, result.stderr)
            return result

        assert run("rebuild").exit_code == 0
        verified = run("audit", "verify").stdout.splitlines()
        assert verified[0].startswith(f"Verified {kept:,} events")
        assert verified[1] == "The newest checkpoint signed by the key covers every event."
        run("audit", "export", str(tmp / "export"))
        result = runner.invoke(
            cli,
            ["audit", "verify-export", str(tmp / "export"), "--into", str(tmp / "replica")],
        )
        assert result.exit_code == 0, result.stderr
        ours = engine.connect(tmp / "ledger" / engine.PROJECTIONS_DB)
        theirs = engine.connect(tmp / "replica" / engine.PROJECTIONS_DB)
        try:
            assert_same_read_models(ours, theirs)
        finally:
            ours.close()
            theirs.close()
        ds = web.datasette(
            tmp / "replica" / engine.PROJECTIONS_DB, caption="A replica", immutable=False
        )
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(ds.invoke_startup())
            for page in ("/", "/projections/partners", "/projections/queue", "/-/charts"):
                response = loop.run_until_complete(ds.client.get(page))
                assert response.status_code == 200, page
        finally:
            loop.close()
