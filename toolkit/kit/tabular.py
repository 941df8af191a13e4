"""Reading an import file (CSV or JSONL) row by row, with line numbers.

Shared by every `toolkit <domain> import`: the file must be readable UTF-8 in a known
format; a line that is not a row is reported with its number, never fatal.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.exc import DataError, IntegrityError

from toolkit.kit.errors import InvalidInput

# What read_rows yields for each line: the row, or why the line is not a row.
NumberedRow = tuple[int, dict[str, Any] | str]


class UnusableFile(InvalidInput):
    code = "unusable_file"


class RowRejected(InvalidInput):
    code = "row_rejected"


@dataclass(frozen=True)
class SourceFile:
    path: Path
    kind: str  # "csv" or "jsonl"
    columns: tuple[str, ...]
    lines: int


def inspect_file(path: Path, *, required: Iterable[str] = ()) -> SourceFile:
    """Check that the file can be read at all: a regular file of UTF-8 text in a known
    format, with the `required` columns and no column listed twice."""
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
    for name in required:
        if name not in columns:
            raise UnusableFile(f"{path}: no {name} column (found: {', '.join(columns) or 'nothing'})")
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise UnusableFile(f"{path}: column(s) listed twice: {', '.join(duplicates)}")
    return SourceFile(path, kind, tuple(columns), max(lines + (last != b"\n"), 1))


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".txt", ""):
        return "csv"
    raise UnusableFile(f"{path}: unknown format {suffix!r}; use .csv or .jsonl")


def json_line(text: str) -> Any:
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
                    record = json_line(line)
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
                record = json_line(text)
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


def import_line(
    rejected: list[tuple[int, str]], line: int, row: dict[str, Any] | str,
    import_row: Callable[[int, dict[str, Any]], None],
) -> None:
    """Import one line of read_rows with `import_row` (which works inside a savepoint). A
    line that is not a row, a row it rejects and a row the database refuses are added to
    `rejected` with the reason; nothing is raised, so the rest of the file goes on."""
    try:
        if isinstance(row, str):
            raise RowRejected(row)
        import_row(line, row)
    except RowRejected as exc:
        rejected.append((line, exc.message))
    except (IntegrityError, DataError) as exc:  # the row's savepoint has been rolled back
        rejected.append((line, refusal(exc)))


def refusal(exc: IntegrityError | DataError) -> str:
    """Why the database refused a row, in one line."""
    detail = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
    return f"the database refused the row ({detail})"
