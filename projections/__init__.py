"""The read side: read models rebuilt from the log alone.

    log (ledger.application.Ledger.read) -> projector.Projector.apply (in memory:
    partners, platforms, cases, queues) -> Projector.flush (rows + position, one
    transaction, schema.py tables) -> queries.py -> cli/read.py

``engine`` keeps the live read models caught up and builds replays (--as-of, --known-at,
--at-position) into temporary files. The write side (``ledger/``) does not import this.
"""
