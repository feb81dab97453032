"""docs/environment.md lists every environment variable the code reads: the source is
read (its syntax tree) for ``os.environ.get(X)``, ``os.environ[X]``, ``os.getenv(X)`` and
click's ``envvar=X``, with X a string or a module's string constant; a read whose
variable cannot be told fails too. And the ledger reads no other variable through its
event-sourcing library."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "environment.md"
SOURCES = ("cli", "ledger", "projections", "bench", "tests", "fixtures")


def _constants(tree: ast.Module) -> dict[str, str]:
    """The module's NAME = "string" assignments."""
    found = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value.value
    return found


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def reads(path: Path) -> list[tuple[int, ast.AST]]:
    """The expressions naming a variable the module reads, with their lines."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, ast.AST]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            environ_get = isinstance(f, ast.Attribute) and (
                (f.attr in ("get", "pop", "setdefault") and _is_environ(f.value))
                or f.attr == "getenv"
            )
            if environ_get and node.args:
                found.append((node.lineno, node.args[0]))
            found += [(node.lineno, k.value) for k in node.keywords if k.arg == "envvar"]
        elif (
            isinstance(node, ast.Subscript)
            and _is_environ(node.value)
            and isinstance(node.ctx, ast.Load)
        ):
            found.append((node.lineno, node.slice))
    return found


def variables_read() -> dict[str, list[str]]:
    """Each variable read, with where."""
    found: dict[str, list[str]] = {}
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            constants = _constants(tree)
            for line, expr in reads(path):
                where = f"{path.relative_to(ROOT)}:{line}"
                if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
                    name = expr.value
                elif isinstance(expr, ast.Name) and expr.id in constants:
                    name = constants[expr.id]
                elif isinstance(expr, ast.Constant) and expr.value is None:
                    continue  # envvar=None: no variable
                else:
                    raise AssertionError(
                        f"{where}: which environment variable is read here? Name it with "
                        "a string or a module constant, and list it in docs/environment.md"
                    )
                found.setdefault(name, []).append(where)
    return found


def listed() -> set[str]:
    """The variables of the page's tables (their first column)."""
    return set(re.findall(r"^\| `([A-Z_][A-Z0-9_]*)` \|", PAGE.read_text(), re.M))


def test_the_scan_finds_the_variables_it_should():
    found = variables_read()
    for name in (
        "ARMS_LEDGER",
        "ARMS_LEDGER_STORE",
        "ARMS_LEDGER_ALLOW_CLOCK",
        "XDG_DATA_HOME",
    ):
        assert name in found, name  # envvar=, os.environ.get, a constant, a getter


def test_every_variable_the_code_reads_is_documented():
    missing = {k: v for k, v in variables_read().items() if k not in listed()}
    assert not missing, f"not in docs/environment.md: {missing}"


def test_every_arms_ledger_variable_documented_is_read():
    found = variables_read()
    stale = {v for v in listed() if v.startswith("ARMS_LEDGER_") and v not in found}
    assert not stale, f"docs/environment.md lists variables nothing reads: {stale}"


def test_an_unknown_read_fails_the_scan(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\nNAME = 'A_B'\nos.environ.get(NAME)\nos.getenv(f'X{1}')\n")
    found = reads(module)
    assert len(found) == 2
    assert isinstance(found[1][1], ast.JoinedStr)


def test_the_library_reads_no_variable_of_its_own(tmp_path, monkeypatch):
    """Variables the event-sourcing library would read (another store, another mapper)
    are ignored: the ledger opens the store ledger.json names."""
    from arms_ledger.ledger.app.directory import create, open_ledger

    from tests.histories import EVERY_TYPE
    from tests.stores import using

    with using("sqlite"):
        ledger = create(tmp_path / "ledger")
        ledger.close()
    monkeypatch.setenv("PERSISTENCE_MODULE", "eventsourcing.popo")
    monkeypatch.setenv("LEDGER_PERSISTENCE_MODULE", "eventsourcing.popo")
    monkeypatch.setenv("LEDGER_SQLITE_DBNAME", str(tmp_path / "elsewhere.db"))
    import msgspec
    from arms_ledger.ledger.domain import events as ev

    ledger = open_ledger(tmp_path / "ledger")
    try:
        first = msgspec.convert(EVERY_TYPE[0], ev.LedgerEvent)
        assert ledger.append([first]).positions == [1]
    finally:
        ledger.close()
    assert not (tmp_path / "elsewhere.db").exists()
    ledger = open_ledger(tmp_path / "ledger", write=False)
    try:
        assert ledger.head() == 1
    finally:
        ledger.close()
