"""Running Alembic from the product (the `toolkit db` commands, startup, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

import toolkit

# Inside the package, so that an installed toolkit (a wheel, the Docker image) migrates
# without a checkout; Alembic reads the scripts from disk, hence a path, not a resource.
SCRIPT_LOCATION = Path(toolkit.__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    # Built in code rather than read from alembic.ini, which is not installed; the repo's
    # alembic.ini says the same for developers who run `alembic` by hand.
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    # ConfigParser interpolation would eat '%' in passwords.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
