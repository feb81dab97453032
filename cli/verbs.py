"""The write verbs (``case file``, ``partner assess``, …), so nobody writes JSON by hand
for the frequent decisions.

Each command appends one event; its options are generated from the event's Struct
(names, types, choices, defaults, descriptions), so the CLI cannot drift from the schema.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import click
import msgspec
import msgspec.inspect as mi
from arms_ledger.cli import complete
from arms_ledger.cli.env import Env, pass_env
from arms_ledger.cli.errors import refusal_message
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain import intake
from arms_ledger.ledger.errors import BatchRefused, LedgerError

# (group, command, event, help) — the order is the order of the help listing.
VERBS: list[tuple[str, str, type[ev.Event], str]] = [
    ("case", "file", ev.CaseFiled, "File a case: a letter of request for a platform."),
    (
        "case",
        "clear",
        ev.CaseReviewCleared,
        "Record that an office cleared the case's review.",
    ),
    (
        "case",
        "start-review",
        ev.CongressionalReviewStarted,
        "Start informal congressional review.",
    ),
    ("case", "hold", ev.HoldPlaced, "Record a hold placed by a committee office."),
    ("case", "lift-hold", ev.HoldLifted, "Record that a committee office lifted its hold."),
    (
        "case",
        "notify",
        ev.CongressionalNotified,
        "Record the formal notification to Congress.",
    ),
    (
        "case",
        "emergency",
        ev.EmergencyDeclared,
        "Declare an emergency (waives the review period).",
    ),
    ("case", "offer", ev.OfferIssued, "Issue the offer (LOA)."),
    ("case", "accept", ev.OfferAccepted, "Record the partner's acceptance of the offer."),
    ("case", "expire", ev.OfferExpired, "Record that the offer expired unaccepted."),
    ("case", "implement", ev.CaseImplemented, "Record that the case is implemented."),
    ("case", "deliver", ev.DeliveryRecorded, "Record a (partial) delivery."),
    ("case", "check", ev.EndUseCheckRecorded, "Record an end-use check."),
    ("case", "suspend", ev.CaseSuspended, "Suspend the case."),
    ("case", "resume", ev.CaseResumed, "Resume a suspended case."),
    ("case", "close", ev.CaseClosed, "Close a fully delivered case."),
    ("case", "cancel", ev.CaseCancelled, "Cancel the case."),
    ("case", "reprioritize", ev.CaseReprioritized, "Move the case to a priority class."),
    ("partner", "register", ev.PartnerRegistered, "Register a partner."),
    (
        "partner",
        "spending",
        ev.DefenseSpendingReported,
        "Record reported defense spending.",
    ),
    (
        "partner",
        "assess",
        ev.StrategicValueAssessed,
        "Assess the partner's strategic value.",
    ),
    (
        "partner",
        "contribution",
        ev.EconomicContributionRecorded,
        "Record an economic contribution.",
    ),
    ("partner", "group", ev.NotificationGroupChanged, "Change the notification group."),
    ("partner", "override", ev.PriorityOverrideGranted, "Grant a priority override."),
    (
        "partner",
        "revoke-override",
        ev.PriorityOverrideRevoked,
        "Revoke the priority override.",
    ),
    ("partner", "suspend", ev.PartnerSuspended, "Suspend the partner (no new cases)."),
    ("partner", "reinstate", ev.PartnerReinstated, "Reinstate a suspended partner."),
    ("platform", "add", ev.PlatformListed, "List a platform in the catalog."),
    (
        "platform",
        "capacity",
        ev.ProductionCapacitySet,
        "Set the production capacity in force.",
    ),
    (
        "platform",
        "catalog",
        ev.CatalogPriorityChanged,
        "Put the platform in or out of a priority catalog.",
    ),
    ("platform", "eeum", ev.EEUMDesignationChanged, "Designate or de-designate for EEUM."),
    ("platform", "withdraw", ev.PlatformWithdrawn, "Withdraw the platform (no new cases)."),
    (
        "policy",
        "adopt",
        ev.PriorityPolicyAdopted,
        "Adopt a priority policy (the latest is in force).",
    ),
    (
        "policy",
        "thresholds",
        ev.NotificationThresholdsSet,
        "Set the notification thresholds.",
    ),
]

GROUP_HELP = {
    "case": "Move a case through its stages: file, clear, notify, offer, deliver, close…",
    "partner": "Record partner facts and decisions: spending, strategic value, overrides…",
    "platform": "Maintain the catalog: platforms, capacity, priority catalog, EEUM.",
    "policy": "Adopt priority policies and notification thresholds.",
}


def _unwrap(t: mi.Type) -> tuple[mi.Type, str | None, bool]:
    """The underlying type, its description, and whether None is allowed."""
    description = None
    optional = False
    while True:
        if isinstance(t, mi.Metadata):
            description = (t.extra_json_schema or {}).get("description", description)
            t = t.type
        elif isinstance(t, mi.UnionType):
            rest = [x for x in t.types if not isinstance(x, mi.NoneType)]
            optional = len(rest) < len(t.types)
            t = rest[0]
        else:
            return t, description, optional


def _describe_constraints(t: mi.Type) -> str:
    bits = []
    for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        value = getattr(t, attr, None)
        if value is not None:
            bits.append(
                f"{sign} {value:g}" if isinstance(value, float) else f"{sign} {value}"
            )
    return f" ({', '.join(bits)})" if bits else ""


class Field(msgspec.Struct):
    path: tuple[str, ...]  # JSON keys from the event down to the value
    dest: str  # click parameter name
    option: str  # --option-name


def _options(
    info: mi.StructType, path: tuple[str, ...], names: tuple[str, ...]
) -> tuple[list[click.Option], list[Field]]:
    options: list[click.Option] = []
    fields: list[Field] = []
    for f in info.fields:
        t, _, optional = _unwrap(f.type)
        description = ev.field_meaning(info.cls, f.name)  # with its unit
        key_path = (*path, f.encode_name)
        name_path = names if f.name == "groups" else (*names, f.name)
        if isinstance(t, mi.StructType):
            sub_options, sub_fields = _options(
                t, key_path, name_path if f.name != "groups" else names
            )
            options += sub_options
            fields += sub_fields
            continue
        option = "--" + "-".join(name_path).replace("_", "-")
        dest = "f__" + "__".join(name_path)
        required = f.required and not optional
        help_text = (description or "") + _describe_constraints(t)
        if not required and f.default not in (msgspec.NODEFAULT, None):
            help_text += f" [default: {f.default}]"
        kwargs: dict[str, Any] = {"help": help_text.strip() or None, "required": required}
        if isinstance(t, mi.BoolType):
            decl = f"{option}/--no-{option[2:]}"
            kwargs["default"] = None
            options.append(click.Option([decl, dest], **kwargs))
        else:
            if isinstance(t, mi.LiteralType):
                kwargs["type"] = click.Choice([str(v) for v in t.values])
            elif isinstance(t, mi.IntType):
                kwargs["type"] = click.INT
            elif isinstance(t, mi.FloatType):
                kwargs["type"] = click.FLOAT
            elif isinstance(t, mi.VarTupleType):
                kwargs["multiple"] = True
                kwargs["help"] = (kwargs["help"] or "") + " (repeatable)"
            if option in ("--partner", "--platform", "--case"):  # an existing one
                kwargs["shell_complete"] = complete.completer(option[2:])
            options.append(click.Option([option, dest], **kwargs))
        fields.append(Field(key_path, dest, option))
    return options, fields


ENVELOPE_OPTIONS = [
    click.Option(
        ["--actor"],
        envvar="ARMS_LEDGER_ACTOR",
        required=True,
        help="Who acts, e.g. dsca.cwd.jsmith [env: ARMS_LEDGER_ACTOR].",
    ),
    click.Option(["--rationale"], help="Why (required for decisions)."),
    click.Option(["--reference"], help="Transmittal number, document id or address."),
    click.Option(
        ["--effective-at"],
        help="When it took effect (date or datetime, UTC) [default: now].",
    ),
    click.Option(["--idempotency-key"], help="Appending the same key twice appends once."),
]


def _payload(cls: type[ev.Event]) -> mi.StructType:
    """The event's Struct without the envelope and the stream id (given apart)."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return mi.StructType(
        cls=info.cls,
        fields=tuple(
            f
            for f in info.fields
            if f.name not in ev.ENVELOPE_FIELDS and f.name != cls.STREAM
        ),
        tag_field=info.tag_field,
        tag=info.tag,
        array_like=info.array_like,
        forbid_unknown_fields=info.forbid_unknown_fields,
    )


