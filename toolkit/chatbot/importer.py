"""Importing FAQ entries from CSV, JSONL or the demo's YAML files.

Every row is matched by its `id` (the entry's key): a new id creates an entry, a known
one gets a new version only when its content changed, so re-importing a file changes
nothing. A bad row is reported with its line number and the rest are kept; a later row
with an id already seen in the same file is skipped as a duplicate.

Optional columns a row leaves out (a JSONL key that is absent or null) keep the entry's
current value, so re-importing the brand's spreadsheet does not wipe alternative
questions staff added since; an empty CSV cell or an empty JSON list does clear them.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from toolkit.audit import service as audit
from toolkit.chatbot import service
from toolkit.chatbot.models import FaqEntry
from toolkit.chatbot.schemas import LOCALE_PATTERN
from toolkit.kit import tabular
from toolkit.kit.tabular import NumberedRow, RowRejected, SourceFile, UnusableFile

REQUIRED_COLUMNS = ("id", "question", "answer")
OPTIONAL_COLUMNS = ("category", "alt_questions", "generated_questions", "locale", "active")
COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
YAML_SUFFIXES = (".yaml", ".yml")
TRUE = frozenset({"true", "1", "yes", "y", "是"})
FALSE = frozenset({"false", "0", "no", "n", "否"})
# Whitespace an answer may hold; any other control character is refused (PostgreSQL
# refuses NUL outright, and none of them belongs in a chat message).
ALLOWED_CONTROLS = frozenset("\n\r\t")
_locale = re.compile(LOCALE_PATTERN)


@dataclass(frozen=True)
class FaqRow:
    """One parsed, valid row. None: the row does not say (keep the entry's value, or
    the default for a new entry)."""

    key: str
    question: str
    answer: str
    category: str | None = None
    alt_questions: tuple[str, ...] | None = None
    generated_questions: tuple[str, ...] | None = None
    locale: str | None = None
    active: bool | None = None


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    # (line, id, line where the id was first seen)
    skipped_duplicate: list[tuple[int, str, int]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.created + self.updated + self.unchanged + len(self.skipped_duplicate) + len(self.rejected)

    def problems(self) -> list[tuple[int, str]]:
        """Every row not imported, as (line, what to tell the user), in file order."""
        found = [(line, f"skipped: duplicate id {key!r} (first on line {first})")
                 for line, key, first in self.skipped_duplicate]
        found += [(line, f"rejected: {reason}") for line, reason in self.rejected]
        return sorted(found, key=lambda problem: problem[0])

    def as_dict(self) -> dict[str, int]:
        return {
            "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
            "skipped_duplicate": len(self.skipped_duplicate), "rejected": len(self.rejected),
        }


# --- reading the file -------------------------------------------------------------------

def inspect_file(path: Path) -> SourceFile:
    """Check that the file can be imported at all: readable UTF-8 CSV or JSONL (or the
    demo's YAML) with id, question and answer columns and no column we do not know."""
    if path.suffix.lower() in YAML_SUFFIXES:
        return _inspect_yaml(path)
    source = tabular.inspect_file(path, required=REQUIRED_COLUMNS)
    unknown = [c for c in source.columns if c not in COLUMNS]
    if unknown:
        raise UnusableFile(
            f"{path}: unknown column(s) {', '.join(repr(c) for c in unknown)}; the columns are {', '.join(COLUMNS)}"
        )
    return source


def read_rows(source: SourceFile) -> Iterator[NumberedRow]:
    """(line number, row) or (line number, why the line is not a row), in file order."""
    if source.kind == "yaml":
        yield from _yaml_rows(source.path)
    else:
        yield from tabular.read_rows(source)


def _load_yaml_entries(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except OSError as exc:
        raise UnusableFile(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise UnusableFile(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except yaml.YAMLError as exc:
        raise UnusableFile(f"{path}: not YAML ({' '.join(str(exc).split())})") from exc
    except RecursionError as exc:  # absurdly deep nesting
        raise UnusableFile(f"{path}: not YAML (nested too deeply)") from exc


def _entry_nodes(path: Path) -> list[yaml.Node]:
    root = _load_yaml_entries(path)
    entries = None
    if isinstance(root, yaml.MappingNode):
        entries = next((v for k, v in root.value if k.value == "entries"), None)
    if not isinstance(entries, yaml.SequenceNode):
        raise UnusableFile(f"{path}: expected a mapping with an `entries:` list")
    return entries.value


def _inspect_yaml(path: Path) -> SourceFile:
    if not path.is_file():
        raise UnusableFile(f"{path}: no such file")
    nodes = _entry_nodes(path)
    lines = path.read_text(encoding="utf-8-sig").count("\n") + 1
    return SourceFile(path, "yaml", COLUMNS, lines if nodes else 1)


def _yaml_rows(path: Path) -> Iterator[NumberedRow]:
    """Each entry of `entries:` numbered by its first line. An entry's `en:` mapping (an
    English question and answer) becomes its own row, id `<id>-en`, locale en: the bot
    answers a message with one entry's text, so each language is an entry."""
    loader = yaml.SafeLoader("")
    for node in _entry_nodes(path):
        line = node.start_mark.line + 1
        try:
            row = loader.construct_document(node)
        except yaml.YAMLError as exc:
            yield line, f"not a valid entry ({' '.join(str(exc).split())})"
            continue
        if not isinstance(row, dict):
            yield line, "expected a mapping"
            continue
        english = row.pop("en", None)
        yield line, row
        if english is not None:
            en_line = next((v.start_mark.line + 1 for k, v in node.value if k.value == "en"), line)
            if not isinstance(english, dict):
                yield en_line, "en: expected a mapping with question and answer"
                continue
            yield en_line, {"id": f"{row.get('id')}-en", "category": row.get("category"), "locale": "en",
                            "active": row.get("active"), **english}


# --- checking one row -------------------------------------------------------------------

def _clean(value: str, name: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in ALLOWED_CONTROLS for ch in value):
        raise RowRejected(f"{name} contains control characters")
    return value


def _text(row: dict[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RowRejected(f"{name} must be text, not {type(value).__name__}")
    return _clean(value, name)


def _key(row: dict[str, Any]) -> str:
    value = row.get("id")
    if isinstance(value, int) and not isinstance(value, bool):  # a JSON number: its digits are the id
        value = str(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RowRejected("id is empty")
    if not isinstance(value, str):
        raise RowRejected(f"id must be text, not {type(value).__name__}")
    try:
        return service.check_key(value)
    except service.EntryInvalid as exc:
        raise RowRejected(exc.message) from exc


def _questions(row: dict[str, Any], name: str) -> tuple[str, ...] | None:
    """A JSON list of strings, or (in a CSV cell) that list as text or `a|b|c`."""
    value = row.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = tabular.json_line(text)
            except ValueError as exc:
                raise RowRejected(f"{name} is not a JSON list ({exc})") from exc
        else:
            value = text.split("|") if text else []
    if not isinstance(value, list) or not all(isinstance(q, str) for q in value):
        raise RowRejected(f"{name} must be a list of questions")
    return tuple(_clean(q, name) for q in value if q.strip())


def _active(row: dict[str, Any]) -> bool | None:
    value = row.get("active")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if not word:
            return None
        if word in TRUE or word in FALSE:
            return word in TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise RowRejected(f"active must be true or false, not {str(value)[:40]!r}")


def _locale_of(row: dict[str, Any]) -> str | None:
    value = _text(row, "locale")
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > 16 or not _locale.fullmatch(value):
        raise RowRejected(f"locale {value[:40]!r} is not a language tag such as zh-TW")
    return value


def parse_row(row: dict[str, Any]) -> FaqRow:
    """Validate the shape of one row; raise RowRejected saying what is wrong with it.
    (What an entry may hold is checked by service.checked_content.)"""
    key = _key(row)
    question = _text(row, "question")
    answer = _text(row, "answer")
    if not question or not question.strip():
        raise RowRejected("question is empty")
    if answer is None:
        # An empty answer is allowed (an entry waiting for its answer: the bot offers a
        # person); a row that does not say one at all is more likely a mistake.
        raise RowRejected("no answer (give an empty one for a question still waiting for its answer)")
    return FaqRow(
        key=key, question=question, answer=answer, category=_text(row, "category"),
        alt_questions=_questions(row, "alt_questions"), generated_questions=_questions(row, "generated_questions"),
        locale=_locale_of(row), active=_active(row),
    )


def content_of(row: FaqRow, current: service.EntryContent | None) -> service.EntryContent:
    """The entry's new content: what the row says, the rest as it is (or the defaults)."""
    keep = current or service.EntryContent(question="", answer="")

    def given(value: Any, old: Any) -> Any:
        return old if value is None else value

    try:
        return service.checked_content(
            question=row.question, answer=row.answer,
            category=given(row.category, keep.category),
            alt_questions=given(row.alt_questions, keep.alt_questions),
            generated_questions=given(row.generated_questions, keep.generated_questions),
            locale=given(row.locale, keep.locale), active=given(row.active, keep.active),
        )
    except service.EntryInvalid as exc:
        raise RowRejected(exc.message) from exc


# --- importing --------------------------------------------------------------------------

def import_row(session: Session, row: FaqRow, *, actor: str, note: str) -> str:
    """Save one row inside a savepoint, so that a failure loses only this row. Returns
    service.CREATED, UPDATED or UNCHANGED."""
    with session.begin_nested():
        entry = service.get_entry(session, row.key)
        content = content_of(row, service.content_of(entry) if entry is not None else None)
        # The run's one audit record (record_summary) stands for its rows.
        _, outcome = service.save_entry(session, key=row.key, content=content, actor=actor, note=note, audited=False)
    return outcome


@dataclass
class ImportRun:
    """One pass over a file: what happened so far, and where each id was first seen."""

    actor: str
    file: str
    report: ImportReport = field(default_factory=ImportReport)
    seen: dict[str, int] = field(default_factory=dict)

    def add(self, session: Session, line: int, row: dict[str, Any] | str) -> None:
        """Import one line from read_rows; a bad row is recorded as rejected, never raised."""
        tabular.import_line(self.report.rejected, line, row, lambda n, r: self._add(session, n, r))

    def _add(self, session: Session, line: int, row: dict[str, Any]) -> None:
        parsed = parse_row(row)
        if parsed.key in self.seen:
            self.report.skipped_duplicate.append((line, parsed.key, self.seen[parsed.key]))
            return
        outcome = import_row(session, parsed, actor=self.actor, note=f"imported from {self.file}:{line}")
        self.seen[parsed.key] = line
        if outcome == service.CREATED:
            self.report.created += 1
        elif outcome == service.UPDATED:
            self.report.updated += 1
        else:
            self.report.unchanged += 1


def record_summary(session: Session, *, report: ImportReport, file: str, actor: str) -> None:
    audit.record(session, actor=actor, action="faq.import", target_type="file", target_id=file,
                 details=report.as_dict())


def import_rows(session: Session, rows: Iterator[NumberedRow], *, actor: str, file: str) -> ImportReport:
    """Import every row in this session (one transaction; the CLI batches instead) and
    record the run's summary."""
    run = ImportRun(actor=actor, file=file)
    for line, row in rows:
        run.add(session, line, row)
    record_summary(session, report=run.report, file=file, actor=actor)
    return run.report


# --- exporting --------------------------------------------------------------------------

def export_row(entry: FaqEntry) -> dict[str, Any]:
    """An entry as an import row (JSONL): exporting then importing a bank round-trips."""
    return {
        "id": entry.key, "question": entry.question, "answer": entry.answer, "category": entry.category,
        "alt_questions": list(entry.alt_questions or ()), "generated_questions": list(entry.generated_questions or ()),
        "locale": entry.locale, "active": entry.active,
    }


def export_line(entry: FaqEntry) -> str:
    return json.dumps(export_row(entry), ensure_ascii=False)
