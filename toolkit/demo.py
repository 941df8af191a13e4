"""The demo brand: staff users for every role, a few hundred contacts with consent, and
the FAQ bank its LINE chatbot answers from (toolkit/defaults/faq/retail-*.yaml).

Seeding is idempotent; every run resets the demo users' passwords to fresh random ones
and prints them, so the printed login always works and no fixed password ships.
"""

from __future__ import annotations

import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from toolkit import defaults
from toolkit.audit.models import AuditLog
from toolkit.auth import service as auth
from toolkit.chatbot import importer as faq_importer
from toolkit.chatbot import service as faq
from toolkit.consent import service as consent
from toolkit.contacts import service as contacts
from toolkit.contacts.models import Contact
from toolkit.kit.clock import utcnow
from toolkit.kit.errors import InvalidInput

DEMO_DOMAIN = "demo.example"
DEMO_ACTOR = "demo"  # in the audit log: how a later run knows the demo seeded this database
DEMO_ROLES = ("admin", "editor", "approver", "ops", "agent", "privacy_officer")
DEMO_CONTACTS = 300
ID_NAMESPACE = uuid.UUID("0f4b2a7e-3c1d-4e5f-9a8b-7c6d5e4f3a2b")
# The demo brand's FAQ bank. Only the demo loads it: other databases start with no entries.
DEMO_FAQ_FILES = "faq/retail-*.yaml"

SURNAMES = "陳林黃張李王吳劉蔡楊許鄭謝洪郭邱曾廖賴徐周葉蘇莊呂江何蕭羅高"
GIVEN = ["怡君", "雅婷", "家豪", "志明", "淑芬", "建宏", "欣怡", "冠宇", "佳穎", "承恩", "宜蓁", "俊傑", "美玲", "宗翰", "詩涵"]
ENGLISH = ["Amy", "Kevin", "Jason", "Vivian", "Eric", "Cindy", "Tony", "Grace", "Leo", "Ivy"]


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    roles: tuple[str, ...]


def line_user_id(n: int) -> str:
    """A well-formed LINE userId (U + 32 hex), stable per demo contact."""
    return "U" + uuid.uuid5(ID_NAMESPACE, f"demo-contact-{n}").hex


def seed_users(session: Session) -> list[DemoLogin]:
    logins = []
    for role in DEMO_ROLES:
        email = f"{role.replace('_', '-')}@{DEMO_DOMAIN}"
        password = secrets.token_urlsafe(12)
        user = auth.get_user_by_email(session, email)
        if user is None:
            auth.create_user(session, email=email, password=password, roles=[role], actor=DEMO_ACTOR)
        else:
            user.password_hash = auth.hash_password(password)
            user.active = True
        logins.append(DemoLogin(email, password, (role,)))
    return logins


def seed_contacts(session: Session, count: int = DEMO_CONTACTS) -> int:
    rng = random.Random(20261126)
    created = 0
    start = utcnow() - timedelta(days=120)
    for n in range(count):
        external_id = line_user_id(n)
        if contacts.get_by_external_id(session, external_id) is not None:
            continue
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) if rng.random() < 0.8 else rng.choice(ENGLISH)
        locale = "zh-TW" if rng.random() < 0.85 else "en"
        result = contacts.upsert_identity(session, external_id=external_id, display_name=name, locale=locale)
        contact_id = result.contact.id
        followed_at = start + timedelta(minutes=rng.randrange(0, 120 * 24 * 60))
        evidence = {"demo": True, "webhook_event_id": uuid.uuid5(ID_NAMESPACE, f"follow-{n}").hex}
        consent.grant(session, contact_id=contact_id, purpose="marketing.line_push", source="follow",
                      actor=DEMO_ACTOR, evidence=evidence, occurred_at=followed_at)
        roll = rng.random()
        later = followed_at + timedelta(days=rng.randrange(1, 30))
        if roll < 0.08:
            consent.withdraw(session, contact_id=contact_id, purpose="marketing.line_push", source="keyword",
                             actor=DEMO_ACTOR, evidence={"demo": True, "text": "取消訂閱"}, occurred_at=later)
        elif roll < 0.10:
            consent.object_to(session, contact_id=contact_id, purpose="marketing.line_push", source="admin",
                              actor=DEMO_ACTOR, evidence={"demo": True, "note": "asked by phone"}, occurred_at=later)
        elif roll < 0.13:
            result.contact.identities[0].blocked_at = later
            result.contact.identities[0].followed = False
        if rng.random() < 0.35:
            consent.grant(session, contact_id=contact_id, purpose="marketing.profiling", source="form",
                          actor=DEMO_ACTOR, evidence={"demo": True, "form": "membership-signup"},
                          occurred_at=followed_at + timedelta(hours=1))
        created += 1
    session.flush()
    return created


