"""Blanking a table's personal columns, as erasure does (toolkit.kit.personal)."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table

from toolkit.db import JsonDoc
from toolkit.kit.personal import Personal, blanked, personal_columns


def test_blanked_empties_personal_columns_by_nullability_and_type():
    table = Table(
        "synthetic", MetaData(),
        Column("id", Integer, primary_key=True),
        Column("who", String(20), nullable=False, info={"personal": Personal.IDENTIFIER}),
        Column("name", String(20), nullable=True, info={"personal": Personal.NAME}),
        Column("doc", JsonDoc, nullable=False, info={"personal": Personal.RECORD}),
        Column("notes", JsonDoc, nullable=True, info={"personal": Personal.FREE_TEXT}),
        Column("by", String(20), info={"personal": Personal.IDENTIFIER}),
        Column("state", String(20), info={"personal": None}),
    )
    assert personal_columns(table) == {"who": "identifier", "name": "name", "doc": "record", "notes": "free_text",
                                       "by": "identifier"}

    values = blanked(table, keep=["by"], who="erased", state="gone")

    assert set(values) == {"who", "name", "doc", "notes", "state"}
    assert (values["who"], values["name"], values["doc"], values["state"]) == ("erased", None, {}, "gone")
    assert str(values["notes"]) == "NULL"  # SQL NULL, not JSON 'null'


def test_blanked_refuses_a_column_the_table_does_not_have():
    table = Table("synthetic", MetaData(), Column("id", Integer, primary_key=True))
    with pytest.raises(KeyError, match="nope"):
        blanked(table, keep=["nope"])
