"""Migrations upgrade and downgrade cleanly on SQLite and PostgreSQL, and leave exactly
the schema the models describe."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, select, text

from tests.conftest import IN_CI, POSTGRES_URL, fresh_postgres_database, postgres_available, worker_suffix
from toolkit import db, domains, migrate
from toolkit.audit.models import AuditHead
from toolkit.audit.service import GENESIS_HASH

ENV_PY = migrate.SCRIPT_LOCATION / "env.py"


def _env_constant(name: str) -> Any:
    """A literal from toolkit/migrations/env.py, which cannot be imported (it runs migrations)."""
    for node in ast.parse(ENV_PY.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(name)


# Alembic's env.py takes the models from the composition root (tests/test_domains.py checks
# that the root lists every models module in the package).
MODEL_MODULES = [module.__name__ for module in domains.PRODUCT.model_modules]
EXTERNAL_TABLES: set[str] = _env_constant("EXTERNALLY_DEFINED_TABLES")
SCRIPTS = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
REVISIONS = [r.revision for r in reversed(list(SCRIPTS.walk_revisions()))]  # oldest first


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrations.db'}"
    else:
        problem = postgres_available()
        if problem is not None:
            if IN_CI:
                pytest.fail(f"PostgreSQL is required under CI=true: {problem}")
            pytest.skip(f"PostgreSQL is not available: {problem}")
        url = fresh_postgres_database(f"toolkit_migrations_{worker_suffix()}")
    engine = db.make_engine(url)
    yield engine
    engine.dispose()
    if request.param == "postgresql":
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{engine.url.database}" WITH (FORCE)'))
        admin.dispose()


def tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def schema_differences(engine: Engine) -> list[Any]:
    """What autogenerate would add or drop: every model in the package against the schema."""
    for module in MODEL_MODULES:
        importlib.import_module(module)

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table not in EXTERNAL_TABLES

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object, "compare_type": True})
        return compare_metadata(context, db.Base.metadata)


def test_head_matches_the_models(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)

    assert migrate.current_revision(empty_engine) == SCRIPTS.get_current_head()
    assert schema_differences(empty_engine) == []
    with empty_engine.connect() as conn:
        assert conn.execute(select(AuditHead.seq, AuditHead.hash)).all() == [(0, GENESIS_HASH)]


def test_every_revision_downgrades_and_upgrades_again(empty_engine: Engine) -> None:
    before = tables(empty_engine)
    for revision in REVISIONS:
        migrate.upgrade(empty_engine, revision)
        after = tables(empty_engine)
        migrate.downgrade(empty_engine, "-1")
        assert tables(empty_engine) - {"alembic_version"} == before - {"alembic_version"}, revision
        migrate.upgrade(empty_engine, revision)
        assert tables(empty_engine) == after, revision
        before = after

    migrate.downgrade(empty_engine, "base")

    assert tables(empty_engine) <= {"alembic_version"}
    assert migrate.current_revision(empty_engine) is None
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == SCRIPTS.get_current_head()
