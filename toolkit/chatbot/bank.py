"""FAQ entries as the matcher sees them, and loaders for the files they come in.

Pure: no database. `load_tpe_xml` reads the Taipei City Government FAQ open data
(eval-data/TPE-FAQ-OD/taipei_faq.xml, 資料來源：臺北市政府) exactly as the product's
`toolkit faq import` receives it in the accuracy check: `id` = data_id,
`question` = news_title, `answer` = news_content with its HTML stripped,
`category` = deptName, and no keywords or alternative questions.
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class Entry:
    """One FAQ entry: `id` is the brand's own stable string id."""

    id: str
    question: str
    answer: str = ""
    category: str = ""
    alt_questions: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.alt_questions, tuple):  # accept any iterable of strings
            object.__setattr__(self, "alt_questions", tuple(self.alt_questions))


@dataclass(frozen=True)
class Example:
    """A labelled query: the entry that should answer it, or None when none should."""

    query: str
    expected_id: str | None
    style: str = ""


def strip_html(text: str | None) -> str:
    """HTML to plain text: entities unescaped, tags removed, whitespace collapsed.
    Entities are unescaped before the tags are removed because the open data escapes its
    HTML once more inside the XML (`&lt;A href=...&gt;`)."""
    text = html.unescape(text or "")
    text = _TAG.sub(" ", text)
    return " ".join(html.unescape(text).split())


def load_tpe_xml(path: str | Path) -> list[Entry]:
    """The entries of the TPE-FAQ-OD XML export, in file order."""
    root = ET.parse(path).getroot()
    entries = []
    for record in root.iter("data"):
        entries.append(
            Entry(
                id=(record.findtext("data_id") or "").strip(),
                question=" ".join((record.findtext("news_title") or "").split()),
                answer=strip_html(record.findtext("news_content")),
                category=(record.findtext("deptName") or "").strip(),
            )
        )
    return entries


def load_entries_jsonl(path: str | Path) -> list[Entry]:
    """Entries from JSON lines `{"id", "question", "answer", "category", "alt_questions"}`
    (the format of `toolkit faq import`)."""
    entries = []
    for row in _json_lines(path):
        entries.append(
            Entry(
                id=str(row["id"]),
                question=row["question"],
                answer=row.get("answer", ""),
                category=row.get("category", ""),
                alt_questions=tuple(row.get("alt_questions") or ()),
            )
        )
    return entries


def load_examples(path: str | Path) -> list[Example]:
    """Labelled queries from JSON lines `{"query", "expected_id" (null when out of scope)}`."""
    return [
        Example(query=row["query"], expected_id=row.get("expected_id"), style=row.get("style", ""))
        for row in _json_lines(path)
    ]


def examples_from_dicts(rows: Iterable[dict]) -> list[Example]:
    return [Example(query=r["query"], expected_id=r.get("expected_id"), style=r.get("style", "")) for r in rows]


def _json_lines(path: str | Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from exc
