"""Consent registry: purposes, grants, withdrawals, objections, suppression and the gate."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import ARRAY, String, any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from toolkit import defaults
from toolkit.audit import service as audit
from toolkit.consent.gate import allowed, allowed_select
from toolkit.consent.models import ConsentEvent, ConsentState, Purpose, Suppression
from toolkit.consent.schemas import PurposeDefinition, PurposeFile
from toolkit.kit.clock import utcnow
from toolkit.kit.bulk import on_postgres
from toolkit.kit.errors import InvalidInput, NotFound
from toolkit.kit.personal import blanked
from toolkit.kit.secrets import identity_hash

__all__ = ["allowed", "allowed_select"]  # the gate lives in gate.py; callers use it from here


class UnknownPurpose(InvalidInput):
    code = "unknown_purpose"

    def __init__(self, code: str, known: Iterable[str] = ()) -> None:
        known_list = ", ".join(sorted(known))
        super().__init__(f"unknown purpose {code!r}" + (f" (known: {known_list})" if known_list else ""))


class PurposeConfigError(InvalidInput):
    code = "purpose_config_invalid"


class UnknownSource(InvalidInput):
    code = "unknown_source"


GRANTED, WITHDRAWN, OBJECTED, NONE = "granted", "withdrawn", "objected", "none"
STATE_AFTER = {"grant": GRANTED, "withdraw": WITHDRAWN, "object": OBJECTED}
SOURCES = ("follow", "unfollow", "keyword", "admin", "api", "import", "form", "cli", "system")
# Sources that are not the person's own fresh, explicit act. They may record a grant for
# someone who never decided, but never overturn a refusal (個資法 Art. 20(2), GDPR Art. 21(3)):
# a re-follow or an old spreadsheet does not bring marketing back.
IMPLICIT_GRANT_SOURCES = frozenset({"follow", "import"})
ALL_PURPOSES = "all"


@dataclass(frozen=True)
class ConsentChange:
    purpose: str
    action: str
    applied: bool
    state: str
    event_id: int | None


# --- purposes -------------------------------------------------------------------------

def load_purpose_file(path: Path) -> list[PurposeDefinition]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PurposeConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise PurposeConfigError(f"{path} is not valid YAML: {exc}") from exc
    try:
        parsed = PurposeFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PurposeConfigError(f"{path}: {where}: {first['msg']}") from exc
    codes = [p.code for p in parsed.purposes]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise PurposeConfigError(f"{path}: purpose listed twice: {', '.join(duplicates)}")
    return parsed.purposes


def sync_purposes(session: Session, definitions: list[PurposeDefinition]) -> list[Purpose]:
    """Make the purpose table match the configuration. Purposes no longer configured are
    deactivated, not deleted: their consent events must keep pointing at them."""
    existing = {p.code: p for p in session.scalars(select(Purpose))}
    synced = []
    for definition in definitions:
        purpose = existing.pop(definition.code, None) or Purpose(code=definition.code)
        purpose.lawful_basis = definition.lawful_basis
        purpose.name_zh = definition.name.zh_tw
        purpose.name_en = definition.name.en
        purpose.notice_zh = definition.notice.zh_tw
        purpose.notice_en = definition.notice.en
        purpose.notice_version = definition.notice.version
        purpose.retention_days = definition.retention_days
        purpose.active = True
        session.add(purpose)
        synced.append(purpose)
    for gone in existing.values():
        gone.active = False
    session.flush()
    return synced


def list_purposes(session: Session) -> list[Purpose]:
    return list(session.scalars(select(Purpose).where(Purpose.active).order_by(Purpose.code)))


def get_purpose(session: Session, code: str) -> Purpose:
    purpose = session.scalar(select(Purpose).where(Purpose.code == code, Purpose.active))
    if purpose is None:
        raise UnknownPurpose(code, [p.code for p in list_purposes(session)])
    return purpose


# --- recording decisions ----------------------------------------------------------------

def record(
    session: Session,
    *,
    contact_id: int,
    purpose: str,
    action: str,
    source: str,
    actor: str | None = None,
    evidence: dict[str, Any] | None = None,
    notice_version: str | None = None,
    occurred_at: datetime | None = None,
) -> ConsentChange:
    """Record one decision. Withdraw and object always write an event, even for a contact
    who never granted; an implicit grant after a refusal is ignored (see above)."""
    if action not in STATE_AFTER:
        raise InvalidInput(f"unknown consent action {action!r} (grant, withdraw or object)")
    if source not in SOURCES:
        raise UnknownSource(f"unknown consent source {source!r} (one of: {', '.join(SOURCES)})")
    target = get_purpose(session, purpose)
    current = session.get(ConsentState, (contact_id, target.id))
    if action == "grant" and source in IMPLICIT_GRANT_SOURCES and current and current.state != GRANTED:
        return ConsentChange(purpose, action, False, current.state, None)
    when = occurred_at or utcnow()
    version = notice_version or target.notice_version
    event = ConsentEvent(
        contact_id=contact_id,
        purpose_id=target.id,
        action=action,
        source=source,
        notice_version=version,
        evidence=evidence or {},
        actor=actor,
        occurred_at=when,
    )
    session.add(event)
    session.flush()
    if current is None:
        current = ConsentState(contact_id=contact_id, purpose_id=target.id)
        session.add(current)
    current.state = STATE_AFTER[action]
    current.notice_version = version
    current.source = source
    current.changed_at = when
    current.event_id = event.id
    audit.record(
        session,
        actor=actor or f"source:{source}",
        action=f"consent.{action}",
        target_type="contact",
        target_id=contact_id,
        details={"purpose": purpose, "source": source, "event_id": event.id, "notice_version": version},
    )
    session.flush()
    return ConsentChange(purpose, action, True, current.state, event.id)


def grant(session: Session, **kwargs: Any) -> ConsentChange:
    return record(session, action="grant", **kwargs)


def withdraw(session: Session, **kwargs: Any) -> ConsentChange:
    return record(session, action="withdraw", **kwargs)


def object_to(session: Session, **kwargs: Any) -> ConsentChange:
    return record(session, action="object", **kwargs)


def object_to_all_contact(
    session: Session,
    *,
    contact_id: int,
    identities: Iterable[tuple[str, str]],
    source: str,
    actor: str | None = None,
    evidence: dict[str, Any] | None = None,
) -> list[ConsentChange]:
    """An objection to all contact: every purpose objected and every identity suppressed,
    so that no import or re-follow can bring the person back."""
    changes = [
        object_to(session, contact_id=contact_id, purpose=p.code, source=source, actor=actor, evidence=evidence)
        for p in list_purposes(session)
    ]
    suppress(session, identities=identities, reason="objection")
    return changes


# --- suppression --------------------------------------------------------------------------

def suppress(session: Session, *, identities: Iterable[tuple[str, str]], reason: str) -> int:
    hashes = sorted({identity_hash(session, channel, external_id) for channel, external_id in identities})
    if not hashes:
        return 0
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    session.execute(
        insert(Suppression)
        .values([{"hash": h, "reason": reason, "created_at": now} for h in hashes])
        .on_conflict_do_nothing(index_elements=["hash"])
    )
    return len(hashes)


def is_suppressed(session: Session, *, channel: str, external_id: str) -> bool:
    digest = identity_hash(session, channel, external_id)
    return session.scalar(select(func.count()).where(Suppression.hash == digest)) > 0


def suppressed_among(session: Session, *, channel: str, external_ids: Iterable[str]) -> set[str]:
    """Which of these channel identities asked never to be contacted again (one query per 500)."""
    by_hash = {identity_hash(session, channel, external_id): external_id for external_id in set(external_ids)}
    return {by_hash[digest] for digest in suppressed_hashes(session, by_hash)}


def suppressed_hashes(session: Session, hashes: Iterable[str]) -> set[str]:
    wanted = list(set(hashes))
    if wanted and on_postgres(session):
        # One array parameter: an IN list of thousands of parameters costs more to build
        # and send than the lookup itself.
        return set(session.scalars(select(Suppression.hash).where(
            Suppression.hash == any_(bindparam("hashes", wanted, type_=ARRAY(String))))))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(session.scalars(select(Suppression.hash).where(Suppression.hash.in_(chunk))))
    return found


# --- erasure ----------------------------------------------------------------------------

# What a decision's evidence keeps once its person is erased: how and through what it came
# (the interface, the request, LINE's event id, the notice shown, the import file's line),
# never who made it or what they said (their LINE id, their words, their address or browser,
# staff's notes about them, whatever an API caller added).
EVIDENCE_KEPT_ON_ERASURE = frozenset({"via", "request_id", "webhook_event_id", "notice_version", "file", "line",
                                      "form", "demo"})


def erase_contact(session: Session, contact_id: int) -> None:
    """Erasure step: the person's consent events stay, as the evidence of when each consent
    was given or withdrawn (purpose, action, source, time, notice version) that the law asks
    us to keep; their evidence loses what identifies the person. The actor is kept: it is
    the staff member or integration that recorded the decision, never the person."""
    redacted: dict[str, list[int]] = {}
    rows = session.execute(select(ConsentEvent.id, ConsentEvent.evidence).where(ConsentEvent.contact_id == contact_id))
    for event_id, evidence in rows:
        kept = {k: v for k, v in (evidence or {}).items() if k in EVIDENCE_KEPT_ON_ERASURE} | {"erased": True}
        redacted.setdefault(json.dumps(kept, sort_keys=True, default=str), []).append(event_id)
    table = ConsentEvent.__table__
    for evidence_json, ids in redacted.items():
        session.execute(update(ConsentEvent).where(ConsentEvent.id.in_(ids))
                        .values(blanked(table, keep=["actor"], evidence=json.loads(evidence_json))))


# --- reading ----------------------------------------------------------------------------

def status(session: Session, *, contact_id: int) -> dict[str, dict[str, Any]]:
    """Current state of every configured purpose for one contact ('none' when never decided)."""
    rows = session.execute(
        select(Purpose, ConsentState)
        .outerjoin(
            ConsentState,
            (ConsentState.purpose_id == Purpose.id) & (ConsentState.contact_id == contact_id),
        )
        .where(Purpose.active)
        .order_by(Purpose.code)
    ).all()
    return {
        purpose.code: {
            "state": state.state if state else NONE,
            "lawful_basis": purpose.lawful_basis,
            "notice_version": state.notice_version if state else purpose.notice_version,
            "changed_at": state.changed_at if state else None,
        }
        for purpose, state in rows
    }


def history(
    session: Session, *, contact_id: int, limit: int = 100, offset: int = 0
) -> tuple[list[tuple[ConsentEvent, str]], int]:
    total = session.scalar(
        select(func.count()).select_from(ConsentEvent).where(ConsentEvent.contact_id == contact_id)
    ) or 0
    rows = session.execute(
        select(ConsentEvent, Purpose.code)
        .join(Purpose, Purpose.id == ConsentEvent.purpose_id)
        .where(ConsentEvent.contact_id == contact_id)
        .order_by(ConsentEvent.occurred_at.desc(), ConsentEvent.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [(event, code) for event, code in rows], total


def sync_from_config(session: Session, config_dir: Path | None) -> list[Purpose]:
    """Load purposes.yaml (the brand's in CONFIG_DIR, else the shipped one) and sync it;
    run by `db upgrade` and at every start."""
    return sync_purposes(session, load_purpose_file(defaults.path("purposes.yaml", config_dir)))
