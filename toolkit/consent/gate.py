"""The consent gate: which of these contacts may we process for this purpose on this channel?

Set-based and Core-only, so that a campaign over a million contacts is one query, not a
million, and never a million bind parameters: `contact_ids` may be a list or any SQL
selectable of contact ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Union

from sqlalchemy import ColumnElement, Select, and_, any_, exists, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import bindparam

from toolkit.consent.models import ConsentState, Purpose, Suppression
from toolkit.contacts.models import Contact, ContactIdentity
from toolkit.kit.errors import InvalidInput

ContactIds = Union[Iterable[int], Select]
Restriction = Callable[[ColumnElement[int]], ColumnElement[bool]]

# Refusals: a consent purpose needs a grant; any other basis passes unless refused.
REFUSED_STATES = ("withdrawn", "objected")
SQLITE_CHUNK = 10_000


class UnknownGatePurpose(InvalidInput):
    code = "unknown_purpose"


def _purpose(session: Session, code: str) -> tuple[int, str]:
    row = session.execute(
        select(Purpose.id, Purpose.lawful_basis).where(Purpose.code == code, Purpose.active)
    ).first()
    if row is None:
        raise UnknownGatePurpose(f"unknown purpose {code!r}")
    return row.id, row.lawful_basis


def allowed_select(
    restrict: Restriction | None,
    *,
    purpose_id: int,
    lawful_basis: str,
    channel: str | None,
) -> Select:
    """The gate as a SELECT of contact ids, for INSERT ... SELECT fan-outs.

    `restrict` turns the contact-id column into the caller's IN/ANY condition (None: all).
    """
    identity = ContactIdentity.__table__.alias("gate_identity")
    state = ConsentState.__table__
    not_suppressed = ~exists().where(Suppression.hash == identity.c.external_hash)

    if channel is not None:
        # Erasure deletes a contact's identities, so a live identity implies a live contact.
        eligible_identity = and_(
            identity.c.channel == channel, identity.c.blocked_at.is_(None), not_suppressed
        )
    else:
        eligible_identity = None

    if lawful_basis == "consent":
        stmt = select(state.c.contact_id).where(
            state.c.purpose_id == purpose_id, state.c.state == "granted"
        )
        subject = state.c.contact_id
        if eligible_identity is not None:
            stmt = stmt.where(
                exists().where(identity.c.contact_id == state.c.contact_id, eligible_identity)
            )
        else:
            stmt = stmt.join(Contact.__table__, Contact.id == state.c.contact_id).where(
                Contact.erased_at.is_(None),
                ~exists().where(identity.c.contact_id == state.c.contact_id, ~not_suppressed),
            )
    else:
        refused = exists().where(
            state.c.contact_id == (identity.c.contact_id if channel else Contact.id),
            state.c.purpose_id == purpose_id,
            state.c.state.in_(REFUSED_STATES),
        )
        if eligible_identity is not None:
            stmt = select(identity.c.contact_id).where(eligible_identity, ~refused).distinct()
            subject = identity.c.contact_id
        else:
            stmt = select(Contact.id).where(
                Contact.erased_at.is_(None),
                ~refused,
                ~exists().where(identity.c.contact_id == Contact.id, ~not_suppressed),
            )
            subject = Contact.__table__.c.id
    if restrict is not None:
        stmt = stmt.where(restrict(subject))
    return stmt


def allowed(
    session: Session, contact_ids: ContactIds, *, purpose: str, channel: str | None
) -> set[int]:
    """The subset of `contact_ids` that may be processed for `purpose` on `channel`.

    `channel=None` asks about processing that sends nothing (profiling, exports): the
    contact must not be erased and none of its identities suppressed.
    """
    purpose_id, lawful_basis = _purpose(session, purpose)

    def build(restrict: Restriction) -> Select:
        return allowed_select(restrict, purpose_id=purpose_id, lawful_basis=lawful_basis, channel=channel)

    if isinstance(contact_ids, Select):
        subquery = contact_ids.scalar_subquery()
        return set(session.execute(build(lambda col: col.in_(subquery))).scalars())

    ids = list({int(i) for i in contact_ids})
    if not ids:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        # One array parameter instead of one bind parameter per id.
        param = bindparam("gate_ids", ids, type_=postgresql.ARRAY(postgresql.BIGINT))
        return set(session.execute(build(lambda col: col == any_(param))).scalars())
    result: set[int] = set()
    for start in range(0, len(ids), SQLITE_CHUNK):
        chunk = ids[start : start + SQLITE_CHUNK]
        result.update(session.execute(build(lambda col, c=chunk: col.in_(c))).scalars())
    return result

