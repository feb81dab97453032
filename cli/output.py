"""Output formats shared by every read command: a table by default, --json, --nl, --csv.

A table fits the terminal: on a terminal (or with $COLUMNS set), its widest columns are
cut (…) so that each line fits the width; piped to a file or a program, it is not fitted
and each cell is cut at 60 characters. --wide shows every cell whole (--csv and --json
never cut anything).

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
import os
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click
from arms_ledger.ledger.domain.intake import escape

FORMATS = ("table", "json", "nl", "csv")


_WIDE = "arms_ledger.wide"


def _remember_wide(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_WIDE] = True


def wide_option(fn: Callable) -> Callable:
    """Add --wide: tables show every cell whole (``table`` reads it from the context)."""
    return click.option(
        "--wide",
        is_flag=True,
        expose_value=False,
        callback=_remember_wide,
        help="Show every cell of the table whole, wider than the terminal if need be.",
    )(fn)


def terminal_width() -> int | None:
    """The width a table fits: $COLUMNS if set, else the terminal's when stdout is
    one; None (not fitted) when the output goes to a file or a program."""
    given = os.environ.get("COLUMNS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    try:
        if sys.stdout.isatty():  # a terminal of unknown size says 0: not fitted
            return os.get_terminal_size(sys.stdout.fileno()).columns or None
    except (OSError, ValueError, AttributeError):
        return None
    return None


def output_options(fn: Callable) -> Callable:
    """Add --json / --nl / --csv (the command receives ``fmt``) and --wide."""

    @wide_option
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
    *,
    wrap: bool = False,
) -> int:
    """Write rows in the chosen format; returns how many were written (``wrap``: see
    ``table``).

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
    click.echo(table(materialized, cols, wrap=wrap))
    return len(materialized)


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


# The narrowest a column is cut to when a table is fitted to the terminal.
MIN_COLUMN = 6


def _wide() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().meta.get(_WIDE)) or bool(
        ctx and ctx.meta.get(_WIDE)
    )


def fit(widths: Sequence[int], limit: int, fixed: Sequence[bool]) -> list[int]:
    """Column widths whose line (two spaces between columns) fits ``limit``: the widest
    columns not ``fixed`` (numbers) are cut to one width, the largest that fits, but
    not below ``MIN_COLUMN`` (a line may then still be longer than ``limit``)."""
    budget = (
        limit
        - 2 * (len(widths) - 1)
        - sum(w for w, f in zip(widths, fixed, strict=True) if f)
    )
    flexible = sorted(w for w, f in zip(widths, fixed, strict=True) if not f)
    if sum(flexible) <= budget:
        return list(widths)
    cap = budget
    for left, w in zip(range(len(flexible), 0, -1), flexible, strict=True):
        if w * left > budget:
            cap = budget // left
            break
        budget -= w
    cap = max(cap, MIN_COLUMN)
    return [w if f else min(w, cap) for w, f in zip(widths, fixed, strict=True)]


def table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    width: int = 60,
    *,
    wrap: bool = False,
) -> str:
    """A plain-text table, fitted to the terminal (``terminal_width``); not fitted,
    long cells are cut to ``width`` characters; with --wide, nothing is cut. ``wrap``:
    a long cell is wrapped onto more lines instead of cut (and never cut when the
    table is not fitted): for text meant to be read whole."""
    if not rows:
        return "(no rows)"
    wide = _wide()
    limit = None if wide else terminal_width()

    def clip(text: str, most: int | None) -> str:
        return text if most is None or len(text) <= most else text[: most - 1] + "…"

    cut = None if wide or limit is not None or wrap else width
    body = [[clip(cell(row.get(c)), cut) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(columns)]
    numeric = [
        all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in rows)
        and any(isinstance(row.get(c), (int, float)) for row in rows)
        for c in columns
    ]
    headers = list(columns)
    lines = [[r] for r in body]
    if limit is not None:
        widths = fit(widths, limit, numeric)
        headers = [clip(c, w) for c, w in zip(columns, widths, strict=True)]
        if wrap:
            lines = [_wrapped(r, widths) for r in body]
        else:
            lines = [[[clip(v, w) for v, w in zip(r, widths, strict=True)]] for r in body]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join(
        [
            line(headers),
            line(["-" * w for w in widths]),
            *(line(part) for row in lines for part in row),
        ]
    )


def _wrapped(values: Sequence[str], widths: Sequence[int]) -> list[list[str]]:
    """One row's cells wrapped to their columns' widths: the row's lines."""
    parts = [
        textwrap.wrap(v, w, break_on_hyphens=False) or [""]
        for v, w in zip(values, widths, strict=True)
    ]
    height = max(len(p) for p in parts)
    return [[p[i] if i < len(p) else "" for p in parts] for i in range(height)]
