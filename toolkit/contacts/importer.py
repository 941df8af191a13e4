"""Importing contacts (and their consent decisions) from CSV or JSONL files.

Re-importing a file changes nothing; a suppressed identity is skipped, never re-added;
a bad row is reported with its line number and the rest are kept.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from toolkit.audit import service as audit
from toolkit.consent import service as consent
from toolkit.contacts import service
from toolkit.contacts.schemas import EXTERNAL_ID_PATTERN, LOCALE_PATTERN
from toolkit.kit.errors import InvalidInput

BASE_COLUMNS = ("external_id", "display_name", "locale")
CONSENT_VALUES = {"granted": "grant", "withdrawn": "withdraw"}
_external_id = re.compile(EXTERNAL_ID_PATTERN)
_locale = re.compile(LOCALE_PATTERN)


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


def inspect_file(path: Path, purposes: set[str]) -> SourceFile:
    """Check that the file can be imported at all: readable UTF-8, a known format, an
    external_id column and no consent column for a purpose we do not know."""
    if not path.is_file():
        raise UnusableFile(f"{path}: no such file")
    try:
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        lines = 0
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                decoder.decode(block)
                lines += block.count(b"\n")
            decoder.decode(b"", final=True)
    except OSError as exc:
        raise UnusableFile(f"{path}: cannot read ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise UnusableFile(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    kind = _kind(path)
    columns = _columns(path, kind)
    if "external_id" not in columns:
        raise UnusableFile(f"{path}: no external_id column (found: {', '.join(columns) or 'nothing'})")
    unknown = [c for c in columns if c not in BASE_COLUMNS and c not in purposes]
    if unknown:
        raise UnusableFile(
            f"{path}: unknown column(s) {', '.join(unknown)}; consent columns must be purpose codes "
            f"({', '.join(sorted(purposes))})"
        )
    return SourceFile(path, kind, tuple(columns), max(lines, 1))


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".txt", ""):
        return "csv"
    raise UnusableFile(f"{path}: unknown format {suffix!r}; use .csv or .jsonl")


def _columns(path: Path, kind: str) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if kind == "csv":
            header = next(csv.reader(handle), None)
            return [c.strip() for c in header or []]
        keys: list[str] = []
        for line in handle:
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    keys.extend(k for k in record if k not in keys)
        return keys


def read_rows(source: SourceFile) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Yield (line number, row) — or (line number, reason) for a line that is not a row."""
    with source.path.open(encoding="utf-8-sig", newline="") as handle:
        if source.kind == "csv":
            reader = csv.reader(handle)
            header = [c.strip() for c in next(reader, [])]
            for values in reader:
                line = reader.line_num
                if not any(v.strip() for v in values):
                    continue
                if len(values) != len(header):
                    yield line, f"expected {len(header)} fields, found {len(values)}"
                    continue
                yield line, dict(zip(header, values))
            return
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                yield line, f"not valid JSON ({exc.msg})"
                continue
            yield line, record if isinstance(record, dict) else "expected a JSON object"


def _text(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RowRejected(f"{key} must be text, not {type(value).__name__}")
    return value.strip() or None


def parse_row(row: dict[str, Any], purposes: set[str]) -> tuple[str, str | None, str | None, dict[str, str]]:
    external_id = _text(row, "external_id")
    if external_id is None:
        raise RowRejected("external_id is empty")
    if not _external_id.match(external_id):
        raise RowRejected(f"external_id {external_id[:40]!r} is not a valid id (1-128 visible ASCII characters)")
    display_name = _text(row, "display_name")
    if display_name and len(display_name) > 200:
        raise RowRejected("display_name is longer than 200 characters")
    locale = _text(row, "locale")
    if locale and not _locale.match(locale):
        raise RowRejected(f"locale {locale!r} is not a language tag such as zh-TW")
    decisions = {}
    for code in purposes & row.keys():
        value = _text(row, code)
        if value is None:
            continue
        if value.lower() not in CONSENT_VALUES:
            raise RowRejected(f"{code} must be granted or withdrawn, not {value!r}")
        decisions[code] = CONSENT_VALUES[value.lower()]
    return external_id, display_name, locale, decisions


def import_row(
    session: Session,
    report: ImportReport,
    line: int,
    row: dict[str, Any],
    *,
    purposes: set[str],
    actor: str,
    file: str,
) -> None:
    """Import one row inside a savepoint, so that a failure loses only this row."""
    external_id, display_name, locale, decisions = parse_row(row, purposes)
    with session.begin_nested():
        try:
            result = service.upsert_identity(session, external_id=external_id, display_name=display_name, locale=locale)
        except service.IdentitySuppressed:
            report.skipped_suppressed.append(line)
            return
        current = consent.status(session, contact_id=result.contact.id) if decisions else {}
        changes = 0
        for code, action in sorted(decisions.items()):
            if current[code]["state"] == consent.STATE_AFTER[action]:
                continue
            change = consent.record(session, contact_id=result.contact.id, purpose=code, action=action,
                                    source="import", actor=actor, evidence={"file": file, "line": line})
            changes += int(change.applied)
    report.consent_changes += changes
    if result.created:
        report.created += 1
    elif result.changed or changes:
        report.updated += 1
    else:
        report.unchanged += 1


def record_summary(session: Session, *, report: ImportReport, file: str, actor: str) -> None:
    audit.record(session, actor=actor, action="contacts.import", target_type="file", target_id=file,
                 details=report.as_dict())
