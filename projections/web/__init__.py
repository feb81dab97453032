"""The read-only web view of the read models: Datasette over ``projections.db`` (or a
replay of it) with this project's metadata, canned queries and charts.

``datasette(path, ...)`` makes the Datasette instance; ``arms-ledger serve`` runs it
with uvicorn. The pieces: ``metadata`` (descriptions generated from
``projections.schema``, sort orders, facets, the home page), ``canned`` (the canned
queries), ``chartdata`` (the charts' rows and series), ``charts`` (Altair specs, SVG by
vl-convert), ``pages`` (the chart pages), ``whatif`` (the what-if page), ``plugin``
(the Datasette hooks: routes, the menu, the banner) and ``templates/``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from arms_ledger.projections.web import metadata, plugin, whatif
from datasette.app import Datasette
from datasette.plugins import pm

TEMPLATES = Path(__file__).resolve().parent / "templates"


def datasette(
    path: Path,
    *,
    caption: str,
    immutable: bool,
    allow_sql: bool = False,
    log: whatif.Source | None = None,
    hosts: frozenset[str] | None = None,
) -> Datasette:
    """A read-only Datasette over the read models at ``path``.

    ``immutable``: the file never changes while served (a replay); otherwise it is
    opened read-only and every request sees what the last catch-up wrote.
    ``allow_sql``: arbitrary (read-only) SQL; off, only tables, canned queries and charts.
    ``log``: the log these read models come from, for the what-if page (none: no page).
    ``hosts``: the names a request's ``Host`` may give (None: any); a server bound to
    the loopback answers only to loopback names, so that a page elsewhere cannot reach
    it by rebinding its own name to 127.0.0.1 (DNS rebinding).
    """
    if not pm.is_registered(plugin):
        pm.register(plugin, name=metadata.PLUGIN)
    # immutable=1 as Datasette opens an immutable file: a WAL-mode file in a directory
    # it cannot write (a read-only copy) cannot be opened for reading otherwise.
    mode = "mode=ro&immutable=1" if immutable else "mode=ro"
    conn = sqlite3.connect(f"file:{path}?{mode}", uri=True)
    try:
        found = metadata.metadata(
            conn, caption=caption, allow_sql=allow_sql, whatif=log is not None
        )
    finally:
        conn.close()
    ds = Datasette(
        files=[] if immutable else [str(path)],
        immutables=[str(path)] if immutable else [],
        metadata=found,
        template_dir=str(TEMPLATES),
        settings={"default_allow_sql": allow_sql},
    )
    if log is not None:
        whatif.SOURCES[ds] = log
    if hosts is not None:
        plugin.HOSTS[ds] = hosts
    return ds
