from __future__ import annotations

import itertools

from sqlalchemy.orm import Session

from toolkit.auth import service
from toolkit.auth.models import User

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


def make_user(session: Session, *, roles: list[str], email: str | None = None, password: str = PASSWORD) -> User:
    email = email or f"{roles[0]}-{next(_counter)}@test.example"
    return service.create_user(session, email=email, password=password, roles=roles, actor="test")


def make_token(session: Session, *, roles: list[str]) -> str:
    user = make_user(session, roles=roles)
    _token, plain = service.create_token(session, user_id=user.id, name="test", actor="test")
    return plain
