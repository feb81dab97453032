from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.app.directory import create

from tests import stores


@pytest.fixture(autouse=True)
def no_columns(monkeypatch) -> None:
    """Tables fit $COLUMNS when it is set (cli/output.py), and click's help too: the
    exact outputs tests expect are those of no terminal; a test that wants a width sets
    it."""
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture(params=stores.PARAMS)
def store(request) -> Iterator[str]:
    """Run the test once per event store (see tests/stores.py)."""
    with stores.using(request.param):
        yield request.param


@pytest.fixture
def ledger_dir(tmp_path: Path, store: str) -> Path:
    return tmp_path / "ledger"


@pytest.fixture
def ledger(ledger_dir: Path) -> Iterator[Ledger]:
    app = create(ledger_dir)
    yield app
    app.close()


def pytest_sessionfinish(session, exitstatus) -> None:
    stores.drop_schemas()


@pytest.fixture(scope="module", params=stores.PARAMS)
def module_store(request) -> str:
    """The store of a module's shared ledgers; a module that has them overrides ``store``
    with one taking this, so that its tests run once per store, beside the right ledger:

        @pytest.fixture(autouse=True)
        def store(module_store):
            with stores.using(module_store):
                yield module_store
    """
    return request.param
