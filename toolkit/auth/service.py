"""Users, roles, password checks and API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from toolkit.audit import service as audit
from toolkit.auth.models import ApiToken, User
from toolkit.auth.schemas import EMAIL_PATTERN, ROLES
from toolkit.kit.clock import utcnow
from toolkit.kit.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from toolkit.kit.storable import unstorable

TOKEN_PREFIX = "tk_"
MIN_PASSWORD_LENGTH = 8  # NIST SP 800-63B minimum; length beats composition rules

# What each role may do. Admin may do everything. Checked on the server for every route.
PERMISSIONS: dict[str, frozenset[str]] = {
    "contacts.read": frozenset({"ops", "agent", "privacy_officer", "editor", "approver"}),
    "contacts.write": frozenset({"ops", "privacy_officer"}),
    "consent.read": frozenset({"ops", "agent", "privacy_officer"}),
    "consent.write": frozenset({"ops", "agent", "privacy_officer"}),
    "audit.read": frozenset({"privacy_officer"}),
    "users.manage": frozenset(),
    # Moving the product's clock (demos and browser tests, only with the LINE sandbox on).
    "clock.set": frozenset(),
    "tokens.own": frozenset(ROLES),
    # The LINE inbox (events, dead-letter retries, quota) and the sandbox's chat simulator.
    "line.inbox": frozenset({"ops", "agent"}),
    "line.simulate": frozenset({"ops", "agent"}),
    # The FAQ bot. Everyone who works on what customers are told may read the bank and try
    # questions on it; changing what the bot answers every customer (entries, the unanswered
    # queue) is for ops and the content editors, not for each agent on shift.
    "faq.read": frozenset({"ops", "agent", "editor", "approver"}),
    "faq.write": frozenset({"ops", "editor"}),
    # Reading customers' conversations and answering them as a person (handoffs).
    "chat.agent": frozenset({"ops", "agent"}),
}

_hasher = PasswordHasher()


class UserExists(Conflict):
    code = "user_exists"


class UnknownRole(InvalidInput):
    code = "unknown_role"


class WeakPassword(InvalidInput):
    code = "weak_password"


class UserNotFound(NotFound):
    code = "user_not_found"


class TokenNotFound(NotFound):
    code = "token_not_found"


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"


class LastAdmin(Conflict):
    code = "last_admin"


@dataclass(frozen=True)
class Actor:
    """Who is acting: a staff user through the UI or an API token, or the system."""

    user_id: int | None
    email: str
    roles: frozenset[str]
    via: str  # "session", "token", "cli", "system"

    @property
    def audit_name(self) -> str:
        return f"user:{self.email}" if self.user_id is not None else self.email

    def can(self, permission: str) -> bool:
        return "admin" in self.roles or bool(self.roles & PERMISSIONS[permission])


SYSTEM = Actor(user_id=None, email="system", roles=frozenset({"admin"}), via="system")


def actor_for(user: User, *, via: str) -> Actor:
    return Actor(user_id=user.id, email=user.email, roles=frozenset(user.roles), via=via)


def require_permission(actor: Actor, permission: str) -> None:
    if not actor.can(permission):
        raise PermissionDenied(f"your role may not do this ({permission})")


EMAIL_MAX_LENGTH = 254
_email = re.compile(EMAIL_PATTERN)


class InvalidEmail(InvalidInput):
    code = "invalid_email"


def normalise_email(email: str) -> str:
    return email.strip().lower()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    roles: list[str],
    actor: str,
    display_name: str | None = None,
) -> User:
    email = normalise_email(email)
    # Syntax only, as the login form's: installs are often offline, so no DNS lookup.
    if len(email) > EMAIL_MAX_LENGTH or not _email.fullmatch(email) or unstorable(email):
        raise InvalidEmail(f"{email[:80]!r} is not an e-mail address (name@example.com)")
    _check_roles(roles)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if get_user_by_email(session, email) is not None:
        raise UserExists(f"a user with e-mail {email} already exists")
    user = User(
        email=email,
        password_hash=hash_password(password),
        roles=sorted(set(roles)),
        display_name=display_name,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor=actor, action="user.create", target_type="user", target_id=user.id,
                 details={"email": email, "roles": user.roles})
    return user


def get_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def require_user(session: Session, user_id: int) -> User:
    user = get_user(session, user_id)
    if user is None:
        raise UserNotFound(f"no user with id {user_id}")
    return user


def _check_roles(roles: list[str]) -> None:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown or not roles:
        raise UnknownRole(f"unknown role {', '.join(unknown) or '(none)'}; roles: {', '.join(ROLES)}")


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def _keep_an_admin(session: Session, *, leaving: User) -> None:
    """Nobody could manage users again if the last active admin lost the role."""
    if "admin" not in leaving.roles or not leaving.active:
        return
    others = [u for u in session.scalars(select(User).where(User.active, User.id != leaving.id)) if "admin" in u.roles]
    if not others:
        raise LastAdmin("this is the last active admin; make someone else admin first")


def set_roles(session: Session, *, user_id: int, roles: list[str], actor: str) -> User:
    user = require_user(session, user_id)
    _check_roles(roles)
    if "admin" not in roles:
        _keep_an_admin(session, leaving=user)
    before = list(user.roles)
    user.roles = sorted(set(roles))
    audit.record(session, actor=actor, action="user.set_roles", target_type="user", target_id=user.id,
                 details={"before": before, "after": user.roles})
    session.flush()
    return user


def set_active(session: Session, *, user_id: int, active: bool, actor: str) -> User:
    user = require_user(session, user_id)
    if not active:
        _keep_an_admin(session, leaving=user)
    user.active = active
    audit.record(session, actor=actor, action="user.activate" if active else "user.deactivate",
                 target_type="user", target_id=user.id)
    session.flush()
    return user


def authenticate(session: Session, *, email: str, password: str) -> User:
    user = get_user_by_email(session, email)
    if user is None or not user.active:
        # Spend the same time as a real check, so e-mails cannot be probed by timing.
        _hasher.hash(password)
        raise InvalidCredentials("wrong e-mail or password")
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError) as exc:
        raise InvalidCredentials("wrong e-mail or password") from exc
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    audit.record(session, actor=f"user:{user.email}", action="user.login", target_type="user", target_id=user.id)
    session.flush()
    return user


# --- API tokens -------------------------------------------------------------------------

def _token_digest(token: str) -> str:
    # Tokens carry 256 bits of randomness, so a fast hash is enough (unlike passwords).
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    session: Session, *, user_id: int, name: str, actor: str, expires_in_days: int | None = None
) -> tuple[ApiToken, str]:
    """Create a token; the plain value is returned once and never stored."""
    if not name.strip() or len(name) > 100:
        raise InvalidInput("token name must have 1 to 100 characters")
    require_user(session, user_id)
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user_id,
        name=name.strip(),
        prefix=plain[:10],
        token_hash=_token_digest(plain),
        expires_at=utcnow() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    session.add(token)
    session.flush()
    audit.record(session, actor=actor, action="token.create", target_type="api_token", target_id=token.id,
                 details={"user_id": user_id, "name": token.name})
    return token, plain


def list_tokens(session: Session, *, user_id: int | None = None) -> list[ApiToken]:
    stmt = select(ApiToken).order_by(ApiToken.created_at.desc())
    if user_id is not None:
        stmt = stmt.where(ApiToken.user_id == user_id)
    return list(session.scalars(stmt))


def revoke_token(session: Session, *, token_id: int, actor: Actor) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_id != actor.user_id and "admin" not in actor.roles):
        raise TokenNotFound(f"no token with id {token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(session, actor=actor.audit_name, action="token.revoke", target_type="api_token",
                     target_id=token.id)
    session.flush()
    return token


def authenticate_token(session: Session, plain: str, *, now: datetime | None = None) -> User:
    now = now or utcnow()
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_digest(plain)))
    if token is None or token.revoked_at is not None or (token.expires_at and token.expires_at <= now):
        raise NotAuthenticated("invalid, expired or revoked API token")
    user = token.user
    if not user.active:
        raise NotAuthenticated("the token's user is deactivated")
    # Write at most once a minute per token, not on every call.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
    return user


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0
