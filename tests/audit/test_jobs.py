"""The nightly chain check, run inline on the test session."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from toolkit.audit import jobs
from toolkit.audit import service as audit
from toolkit.domains import PRODUCT


def test_job_is_declared_with_a_schedule() -> None:
    spec = PRODUCT.jobs["audit.verify_chain"]

    assert spec.func is jobs.verify_chain
    assert spec.cron == "30 3 * * *"


def test_intact_chain_passes(session: Session) -> None:
    audit.record(session, actor="test", action="x")

    assert jobs.verify_chain() is True


def test_broken_chain_is_logged_as_an_error(session: Session, caplog: pytest.LogCaptureFixture) -> None:
    row = audit.record(session, actor="test", action="x")
    audit.record(session, actor="test", action="y")
    session.execute(text("UPDATE audit_log SET action = 'z' WHERE id = :id"), {"id": row.id})

    with caplog.at_level(logging.ERROR, logger="toolkit.audit.jobs"):
        assert jobs.verify_chain() is False

    assert f"row {row.id} was altered" in caplog.text