def _event(cls: type[ev.Event], fields: list[Field], values: dict[str, Any]) -> ev.Event:
    """The event the options describe; errors name the options, not JSON paths."""
    stream = cls.STREAM
    data: dict[str, Any] = {"type": cls.__name__, stream: values.pop("stream_id")}
    for key in ("actor", "rationale", "reference", "effective_at", "idempotency_key"):
        if values.get(key) is not None:
            data[key] = values[key]
    for f in fields:
        value = values.get(f.dest)
        if value is None or value == ():
            continue
        target = data
        for key in f.path[:-1]:
            target = target.setdefault(key, {})
        target[f.path[-1]] = list(value) if isinstance(value, tuple) else value
    try:
        return msgspec.convert(data, ev.LedgerEvent)
    except msgspec.ValidationError as error:
        by_path = {"$." + ".".join(f.path): f.option for f in fields}
        where = str(error).rpartition(" - at ")[2].strip("`")
        if intake.is_control_refusal(str(error)):
            option = by_path.get(where, "--" + where[2:].replace("_", "-"))
            raise LedgerError(f"{cls.__name__}: {intake.control_message(option)}") from None
        text = re.sub(
            r"`(\$\.[^`]+)`",
            lambda m: by_path.get(m.group(1), "the " + m.group(1)[2:]),
            str(error),
        )
        if text.startswith("Expected `str` matching regex") and text.endswith(
            f"the {stream}"
        ):
            text = f"{stream} id {data[stream]!r} is malformed: " + text
        raise LedgerError(f"{cls.__name__}: {text}") from None


