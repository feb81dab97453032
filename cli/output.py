"""Output formats shared by every read command: a table by default, --json, --nl, --csv.

Whatever a row holds, what is printed is safe to read: control and bidirectional
characters are shown escaped (\\uXXXX) in tables and CSV and as JSON escapes in JSON;
a CSV cell that a spreadsheet would take for a formula (=, +, -, @) is prefixed with '
(OWASP's CSV injection advice); bytes are shown as hex.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click
from arms_ledger.ledger.domain.intake import escape

FORMATS = ("table", "json", "nl", "csv")


def output_options(fn: Callable) -> Callable:
    """Add --json / --nl / --csv; the command receives ``fmt``."""

    @click.option("--json", "fmt", flag_value="json", help="A JSON array of objects.")
    @click.option("--nl", "fmt", flag_value="nl", help="Newline-delimited JSON objects.")
    @click.option("--csv", "fmt", flag_value="csv", help="CSV with a header row.")
    @click.option(
        "--table",
        "fmt",
        flag_value="table",
        default=True,
        help="A readable table (the default).",
    )
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


# Characters JSON may carry raw but a terminal would act on (C1 controls, bidirectional
# controls): written as JSON escapes.
_RAW = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _plain(value: Any) -> Any:
    return value.hex() if isinstance(value, (bytes, memoryview)) else value


def dumps(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_plain)
    return _RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return dumps(value)
    return escape(str(_plain(value)))


def csv_cell(value: Any) -> str:
    text = cell(value)
    if isinstance(value, str) and text.startswith(_FORMULA):
        return "'" + text
    return text


def write_rows(
    rows: Iterable[dict[str, Any]],
    fmt: str,
    columns: Sequence[str] | None = None,
) -> int:
    """Write rows in the chosen format; returns how many were written.

    JSON and NL stream row by row; the table needs all rows to size its columns.
    """
    count = 0
    if fmt == "json":
        click.echo("[", nl=False)
        for row in rows:
            click.echo((",\n " if count else "") + dumps(row), nl=False)
            count += 1
        click.echo("]")
        return count
    if fmt == "nl":
        for row in rows:
            click.echo(dumps(row))
            count += 1
        return count
    materialized = list(rows)
    cols = list(columns or _columns(materialized))
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(cols)
        for row in materialized:
            writer.writerow([csv_cell(row.get(c)) for c in cols])
        click.echo(buffer.getvalue(), nl=False)
        return len(materialized)
    click.echo(table(materialized, cols))
    return len(materialized)


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], width: int = 60) -> str:
    """A plain-text table; long cells are cut to ``width`` characters."""
    if not rows:
        return "(no rows)"

    def clip(text: str) -> str:
        return text if len(text) <= width else text[: width - 1] + "…"

    body = [[clip(cell(row.get(c))) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(columns)]
    numeric = [
        all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in rows)
        and any(isinstance(row.get(c), (int, float)) for row in rows)
        for c in columns
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join(
        [line(columns), line(["-" * w for w in widths]), *(line(r) for r in body)]
    )