def seed_faq(session: Session, *, config_dir: Path | None = None) -> dict[str, int]:
    """Import the demo FAQ bank through the same importer as `toolkit faq import`. An entry
    the database already holds is left as it is: what staff changed while trying the demo
    survives the next `toolkit demo`; ids new in the files are added. A file of the same
    name in CONFIG_DIR replaces the shipped one."""
    totals = {"created": 0, "kept": 0}
    for path in defaults.glob(DEMO_FAQ_FILES, config_dir):
        rows = []
        for line, row in faq_importer.read_rows(faq_importer.inspect_file(path)):
            if isinstance(row, dict) and faq.get_entry(session, str(row.get("id", "")).strip()) is not None:
                totals["kept"] += 1
            else:
                rows.append((line, row))
        if not rows:
            continue
        report = faq_importer.import_rows(session, iter(rows), actor=DEMO_ACTOR, file=path.name)
        if report.rejected or report.skipped_duplicate:
            # The shipped bank is tested; a bad row here means the file was edited badly.
            line, problem = report.problems()[0]
            raise InvalidInput(f"{path}:{line}: {problem}")
        totals["created"] += report.created
    return totals


class NotADemoDatabase(InvalidInput):
    code = "not_a_demo_database"


def refuse_unless_demo_database(session: Session, *, env: str) -> None:
    """The demo adds six staff (an admin among them, password printed) and 300 invented
    contacts with back-dated consent: only into an empty database or one it seeded before
    (its audit records say so), and never in production."""
    if env == "production":
        raise NotADemoDatabase("toolkit demo never seeds a production database (TOOLKIT_ENV=production)")
    if session.scalar(select(AuditLog.id).where(AuditLog.actor == DEMO_ACTOR).limit(1)) is not None:
        return
    held = {"staff users": auth.count_users(session),
            "contacts": session.scalar(select(func.count()).select_from(Contact)) or 0}
    if any(held.values()):
        found = " and ".join(f"{n:,} {what}" for what, n in held.items() if n)
        raise NotADemoDatabase(f"this database holds {found} and was not seeded by toolkit demo; "
                               "point TOOLKIT_DATABASE_URL at an empty database for the demo")


def seed(session: Session, *, config_dir: Path | None = None, env: str = "development") -> list[DemoLogin]:
    refuse_unless_demo_database(session, env=env)
    consent.sync_from_config(session, config_dir)
    logins = seed_users(session)
    seed_contacts(session)
    seed_faq(session, config_dir=config_dir)
    return logins


def banner(logins: list[DemoLogin], url: str) -> str:
    admin = logins[0]
    others = "\n".join(f"    {login.roles[0]:16} {login.email:32} {login.password}" for login in logins[1:])
    return (
        f"\n  Demo brand ready at {url}\n"
        f"  Admin login / 管理員登入:  {admin.email}  password / 密碼: {admin.password}\n"
        f"  Other roles (passwords change at every `toolkit demo`):\n{others}\n"
        f"  LINE sandbox: {url}/sandbox/line  ·  chat simulator: {url}/admin/line/simulator\n"
    )
