"""``arms-ledger correct``: append a correction (``EventCorrected``) of the event at a log
position without writing its JSON (docs/domain.md, "Corrections")."""

from __future__ import annotations

import click
import msgspec
from arms_ledger.cli.env import Env, pass_env
from arms_ledger.cli.verbs import ENVELOPE_OPTIONS, _append_one
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain import intake
from arms_ledger.ledger.errors import Invalid, LedgerError


def _assignment(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]):
    found: dict[str, int] = {}
    for value in values:
        field, sep, number = value.partition("=")
        try:
            found[field.strip()] = int(number.replace(",", "").replace("_", ""))
        except ValueError:
            sep = ""
        if not sep or not field.strip():
            raise click.BadParameter(
                f"{value!r} is not FIELD=NUMBER; e.g. --set quantity=3 or "
                "--set value_usd=8000000",
                param_hint="--set",
            )
    return found


@click.command()
@click.argument("position", type=click.IntRange(min=1))
@click.option(
    "--set",
    "values",
    multiple=True,
    metavar="FIELD=VALUE",
    callback=_assignment,
    help="A corrected value, e.g. quantity=3 (repeatable).",
)
@click.option(
    "--retract", is_flag=True, help="Withdraw the event as never having happened."
)
@pass_env
def correct(env: Env, position: int, values: dict[str, int], retract: bool, **envelope):
    """Correct the event at log POSITION: new values for its fields, or its retraction.
    A decision: --rationale is required.

    Appends one EventCorrected to the case of the corrected event; the original stays in
    the log. What may be corrected, and what is refused: docs/domain.md, Corrections.

    \b
    Example:
      arms-ledger correct 209 --set value_usd=2000000000 --actor dsca.cwd \\
        --rationale "the LOA's value was mistyped"
    """
    target = env.writer.reader.at([position]).get(position)
    if target is None:
        raise LedgerError(
            f"there is no event at log position {position}; `arms-ledger log` shows "
            "the positions"
        )
    if not isinstance(target, ev.CaseEvent):
        raise LedgerError(
            f"the event at log position {position} is {type(target).__name__} of "
            f"{target.stream}: only a case's events are corrected (a partner's, "
            "platform's or policy's fact is replaced by recording a later one)"
        )
    data = {
        "type": "EventCorrected",
        "case": target.case,
        "corrects": position,
        **({"retracted": True} if retract else {}),
        **({"corrected": values} if values else {}),
        **{k: v for k, v in envelope.items() if v is not None},
    }
    try:
        event = intake.decode_event(msgspec.json.encode(data))
    except Invalid as error:
        raise LedgerError(f"EventCorrected: {error}") from None
    _append_one(env, event)


correct.params += [o for o in ENVELOPE_OPTIONS if o.name not in ("effective_at",)]

COMMANDS = (correct,)
