"""A refused batch as the user reads it: one line naming where, the event type and why."""

from __future__ import annotations

from arms_ledger.ledger.errors import BatchRefused, Invalid


def refusal_message(error: BatchRefused, line: int | None = None, of: str = "") -> str:
    """``line 3 (CaseFiled): <what is malformed>`` or ``line 3 (CaseFiled) refused by
    rule 1 (references): …``; ``of`` names the input (``line 3 (…) of the export: …``);
    without a line (one event, as the typed verbs append), the type alone."""
    subject = error.type_name or "event"
    if line is not None:
        subject = f"line {line} ({subject})" + (f" of {of}" if of else "")
    sep = ": " if isinstance(error.cause, Invalid) else " "  # "… (T) refused by …"
    return f"{subject}{sep}{error.cause}"
