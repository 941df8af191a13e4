"""The product's clock: one place to read the time, which tests, demos and a running
sandbox server can move."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from tests.auth.factories import make_token
from tests.contacts.factories import make_contact
from toolkit.app import create_app
from toolkit.kit import clock
from toolkit.settings import Settings

CHRISTMAS_EVE = datetime(2026, 12, 24, 20, 0, tzinfo=timezone(timedelta(hours=8)))


def test_frozen_time_stands_still_and_is_utc():
    with clock.frozen(CHRISTMAS_EVE):
        assert clock.utcnow() == CHRISTMAS_EVE
        assert clock.utcnow().tzinfo == timezone.utc
    assert abs(clock.utcnow() - clock.real_utcnow()) < timedelta(seconds=5)


def test_a_moved_clock_runs_ahead_by_the_offset():
    with clock.moved(timedelta(days=3)):
        assert abs(clock.utcnow() - clock.real_utcnow() - timedelta(days=3)) < timedelta(seconds=5)


def test_stored_defaults_read_the_product_clock(session):
    with clock.frozen(CHRISTMAS_EVE):
        contact = make_contact(session)
    session.refresh(contact)
    assert contact.created_at == CHRISTMAS_EVE


@pytest.mark.parametrize(("setting", "offset_s"), [("+3d", 3 * 86400), ("-90m", -5400), ("3600", 3600), ("2h", 7200)])
def test_offsets_are_read_from_the_setting(setting, offset_s):
    assert clock.parse_setting(setting).offset == timedelta(seconds=offset_s)


def test_a_time_in_the_setting_becomes_now():
    assert clock.parse_setting(CHRISTMAS_EVE.isoformat() + "@frozen").frozen_at == CHRISTMAS_EVE
    running = clock.parse_setting(CHRISTMAS_EVE.isoformat())
    assert abs(clock.real_utcnow() + running.offset - CHRISTMAS_EVE) < timedelta(seconds=5)


@pytest.mark.parametrize("setting", ["tomorrow", "2026-12-24T20:00:00", "+3y"])
def test_an_unreadable_setting_is_refused_with_the_reason(setting):
    with pytest.raises(ValidationError, match="offset"):
        Settings(clock_offset=setting)


def test_production_keeps_real_time():
    with pytest.raises(ValidationError, match="not production"):
        Settings(env="production", clock_offset="+1d", secret_key="s" * 40, suppression_key="k" * 40)


def test_the_app_starts_on_the_configured_clock(session):
    create_app(Settings(clock_offset=CHRISTMAS_EVE.isoformat() + "@frozen"))
    assert clock.utcnow() == CHRISTMAS_EVE


def sandbox_client(session, roles):
    client = TestClient(create_app(Settings(line_sandbox=True)))
    client.headers["Authorization"] = f"Bearer {make_token(session, roles=roles)}"
    return client


def test_an_admin_moves_a_sandbox_servers_clock(session):
    client = sandbox_client(session, ["admin"])

    moved = client.put("/api/v1/clock", json={"at": CHRISTMAS_EVE.isoformat(), "frozen": True})
    assert moved.status_code == 200, moved.text
    assert moved.json()["frozen"] is True
    assert datetime.fromisoformat(moved.json()["now"]) == CHRISTMAS_EVE
    assert make_contact(session).created_at == CHRISTMAS_EVE

    back = client.put("/api/v1/clock", json={"real": True}).json()
    assert back["frozen"] is False and abs(back["offset_s"]) < 5


def test_only_an_admin_may_move_the_clock(session):
    response = sandbox_client(session, ["ops"]).put("/api/v1/clock", json={"offset_s": 3600})
    assert response.status_code == 403
    assert clock.state() == clock.REAL_TIME


def test_the_clock_setting_needs_exactly_one_way(session):
    response = sandbox_client(session, ["admin"]).put("/api/v1/clock", json={"offset_s": 60, "real": True})
    assert response.status_code == 422
    assert "exactly one" in response.text


def test_without_the_sandbox_there_is_no_clock_endpoint(session):
    client = TestClient(create_app(Settings(line_sandbox=False)))
    client.headers["Authorization"] = f"Bearer {make_token(session, roles=['admin'])}"
    assert client.put("/api/v1/clock", json={"offset_s": 3600}).status_code == 404
