"""The personal-data registry: every text and JSON column of every domain's tables says
whether it can hold personal data (toolkit.kit.personal)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, Text
from sqlalchemy.orm import Mapper

from toolkit.db import Base, JsonDoc
from toolkit.domains import PRODUCT
from toolkit.kit.personal import undeclared


def product_tables() -> list[Table]:
    """The tables of the models the composition root declares, as Alembic reaches them."""
    modules = {m.__name__ for m in PRODUCT.model_modules}
    mappers: list[Mapper] = [m for m in Base.registry.mappers if m.class_.__module__ in modules]
    return sorted({m.local_table for m in mappers}, key=lambda t: t.name)  # type: ignore[misc]


def test_the_product_reaches_every_table_on_the_metadata():
    assert {t.name for t in product_tables()} == set(Base.metadata.tables)


def test_every_text_and_json_column_declares_whether_it_is_personal():
    assert undeclared(product_tables()) == []


def test_the_check_fails_on_a_column_that_says_nothing():
    table = Table(
        "synthetic", MetaData(),
        Column("id", Integer, primary_key=True),
        Column("said", String(20), info={"personal": None}),
        Column("name", String(20)),
        Column("note", Text, info={}),
        Column("doc", JSON),
        Column("jsonb", JsonDoc),
        Column("typo", String(20), info={"personal": "phone"}),
        Column("count", Integer),
    )
    assert undeclared([table]) == ["synthetic.name", "synthetic.note", "synthetic.doc", "synthetic.jsonb",
                                   "synthetic.typo"]