def _append_one(env: Env, event: ev.Event) -> None:
    key = os.environ.get("ARMS_LEDGER_SIGN_KEY")
    if key and event.DECISION:  # signed as `append` signs (docs/authority.md)
        from arms_ledger.cli.write import sign_decisions

        event = sign_decisions([(0, event)], Path(key), env.now)[0][1]
    try:
        result = env.writer.append([event], clock=env.now)
    except BatchRefused as error:
        raise LedgerError(refusal_message(error)) from None
    if result.skipped:
        s = result.skipped[0]
        click.echo(
            f"Already appended: its idempotency key is version {s.version} of {s.stream}."
        )
    else:
        click.echo(
            f"Appended {type(event).__name__} to {event.stream} at position "
            f"{result.positions[0]}."
        )
    env.catch_up_after_append()


STARTS = (ev.CaseFiled, ev.PartnerRegistered, ev.PlatformListed)


def _command(name: str, cls: type[ev.Event], help_text: str) -> click.Command:
    options, fields = _options(_payload(cls), (), ())

    @pass_env
    def callback(env: Env, **values: Any) -> None:
        _append_one(env, _event(cls, fields, values))

    # The stream's existing ids, but for the events that start a stream.
    existing = cls.STREAM in ("case", "partner", "platform") and cls not in STARTS
    params: list[click.Parameter] = [
        click.Argument(
            ["stream_id"],
            metavar=cls.STREAM.upper(),
            shell_complete=complete.completer(cls.STREAM) if existing else None,
        ),
        *options,
        *ENVELOPE_OPTIONS,
    ]
    decision = " A decision: --rationale is required." if cls.DECISION else ""
    return click.Command(
        name,
        callback=callback,
        params=params,
        help=f"{help_text}{decision}\n\nAppends one {cls.__name__} event.",
        short_help=help_text,
    )


def _groups() -> list[click.Group]:
    groups: dict[str, click.Group] = {}
    for group_name, command_name, cls, help_text in VERBS:
        group = groups.setdefault(
            group_name, click.Group(group_name, help=GROUP_HELP[group_name])
        )
        group.add_command(_command(command_name, cls, help_text))
    return list(groups.values())


COMMANDS: tuple[click.Group, ...] = tuple(_groups())
