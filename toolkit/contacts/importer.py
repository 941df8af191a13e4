"""Importing contacts (and their consent decisions) from CSV or JSONL files.

Re-importing a file changes nothing; a suppressed identity is skipped, never re-added or
updated; a bad row is reported with its line number and the rest are kept.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from toolkit.audit import service as audit
from toolkit.consent import service as consent
from toolkit.contacts import service
from toolkit.contacts.schemas import EXTERNAL_ID_PATTERN, LOCALE_MAX_LENGTH, LOCALE_PATTERN
from toolkit.kit import tabular
from toolkit.kit.tabular import RowRejected, SourceFile, UnusableFile

BASE_COLUMNS = ("external_id", "display_name", "locale")
CONSENT_VALUES = {"granted": "grant", "withdrawn": "withdraw"}
MAX_DISPLAY_NAME = 200
# A withdrawal in a file is already satisfied by either refusal: an old spreadsheet must
# not turn an objection back into a mere withdrawal.
REFUSED = frozenset({consent.WITHDRAWN, consent.OBJECTED})
_external_id = re.compile(EXTERNAL_ID_PATTERN)
_locale = re.compile(LOCALE_PATTERN)


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    consent_changes: int = 0
    skipped_suppressed: list[int] = field(default_factory=list)
    skipped_duplicate: list[int] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return (self.created + self.updated + self.unchanged + len(self.skipped_suppressed)
                + len(self.skipped_duplicate) + len(self.rejected))

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
            "consent_changes": self.consent_changes, "skipped_suppressed": len(self.skipped_suppressed),
            "skipped_duplicate": len(self.skipped_duplicate), "rejected": len(self.rejected),
        }


@dataclass(frozen=True)
class ContactRow:
    """One parsed, valid row: `decisions` maps purpose code -> grant|withdraw."""

    external_id: str
    display_name: str | None = None
    locale: str | None = None
    decisions: dict[str, str] = field(default_factory=dict)


# --- reading the file -------------------------------------------------------------------

def inspect_file(path: Path, purposes: set[str]) -> SourceFile:
    """Check that the file can be imported at all: readable UTF-8, a known format, an
    external_id column and no consent column for a purpose we do not know."""
    source = tabular.inspect_file(path, required=("external_id",))
    unknown = [c for c in source.columns if c not in BASE_COLUMNS and c not in purposes]
    if unknown:
        raise UnusableFile(
            f"{path}: unknown column(s) {', '.join(repr(c) for c in unknown)}; consent columns must be "
            f"purpose codes ({', '.join(sorted(purposes))})"
        )
    return source


# --- checking one row -------------------------------------------------------------------

def _text(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RowRejected(f"{key} must be text, not {type(value).__name__}")
    return value.strip() or None


def _printable(value: str) -> bool:
    # Control characters (NUL above all: PostgreSQL refuses it) and lone surrogates
    # (not encodable) never belong in a name.
    return not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value)


def parse_row(row: dict[str, Any], purposes: set[str]) -> ContactRow:
    """Validate one row; raise RowRejected saying what is wrong with it."""
    external_id = _text(row, "external_id")
    if external_id is None:
        raise RowRejected("external_id is empty")
    if not _external_id.fullmatch(external_id):
        raise RowRejected(f"external_id {external_id[:40]!r} is not a valid id (1-128 visible ASCII characters)")
    display_name = _text(row, "display_name")
    if display_name is not None:
        if len(display_name) > MAX_DISPLAY_NAME:
            raise RowRejected(f"display_name is longer than {MAX_DISPLAY_NAME} characters")
        if not _printable(display_name):
            raise RowRejected("display_name contains control characters")
    locale = _text(row, "locale")
    if locale is not None and (len(locale) > LOCALE_MAX_LENGTH or not _locale.fullmatch(locale)):
        raise RowRejected(f"locale {locale[:40]!r} is not a language tag such as zh-TW")
    decisions = {}
    for code in sorted(purposes & row.keys()):
        value = _text(row, code)
        if value is None:
            continue
        if value.lower() not in CONSENT_VALUES:
            raise RowRejected(f"{code} must be granted or withdrawn, not {value[:40]!r}")
        decisions[code] = CONSENT_VALUES[value.lower()]
    return ContactRow(external_id, display_name, locale, decisions)


# --- importing --------------------------------------------------------------------------

CREATED, UPDATED, UNCHANGED, SUPPRESSED = "created", "updated", "unchanged", "suppressed"


@dataclass(frozen=True)
class RowResult:
    outcome: str  # CREATED, UPDATED, UNCHANGED or SUPPRESSED
    consent_changes: int = 0


def _already(state: str, action: str) -> bool:
    return state == consent.STATE_AFTER[action] or (action == "withdraw" and state in REFUSED)


def import_row(session: Session, row: ContactRow, *, actor: str, evidence: dict[str, Any]) -> RowResult:
    """Import one row inside a savepoint, so that a failure loses only this row."""
    with session.begin_nested():
        # Checked before the lookup: an existing contact who objected to all contact is
        # not updated either.
        if consent.is_suppressed(session, channel=service.DEFAULT_CHANNEL, external_id=row.external_id):
            return RowResult(SUPPRESSED)
        try:
            result = service.upsert_identity(
                session, external_id=row.external_id, display_name=row.display_name, locale=row.locale
            )
        except service.IdentitySuppressed:
            return RowResult(SUPPRESSED)
        current = consent.status(session, contact_id=result.contact.id) if row.decisions else {}
        changes = 0
        for code, action in sorted(row.decisions.items()):
            if _already(current[code]["state"], action):
                continue
            change = consent.record(session, contact_id=result.contact.id, purpose=code, action=action,
                                    source="import", actor=actor, evidence=evidence)
            changes += int(change.applied)
    if result.created:
        return RowResult(CREATED, changes)
    return RowResult(UPDATED if result.changed or changes else UNCHANGED, changes)


@dataclass
class ImportRun:
    """One pass over a file: what happened so far, and the ids it has already imported
    (a later row with the same id is skipped as a duplicate)."""

    purposes: set[str]
    actor: str
    file: str
    report: ImportReport = field(default_factory=ImportReport)
    seen: set[str] = field(default_factory=set)

    def add(self, session: Session, line: int, row: dict[str, Any] | str) -> None:
        """Import one line from read_rows; a bad row is recorded as rejected, never raised."""
        tabular.import_line(self.report.rejected, line, row, lambda n, r: self._add(session, n, r))

    def _add(self, session: Session, line: int, row: dict[str, Any]) -> None:
        parsed = parse_row(row, self.purposes)
        if parsed.external_id in self.seen:
            self.report.skipped_duplicate.append(line)
            return
        result = import_row(session, parsed, actor=self.actor, evidence={"file": self.file, "line": line})
        self._count(line, result)
        if result.outcome != SUPPRESSED:
            self.seen.add(parsed.external_id)

    def _count(self, line: int, result: RowResult) -> None:
        report = self.report
        report.consent_changes += result.consent_changes
        if result.outcome == SUPPRESSED:
            report.skipped_suppressed.append(line)
        elif result.outcome == CREATED:
            report.created += 1
        elif result.outcome == UPDATED:
            report.updated += 1
        else:
            report.unchanged += 1


def record_summary(session: Session, *, report: ImportReport, file: str, actor: str) -> None:
    audit.record(session, actor=actor, action="contacts.import", target_type="file", target_id=file,
                 details=report.as_dict())
