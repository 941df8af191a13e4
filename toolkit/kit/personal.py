"""The personal-data registry: which columns can hold data about a person, declared on the
columns themselves.

Every column that can hold personal data says what kind in its model,
`mapped_column(..., info={"personal": Personal.IDENTIFIER})`, and every other text or JSON
column says `info={"personal": None}`, so that a new text column cannot arrive without
someone having decided. `undeclared` finds the columns that did not (a test runs it over
every domain's tables). Erasure reads the registry: `blanked` gives the values that leave
nothing personal in a table's personal columns, so a personal column added later is erased
with the rest unless its domain says why it is kept.

`info` is not DDL: declaring or changing a kind needs no migration.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, String, Table, null

KEY = "personal"


class Personal(StrEnum):
    """What a column can hold about a person."""

    # Picks out one person on its own: a LINE user id, a staff member's login.
    IDENTIFIER = "identifier"
    # A keyed hash of an identifier: names nobody without our key, but matches the person
    # again when they come back (what the suppression list is made of).
    PSEUDONYM = "pseudonym"
    # How to reach someone: an email address, a phone number.
    CONTACT = "contact"
    # What a person is called.
    NAME = "name"
    # What we know about them besides: language, time zone, tier.
    PROFILE = "profile"
    # What someone wrote or was sent: it may say anything about them.
    FREE_TEXT = "free_text"
    # A structured document carrying several of the above (a webhook event as LINE sent
    # it, the evidence of a consent decision).
    RECORD = "record"


# Text, Unicode and Enum are Strings; JSONB and the JsonDoc variant are JSON.
TEXTUAL_TYPES = (String, JSON)


def is_textual(column: Column[Any]) -> bool:
    return isinstance(column.type, TEXTUAL_TYPES)


def undeclared(tables: Iterable[Table]) -> list[str]:
    """"table.column" for every text or JSON column without a `personal` declaration, or
    with one that is neither a Personal kind nor None."""
    found = []
    for table in tables:
        for column in table.columns:
            if not is_textual(column):
                continue
            if KEY not in column.info or not (column.info[KEY] is None or column.info[KEY] in set(Personal)):
                found.append(f"{table.name}.{column.name}")
    return found


def kind_of(column: Column[Any]) -> Personal | None:
    value = column.info.get(KEY)
    return None if value is None else Personal(value)


def personal_columns(table: Table) -> dict[str, Personal]:
    return {c.name: kind for c in table.columns if (kind := kind_of(c)) is not None}


def blanked(table: Table, *, keep: Iterable[str] = (), **overrides: Any) -> dict[str, Any]:
    """Values for an UPDATE that leave nothing personal in `table`'s personal columns: SQL
    NULL where the column is nullable, else an empty string or an empty JSON object.

    `keep`: personal columns left as they are (their domain says why, e.g. the staff
    member who acted). `overrides`: other values for some columns (a JSON list blanked as
    [], a marker text); they may name non-personal columns too."""
    kept = set(keep)
    unknown = (kept | set(overrides)) - set(table.columns.keys())
    if unknown:
        raise KeyError(f"{table.name} has no column {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name in personal_columns(table).keys() - kept:
        column = table.columns[name]
        if column.nullable:
            # null(), not None: None bound to a JSON column is stored as JSON 'null'.
            values[name] = null() if isinstance(column.type, JSON) else None
        else:
            values[name] = {} if isinstance(column.type, JSON) else ""
    return values | overrides
