"""The files `toolkit faq match` and `toolkit faq calibrate` read: questions to try, one
`{"query": ...}` JSON line each, and labelled examples (`query`, `expected_id`: an active
entry's id, or null for a question the bank should not answer) as CSV or JSONL."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.kit import tabular
from toolkit.kit.tabular import RowRejected, UnusableFile


def read_text_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file ("-": standard input), or UnusableFile."""
    if str(path) == "-":
        return sys.stdin.read().splitlines()
    if not path.is_file():
        raise UnusableFile(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    try:
        return path.read_bytes().decode("utf-8-sig").splitlines()
    except OSError as exc:
        raise UnusableFile(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise UnusableFile(f"{path}: not UTF-8 text (byte {exc.start})") from exc


def parse_query_line(text: str) -> tuple[str | None, str | None]:
    """A `{"query": ...}` line: (query, None), or (the query if there is one, why the
    line is bad)."""
    try:
        record = tabular.json_line(text)
    except ValueError as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        return None, f"not valid JSON ({reason})"
    if not isinstance(record, dict):
        return None, "expected a JSON object"
    query = record.get("query")
    if "query" not in record:
        return None, "no query"
    if not isinstance(query, str):
        return None, f"query must be text, not {type(query).__name__}"
    return query, None


@dataclass(frozen=True)
class ExampleLine:
    line: int
    query: str
    expected_id: str | None


def parse_example(row: dict[str, Any], *, kind: str) -> tuple[str, str | None]:
    """One labelled example: (query, expected id or None for out of scope)."""
    query = row.get("query")
    if not isinstance(query, str) or not query.strip():
        raise RowRejected("query is empty" if query is None or isinstance(query, str) else
                          f"query must be text, not {type(query).__name__}")
    if "expected_id" not in row:
        raise RowRejected("no expected_id (null for a question the bank should not answer)")
    expected = row["expected_id"]
    if isinstance(expected, int) and not isinstance(expected, bool):
        expected = str(expected)
    if isinstance(expected, str):
        expected = expected.strip()
        if not expected:
            if kind != "csv":  # an empty CSV cell is the only way a CSV says null
                raise RowRejected("expected_id is empty (null for a question the bank should not answer)")
            expected = None
    elif expected is not None:
        raise RowRejected(f"expected_id must be text or null, not {type(expected).__name__}")
    return query, expected


def read_examples(path: Path, known_ids: set[str]) -> tuple[list[ExampleLine], list[tuple[int, str]]]:
    """The usable examples of a file, and the rejected lines with why (an expected_id
    that is not an active entry among them)."""
    source = tabular.inspect_file(path, required=("query", "expected_id"))
    examples: list[ExampleLine] = []
    rejected: list[tuple[int, str]] = []
    for line, row in tabular.read_rows(source):
        try:
            if isinstance(row, str):
                raise RowRejected(row)
            query, expected = parse_example(row, kind=source.kind)
            if expected is not None and expected not in known_ids:
                raise RowRejected(f"expected_id {expected[:64]!r} is not an active entry")
        except RowRejected as exc:
            rejected.append((line, exc.message))
            continue
        examples.append(ExampleLine(line, query, expected))
    return examples, rejected
