"""Generated keys: made once, persisted, shared by every process."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from toolkit.kit import secrets
from toolkit.kit.secrets import AppSecret
from toolkit.settings import Settings


def test_a_missing_key_is_generated_once_and_persisted(session):
    secrets.clear_cache()
    session.execute(AppSecret.__table__.delete().where(AppSecret.name == "test_key"))

    first = secrets.get_secret(session, "test_key")
    secrets.clear_cache()  # as a second process would see it
    second = secrets.get_secret(session, "test_key")

    stored = session.scalar(select(AppSecret.value).where(AppSecret.name == "test_key"))
    assert first == second == stored and len(first) >= 48


def test_identity_hash_is_keyed_and_stable(session):
    a = secrets.identity_hash(session, "line", "U1")

    assert a == secrets.identity_hash(session, "line", "U1")
    assert a != secrets.identity_hash(session, "line", "U2")
    assert "U1" not in a and len(a) == 64


def test_production_refuses_known_default_secrets(monkeypatch):
    monkeypatch.setenv("TOOLKIT_ENV", "production")
    monkeypatch.setenv("TOOLKIT_SECRET_KEY", "change-me")

    with pytest.raises(ValidationError, match="known default"):
        Settings()


def test_development_accepts_them_and_postgres_urls_get_psycopg(monkeypatch):
    monkeypatch.setenv("TOOLKIT_ENV", "development")
    monkeypatch.setenv("TOOLKIT_SECRET_KEY", "change-me")
    monkeypatch.setenv("TOOLKIT_DATABASE_URL", "postgres://u@h/db")

    settings = Settings()

    assert settings.database_url == "postgresql+psycopg://u@h/db"
