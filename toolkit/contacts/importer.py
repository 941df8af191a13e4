"""Importing contacts (and their consent decisions) from CSV or JSONL files.

Re-importing a file changes nothing; a suppressed identity is skipped, never re-added or
updated; a bad row is reported with its line number and the rest are kept.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from toolkit.audit import service as audit
from toolkit.consent import service as consent
from toolkit.contacts import service
from toolkit.contacts.schemas import EXTERNAL_ID_PATTERN, LOCALE_MAX_LENGTH, LOCALE_PATTERN
from toolkit.kit.errors import InvalidInput

BASE_COLUMNS = ("external_id", "display_name", "locale")
CONSENT_VALUES = {"granted": "grant", "withdrawn": "withdraw"}
MAX_DISPLAY_NAME = 200
# A withdrawal in a file is already satisfied by either refusal: an old spreadsheet must
# not turn an objection back into a mere withdrawal.
REFUSED = frozenset({consent.WITHDRAWN, consent.OBJECTED})
_external_id = re.compile(EXTERNAL_ID_PATTERN)
_locale = re.compile(LOCALE_PATTERN)

# What read_rows yields for each line: the row, or why the line is not a row.
NumberedRow = tuple[int, dict[str, Any] | str]


class UnusableFile(InvalidInput):
    code = "unusable_file"


class RowRejected(InvalidInput):
    code = "row_rejected"


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
class SourceFile:
    path: Path
    kind: str  # "csv" or "jsonl"
    columns: tuple[str, ...]
    lines: int


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
    if not path.exists():
        raise UnusableFile(f"{path}: no such file")
    if not path.is_file():
        raise UnusableFile(f"{path}: not a regular file")
    kind = _kind(path)
    try:
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        lines, last = 0, b"\n"
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                decoder.decode(block)
                lines += block.count(b"\n")
                last = block[-1:]
            decoder.decode(b"", final=True)
        columns = _columns(path, kind)
    except OSError as exc:
        raise UnusableFile(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise UnusableFile(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except csv.Error as exc:
        raise UnusableFile(f"{path}: the header is not CSV ({exc})") from exc
    if "external_id" not in columns:
        raise UnusableFile(f"{path}: no external_id column (found: {', '.join(columns) or 'nothing'})")
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise UnusableFile(f"{path}: column(s) listed twice: {', '.join(duplicates)}")
    unknown = [c for c in columns if c not in BASE_COLUMNS and c not in purposes]
    if unknown:
        raise UnusableFile(
            f"{path}: unknown column(s) {', '.join(repr(c) for c in unknown)}; consent columns must be "
            f"purpose codes ({', '.join(sorted(purposes))})"
        )
    return SourceFile(path, kind, tuple(columns), max(lines + (last != b"\n"), 1))


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".txt", ""):
        return "csv"
    raise UnusableFile(f"{path}: unknown format {suffix!r}; use .csv or .jsonl")


def _json_line(text: str) -> Any:
    """json.loads, with every way it can fail turned into ValueError."""
    try:
        return json.loads(text)
    except RecursionError as exc:  # absurdly deep nesting
        raise ValueError("nested too deeply") from exc


def _columns(path: Path, kind: str) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if kind == "csv":
            header = next(csv.reader(handle), None)
            return [c.strip() for c in header or []]
        keys: list[str] = []
        for line in handle:
            if line.strip():
                try:
                    record = _json_line(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    keys.extend(k for k in record if k not in keys)
        return keys


def read_rows(source: SourceFile) -> Iterator[NumberedRow]:
    """Yield (line number, row) — or (line number, reason) for a line that is not a row.
    A CSV row that spans lines (a quoted newline) is numbered by its first line."""
    with source.path.open(encoding="utf-8-sig", newline="") as handle:
        if source.kind == "csv":
            yield from _csv_rows(handle)
            return
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = _json_line(text)
            except ValueError as exc:
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                yield line, f"not valid JSON ({reason})"
                continue
            yield line, record if isinstance(record, dict) else "expected a JSON object"


def _csv_rows(handle: TextIO) -> Iterator[NumberedRow]:
    reader = csv.reader(handle)
    header = [c.strip() for c in next(reader, [])]
    while True:
        line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit(); the reader moves on
            yield line, f"not a CSV row ({exc})"
            continue
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            yield line, f"expected {len(header)} fields, found {len(values)}"
            continue
        yield line, dict(zip(header, values))


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
        try:
            self._add(session, line, row)
        except RowRejected as exc:
            self.report.rejected.append((line, exc.message))
        except (IntegrityError, DataError) as exc:  # the savepoint has been rolled back
            detail = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
            self.report.rejected.append((line, f"the database refused the row ({detail})"))

    def _add(self, session: Session, line: int, row: dict[str, Any] | str) -> None:
        if isinstance(row, str):
            raise RowRejected(row)
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
