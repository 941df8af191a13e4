"""Alembic environment: every domain's models, as the composition root lists them."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from toolkit import domains
from toolkit.db import Base, BigId, JsonDoc, UtcDateTime, make_engine
from toolkit.settings import get_settings

# Every domain's tables are on Base.metadata once the composition root is imported.
MODEL_MODULES = [module.__name__ for module in domains.assemble().model_modules]

# APScheduler's job store table: created by a migration with APScheduler's own definition,
# owned by APScheduler at run time, so autogenerate must leave it alone.
EXTERNALLY_DEFINED_TABLES = {"apscheduler_jobs"}


def include_object(obj, name, type_, reflected, compare_to):  # noqa: ANN001, ANN201 - Alembic hook
    table = obj if type_ == "table" else getattr(obj, "table", None)
    table_name = name if type_ == "table" else getattr(table, "name", None)
    return table_name not in EXTERNALLY_DEFINED_TABLES


def render_item(type_, obj, autogen_context):  # noqa: ANN001, ANN201 - Alembic hook
    """Write our shared column types by name, so generated migrations need no hand edits."""
    if type_ != "type":
        return False
    for name, shared in (("BigId", BigId), ("JsonDoc", JsonDoc)):
        if obj is shared:
            autogen_context.imports.add(f"from toolkit.db import {name}")
            return name
    if isinstance(obj, UtcDateTime):
        autogen_context.imports.add("from toolkit.db import UtcDateTime")
        return "UtcDateTime()"
    return False


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_object=include_object,
        render_item=render_item,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = make_engine(url)
    with engine.connect() as conn:
        run_with(conn)
    engine.dispose()


run_migrations()
