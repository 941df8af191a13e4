"""Set-based writes for imports: load many rows into a temporary staging table at once
(COPY on PostgreSQL, executemany on SQLite) and number new rows from a table's own keys.

Staging tables are Core tables on a MetaData of their own, so that neither Alembic nor
the schema checks see them; they live per connection and are emptied before each use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Column, ColumnElement, MetaData, Table, delete, func, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable


def on_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def staging_table(name: str, *columns: Column[Any]) -> Table:
    """A temporary table, on a MetaData of its own (see above)."""
    return Table(name, MetaData(), *columns, prefixes=["TEMPORARY"])


def fresh_staging(session: Session, table: Table) -> None:
    """Create the temporary table on this connection if it is not there yet, and empty it."""
    session.execute(CreateTable(table, if_not_exists=True))
    if on_postgres(session):
        session.execute(text(f"TRUNCATE {table.name}"))
    else:
        session.execute(delete(table))


def load(session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Append rows (values in the order of `columns`) to `table` in one statement."""
    if on_postgres(session):
        cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        # Temporary tables are never analysed by autovacuum; without statistics the
        # planner guesses a handful of rows and joins them badly.
        session.execute(text(f"ANALYZE {table.name}"))
        return
    batch = [dict(zip(columns, row)) for row in rows]
    if batch:
        session.execute(table.insert(), batch)


def number_rows(
    session: Session, staging: Table, *, key: str, order_by: str, pending: ColumnElement[bool], target: Table,
) -> None:
    """Fill `staging.c[key]` of the `pending` rows with new ids of `target`'s primary key
    `id`, in `order_by` order: from its sequence on PostgreSQL (safe beside other writers),
    past its largest id on SQLite (whose BEGIN IMMEDIATE already holds the write lock)."""
    order = staging.c[order_by]
    if on_postgres(session):
        new_id = func.nextval(func.pg_get_serial_sequence(target.name, "id"))
        # A CTE with a volatile function is evaluated once, never re-scanned by a join, and
        # PostgreSQL evaluates it after the ORDER BY: one id a row, in order.
        numbered = select(order, new_id.label("new_id")).where(pending).order_by(order).cte("numbered")
    else:
        base = session.scalar(select(func.coalesce(func.max(target.c.id), 0)))
        numbered = select(order, (base + func.row_number().over(order_by=order)).label("new_id")).where(pending).cte(
            "numbered")
    session.execute(update(staging).where(order == numbered.c[order_by]).values({key: numbered.c.new_id}))
