"""The read side: read models rebuilt from the log alone.

    source.LogReader (the store's recorder) -> projector.Projector.apply (in memory:
    partners, platforms, cases, queues) -> Projector.flush (rows + position, one
    transaction, schema.py tables) -> queries.py -> cli/read.py

``engine`` keeps the live read models caught up (``runner``, ``rebuild``) and builds
replays (--as-of, --known-at, --at-position) into temporary files. The read side imports
only ``ledger.domain``, ``ledger.errors`` and its own ``source`` port; the write side
(``ledger/``) does not import this.
"""
