"""`toolkit demo` seeds only an empty database or one it seeded before, never production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.auth.factories import make_user
from tests.contacts.factories import make_contact
from toolkit import demo
from toolkit.auth.models import User
from toolkit.contacts.models import Contact
from toolkit.settings import Settings




def counts(session: Session) -> tuple[int, int]:
    return (session.scalar(select(func.count()).select_from(User)),
            session.scalar(select(func.count()).select_from(Contact)))


def test_an_empty_database_is_seeded_and_seeded_again(session: Session) -> None:
    first = demo.seed(session)
    make_user(session, roles=["agent"], email="someone-trying-the-demo@test.example")  # staff trying it out

    again = demo.seed(session)

    assert [login.email for login in first] == [login.email for login in again]
    assert counts(session) == (len(demo.DEMO_ROLES) + 1, demo.DEMO_CONTACTS)


@pytest.mark.parametrize("holding", ["staff", "contacts"])
def test_a_database_with_real_data_is_refused_and_left_as_it_was(session: Session, holding: str) -> None:
    if holding == "staff":
        make_user(session, roles=["admin"], email="owner@brand.example")
    else:
        make_contact(session)
    before = counts(session)

    with pytest.raises(demo.NotADemoDatabase, match="not seeded by toolkit demo"):
        demo.seed(session)

    assert counts(session) == before


def test_production_is_never_seeded(session: Session) -> None:
    with pytest.raises(demo.NotADemoDatabase, match="production"):
        demo.seed(session, env="production")

    assert counts(session) == (0, 0)


def test_the_sandbox_refuses_to_start_in_production() -> None:
    with pytest.raises(ValidationError, match="TOOLKIT_LINE_SANDBOX"):
        Settings(env="production", line_sandbox=True, secret_key="a-real-secret-for-this-test-0123456789")
