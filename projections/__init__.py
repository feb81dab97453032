"""The read side: projections rebuilt from the log (priority queues, audit trails).

Built in the next issue; the write side (``ledger/``) does not import it.
"""
