"""Issue 19, item 7: the web view as a hostile page or visitor would try it. A server
bound to the loopback answers only to loopback names (DNS rebinding), no page shows a
path on the serving machine, and `--allow-sql` refuses the functions that reach outside
the database (`fts3_tokenizer` hands out code pointers)."""

from __future__ import annotations

import asyncio

import pytest
from arms_ledger.cli.serve import LOOPBACK_NAMES
from arms_ledger.projections import engine, web
from arms_ledger.projections.web.plugin import host_name


@pytest.fixture
def served(demo_ledger):
    ds = web.datasette(
        demo_ledger / engine.PROJECTIONS_DB,
        caption="Live read models",
        immutable=False,
        allow_sql=True,
        hosts=LOOPBACK_NAMES | {"127.0.0.1"},
    )
    loop = asyncio.new_event_loop()
    loop.run_until_complete(ds.invoke_startup())

    def get(path: str, host: str = "localhost"):
        return loop.run_until_complete(ds.client.get(path, headers={"host": host}))

    yield get
    loop.close()


@pytest.mark.parametrize("host", ["localhost:8001", "127.0.0.1:8001", "[::1]:8001"])
def test_loopback_names_are_answered(served, host):
    assert served("/", host).status_code == 200


def test_another_host_is_refused(served):
    response = served("/-/charts", "rebound.example.com")
    assert response.status_code == 421
    assert response.text == (
        "This server answers only to 127.0.0.1, ::1, localhost, not to "
        "rebound.example.com (it is bound to the loopback: a page of another site "
        "cannot read it).\n"
    )


def test_host_names_without_their_port():
    assert host_name("LocalHost:8001") == "localhost"
    assert host_name("[::1]:8001") == "::1"
    assert host_name("127.0.0.1") == "127.0.0.1"


def test_no_page_shows_a_path_of_the_serving_machine(served, demo_ledger):
    for page in (
        "/-/databases.json",
        "/-/databases",
        "/",
        "/projections",
        "/-/metadata.json",
    ):
        response = served(page)
        assert response.status_code == 200, page
        assert str(demo_ledger) not in response.text, page
    assert served("/-/databases.json").json()[0]["name"] == "projections"


def test_allow_sql_refuses_functions_that_reach_outside(served):
    response = served("/projections.json?sql=select+fts3_tokenizer('simple')")
    assert response.json()["error"] == "not authorized to use function: fts3_tokenizer"
    response = served("/projections.json?sql=select+count(*)+as+n+from+partners")
    assert response.json()["error"] is None and response.json()["rows"][0][0] > 0
