"""Errors the ledger reports to its users: each says what was wrong and how to fix it."""

from __future__ import annotations

RULES = {
    "1": "references",
    "2": "order",
    "3": "congressional notification",
    "4": "offers and deliveries",
    "5": "decisions carry a rationale",
    "policy": "policy parameters",
    "idempotency": "idempotency",
}


class LedgerError(Exception):
    """Base of every error the ledger reports to a user."""


class Invalid(LedgerError):
    """The input is not a well-formed event."""


class Refused(LedgerError):
    """A well-formed event that a rule of the ledger refuses."""

    def __init__(self, rule: str, message: str):
        self.rule = rule
        self.message = message
        super().__init__(f"refused by {self.rule_name}: {message}")

    @property
    def rule_name(self) -> str:
        label = RULES[self.rule]
        return f"rule {self.rule} ({label})" if self.rule.isdigit() else label


class BatchRefused(LedgerError):
    """An event of a batch was invalid or refused; nothing of the batch was written."""

    def __init__(self, index: int, type_name: str | None, cause: LedgerError):
        self.index = index
        self.type_name = type_name
        self.cause = cause
        super().__init__(str(cause))


class Conflict(LedgerError):
    """Other writers kept changing the same streams; nothing was written."""


class NoLedger(LedgerError):
    pass
