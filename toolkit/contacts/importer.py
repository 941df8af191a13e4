"""Importing contacts (and their consent decisions) from CSV or JSONL files.

Re-importing a file changes nothing; a suppressed identity is skipped, never re-added or
updated; a bad row is reported with its line number and the rest are kept.

A batch of rows is imported set-based (contacts/bulk.py, consent/bulk.py: a staging table,
COPY on PostgreSQL); `import_row` is the same import for one row, which a batch falls back
to when the database refuses one of its rows.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from toolkit.audit import service as audit
from toolkit.consent import bulk as consent_bulk
from toolkit.consent import service as consent
from toolkit.contacts import bulk as contacts_bulk
from toolkit.contacts import service
from toolkit.contacts.bulk import CREATED, UNCHANGED, UPDATED
from toolkit.contacts.schemas import EXTERNAL_ID_PATTERN, LOCALE_MAX_LENGTH, LOCALE_PATTERN
from toolkit.kit import tabular
from toolkit.kit.clock import utcnow
from toolkit.kit.secrets import identity_hasher
from toolkit.kit.tabular import RowRejected, SourceFile, UnusableFile

BASE_COLUMNS = ("external_id", "display_name", "locale")
CONSENT_VALUES = {"granted": "grant", "withdrawn": "withdraw"}
MAX_DISPLAY_NAME = 200
# Rows per transaction: set-based, a batch costs about the same whatever its size, and a
# crash loses at most one (re-running resumes: the import is idempotent).
BATCH_ROWS = 10_000
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

    def count(self, line: int, result: RowResult) -> None:
        self.consent_changes += result.consent_changes
        if result.outcome == SUPPRESSED:
            self.skipped_suppressed.append(line)
        elif result.outcome == CREATED:
            self.created += 1
        elif result.outcome == UPDATED:
            self.updated += 1
        else:
            self.unchanged += 1

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

SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class RowResult:
    outcome: str  # CREATED, UPDATED, UNCHANGED (contacts.bulk) or SUPPRESSED
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


class SeenIdentities:
    """The identities a run has imported, so that a later line with the same id is a
    duplicate: the first 128 bits of their keyed hashes as two unsigned 64-bit halves (16
    bytes an identity, where a set of a million ids would hold some 100 MB), in a few runs
    sorted by the high half. A batch's keys are a new run; two runs of about the same size
    are merged, so n identities cost O(n log n) in all, not a merge of everything per batch."""

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []

    @staticmethod
    def _keys(external_hashes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        halves = np.frombuffer(b"".join(bytes.fromhex(h[:32]) for h in external_hashes), dtype=">u8")
        return halves[0::2].astype(np.uint64), halves[1::2].astype(np.uint64)

    @staticmethod
    def _sorted(high: np.ndarray, low: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(high)  # by the high half only: equal ones are scanned (below)
        return high[order], low[order]

    def contains(self, external_hashes: Sequence[str]) -> list[bool]:
        if not external_hashes:
            return []
        high, low = self._keys(external_hashes)
        # Searched in order: each search then starts where the last one ended.
        order = np.argsort(high)
        high, low = high[order], low[order]
        found = np.zeros(len(high), dtype=bool)
        for run_high, run_low in self._runs:
            first = np.searchsorted(run_high, high, side="left")
            last = np.searchsorted(run_high, high, side="right")
            at = np.minimum(first, len(run_high) - 1)
            found |= (first < last) & (run_low[at] == low)
            # Keys sharing their high half (about never: 64 random bits) are checked one by one.
            for i in np.flatnonzero(last - first > 1):
                found[i] |= bool((run_low[first[i]:last[i]] == low[i]).any())
        in_file_order = np.empty_like(found)
        in_file_order[order] = found
        return in_file_order.tolist()

    def add(self, external_hashes: Sequence[str]) -> None:
        if not external_hashes:
            return
        self._runs.append(self._sorted(*self._keys(external_hashes)))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (high, low), (older_high, older_low) = self._runs.pop(), self._runs.pop()
            self._runs.append(self._sorted(np.concatenate((older_high, high)), np.concatenate((older_low, low))))


@dataclass(frozen=True)
class KeptRow:
    line: int
    row: ContactRow
    external_hash: str


@dataclass(frozen=True)
class PreparedBatch:
    rows: list[KeptRow]  # parsed and hashed; not yet checked for suppression or duplicates
    rejected: list[tuple[int, str]]


@dataclass
class ImportRun:
    """One pass over a file, a batch at a time: what happened so far, and the identities it
    has already imported (a later row with the same id is skipped as a duplicate)."""

    purposes: set[str]
    actor: str
    file: str
    report: ImportReport = field(default_factory=ImportReport)
    seen: SeenIdentities = field(default_factory=SeenIdentities)
    # Every batch row by row, the way a refused batch is: what benchmarks compare against.
    row_by_row: bool = False

    def add(self, session: Session, line: int, row: dict[str, Any] | str) -> None:
        """Import one line from read_rows (a batch of one)."""
        self.add_batch(session, [(line, row)])

    def add_batch(self, session: Session, batch: Sequence[tabular.NumberedRow]) -> None:
        """Import lines from read_rows with a few set-based statements; a bad row is
        recorded as rejected, never raised."""
        self.add_prepared(session, self.prepare(batch, identity_hasher(session, service.DEFAULT_CHANNEL)))

    def prepare(self, batch: Sequence[tabular.NumberedRow], hash_of: Callable[[str], str]) -> PreparedBatch:
        """The part of a batch's import that needs no database: its rows checked and their
        identities hashed. Safe on another thread (it touches nothing of the run)."""
        rejected: list[tuple[int, str]] = []
        parsed: list[tuple[int, ContactRow]] = []
        for line, row in batch:
            tabular.import_line(rejected, line, row, lambda n, r: parsed.append((n, parse_row(r, self.purposes))))
        return PreparedBatch([KeptRow(line, row, hash_of(row.external_id)) for line, row in parsed], rejected)

    def add_prepared(self, session: Session, prepared: PreparedBatch) -> None:
        """Import a prepared batch (add_batch is prepare, then this)."""
        self.report.rejected.extend(prepared.rejected)
        kept = self._kept(session, prepared.rows)
        if self.row_by_row:
            self._counted(self._row_by_row(session, kept), kept)
            return
        try:
            with session.begin_nested():
                results = self._merge(session, kept)
        except (IntegrityError, DataError):
            # One row the database refuses (a follow that created the same identity a
            # moment ago, say) must not cost the batch: its savepoint is gone, so row by row.
            results = self._row_by_row(session, kept)
            self.report.rejected.sort()
        self._counted(results, kept)

    def _counted(self, results: dict[int, RowResult], kept: list[KeptRow]) -> None:
        for line, result in results.items():
            self.report.count(line, result)
        self.seen.add([k.external_hash for k in kept if k.line in results and results[k.line].outcome != SUPPRESSED])

    def _kept(self, session: Session, rows: list[KeptRow]) -> list[KeptRow]:
        """The rows to import: not suppressed, and each identity's first line in the file."""
        suppressed = consent.suppressed_hashes(session, (r.external_hash for r in rows))
        imported_before = self.seen.contains([r.external_hash for r in rows])
        kept: list[KeptRow] = []
        first_lines: set[str] = set()
        for row, duplicate in zip(rows, imported_before):
            if row.external_hash in suppressed:
                self.report.skipped_suppressed.append(row.line)
            elif duplicate or row.external_hash in first_lines:
                self.report.skipped_duplicate.append(row.line)
            else:
                first_lines.add(row.external_hash)
                kept.append(row)
        return kept

    def _merge(self, session: Session, kept: list[KeptRow]) -> dict[int, RowResult]:
        now = utcnow()
        merged = contacts_bulk.merge(session, [
            contacts_bulk.StagedContact(k.line, k.row.external_id, k.external_hash, k.row.display_name, k.row.locale)
            for k in kept
        ], channel=service.DEFAULT_CHANNEL, now=now)
        decisions = [
            consent_bulk.Decision(k.line, merged[k.line].contact_id, code, action, self._evidence(k.line))
            for k in kept for code, action in sorted(k.row.decisions.items())
        ]
        changes = consent_bulk.record_decisions(session, decisions, source="import", actor=self.actor,
                                                occurred_at=now)
        results = {}
        for k in kept:
            outcome = merged[k.line].outcome
            if outcome == UNCHANGED and changes[k.line]:
                outcome = UPDATED
            results[k.line] = RowResult(outcome, changes[k.line])
        return results

    def _row_by_row(self, session: Session, kept: list[KeptRow]) -> dict[int, RowResult]:
        results = {}
        for k in kept:
            try:
                results[k.line] = import_row(session, k.row, actor=self.actor, evidence=self._evidence(k.line))
            except (IntegrityError, DataError) as exc:  # the row's savepoint has been rolled back
                self.report.rejected.append((k.line, tabular.refusal(exc)))
        return results

    def _evidence(self, line: int) -> dict[str, Any]:
        return {"file": self.file, "line": line}

def record_summary(session: Session, *, report: ImportReport, file: str, actor: str) -> None:
    audit.record(session, actor=actor, action="contacts.import", target_type="file", target_id=file,
                 details=report.as_dict())
