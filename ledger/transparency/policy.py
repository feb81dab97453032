"""C2SP tlog-policy: which logs, which witnesses, and the quorum of cosignatures a
checkpoint needs.

Lines (whitespace: spaces and tabs; ``#`` starts a comment line)::

    log <vkey> [<url>]
    witness <name> <vkey> [<url>]
    group <name> all|any|<k> <name>...
    quorum <name>|none

A group or the quorum names only witnesses and groups defined on earlier lines; each
name is a member of a group at most once; exactly one quorum line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from arms_ledger.ledger.errors import LedgerError
from arms_ledger.ledger.transparency.cosignature import CosignerKey
from arms_ledger.ledger.transparency.note import NoteError, Verifier


class PolicyError(LedgerError):
    """A policy file that is malformed; the message names the line."""


class ShortOfQuorum(PolicyError):
    """A checkpoint whose cosignatures do not make the quorum."""


class Witness(NamedTuple):
    name: str
    key: CosignerKey
    url: str | None


class Group(NamedTuple):
    threshold: int
    members: tuple[str, ...]


_FIELDS = re.compile(r"[ \t]+")


class Policy:
    def __init__(self) -> None:
        self.logs: list[Verifier] = []
        self.witnesses: dict[str, Witness] = {}
        self.groups: dict[str, Group] = {}
        self.quorum: str | None = None

    @classmethod
    def parse(cls, text: str, source: str = "the policy") -> Policy:
        policy = cls()
        for number, raw in enumerate(text.split("\n"), start=1):
            if any(ord(c) < 0x20 and c != "\t" for c in raw) or "\x7f" in raw:
                raise PolicyError(f"{source} line {number}: a control character")
            fields = _FIELDS.split(raw.strip(" \t"))
            if fields == [""] or fields[0].startswith("#"):
                continue
            try:
                policy._line(fields)
            except (PolicyError, NoteError) as error:
                raise PolicyError(f"{source} line {number}: {error}") from None
        if policy.quorum is None:
            raise PolicyError(f"{source} has no quorum line (e.g. 'quorum none')")
        return policy

    @classmethod
    def read(cls, path: Path) -> Policy:
        try:
            text = path.read_text()
        except OSError as error:
            raise PolicyError(f"cannot read {path}: {error.strerror}") from None
        except UnicodeDecodeError:
            raise PolicyError(f"{path} is not UTF-8 text") from None
        return cls.parse(text, str(path))

    def _line(self, fields: list[str]) -> None:
        keyword, args = fields[0], fields[1:]
        if keyword == "log":
            if len(args) not in (1, 2):
                raise PolicyError("expected 'log <vkey> [<url>]'")
            log = Verifier.parse(args[0])
            if any(other.public == log.public for other in self.logs):
                raise PolicyError(f"the log key of {log.name} is listed twice")
            self.logs.append(log)
        elif keyword == "witness":
            if len(args) not in (2, 3):
                raise PolicyError("expected 'witness <name> <vkey> [<url>]'")
            name = self._new_name(args[0])
            key = CosignerKey.parse(args[1])
            if any(w.key.public == key.public for w in self.witnesses.values()):
                raise PolicyError(f"the key of witness {name} is listed twice")
            self.witnesses[name] = Witness(name, key, args[2] if len(args) == 3 else None)
        elif keyword == "group":
            if len(args) < 3:
                raise PolicyError("expected 'group <name> all|any|<k> <member>...'")
            name, rule, members = self._new_name(args[0]), args[1], tuple(args[2:])
            for member in members:
                self._defined(member)
            if len(set(members)) != len(members):
                raise PolicyError(f"group {name} lists a member twice")
            threshold = {"all": len(members), "any": 1}.get(rule)
            if threshold is None:
                if not re.fullmatch(r"[1-9][0-9]*", rule) or int(rule) > len(members):
                    raise PolicyError(
                        f"group {name}: the threshold {rule!r} must be all, any, or a "
                        f"number from 1 to {len(members)}"
                    )
                threshold = int(rule)
            self.groups[name] = Group(threshold, members)
        elif keyword == "quorum":
            if len(args) != 1:
                raise PolicyError("expected 'quorum <name>' or 'quorum none'")
            if self.quorum is not None:
                raise PolicyError("a second quorum line")
            if args[0] != "none":
                self._defined(args[0])
            self.quorum = args[0]
        else:
            raise PolicyError(
                f"unknown keyword {keyword!r} (log, witness, group or quorum)"
            )

    def _new_name(self, name: str) -> str:
        if name == "none" or name in self.witnesses or name in self.groups:
            raise PolicyError(f"the name {name!r} is already defined (or reserved)")
        return name

    def _defined(self, name: str) -> None:
        if name not in self.witnesses and name not in self.groups:
            raise PolicyError(f"{name!r} is not a witness or group defined above")

    # --- evaluation --------------------------------------------------------------------

    def met(self, cosigned: Iterable[str]) -> bool:
        """Whether witnesses named ``cosigned`` make the quorum."""
        signed = set(cosigned)
        return self.quorum == "none" or self._witnessed(str(self.quorum), signed)

    def _witnessed(self, name: str, signed: set[str]) -> bool:
        group = self.groups.get(name)
        if group is None:
            return name in signed
        return sum(self._witnessed(m, signed) for m in group.members) >= group.threshold

    def describe(self, name: str | None = None, nested: bool = False) -> str:
        """The quorum in words: ``2 of w1, w2, w3``; ``none``."""
        name = self.quorum if name is None else name
        group = self.groups.get(str(name))
        if group is None:
            return str(name)
        n = len(group.members)
        rule = "all" if group.threshold == n > 1 else str(group.threshold)
        inner = ", ".join(self.describe(m, True) for m in group.members)
        said = f"{rule} of {inner}"
        return f"({said})" if nested else said

    def cosigners(self, note: str) -> dict[str, int]:
        """The policy's witnesses whose cosignature on ``note`` verifies, with when;
        NoteError if a cosignature under a witness's key does not verify."""
        found = {}
        for witness in self.witnesses.values():
            timestamp = witness.key.timestamp(note)
            if timestamp is not None:
                found[witness.name] = timestamp
        return found

    def check(self, note: str, what: str) -> list[str]:
        """The witnesses that cosigned ``note``, in the policy's order, if they make the
        quorum; PolicyError naming them otherwise."""
        try:
            signed = list(self.cosigners(note))
        except NoteError as error:
            raise PolicyError(f"{what}: {error}") from None
        if not self.met(signed):
            by = (
                f"cosigned by {', '.join(signed)} only"
                if signed
                else "cosigned by none of them"
            )
            raise ShortOfQuorum(
                f"{what} is short of the witness quorum ({self.describe()}): {by}"
            )
        return signed


def witnessed_by(signed: list[str]) -> str:
    return "no witness" if not signed else ", ".join(signed)
