"""`toolkit audit verify` against tampering done with raw SQL, as an attacker with
database access would do it."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.cli.helpers import run_cli
from toolkit.audit import service as audit


def append(session: Session, n: int) -> list[int]:
    rows = [audit.record(session, actor="test", action="test.event", target_type="thing", target_id=i,
                         details={"n": i, "note": "ünïcode"}) for i in range(n)]
    return [row.id for row in rows]


def edit_details(dialect: str) -> str:
    if dialect == "postgresql":
        return "UPDATE audit_log SET details = jsonb_set(details, '{n}', '99') WHERE id = :id"
    return "UPDATE audit_log SET details = json_set(details, '$.n', 99) WHERE id = :id"


TAMPERING = {
    "middle row altered": ("UPDATE audit_log SET actor = 'mallory' WHERE id = :id", 2, "altered"),
    "middle row deleted": ("DELETE FROM audit_log WHERE id = :id", 2, "missing"),
    "last rows deleted": ("DELETE FROM audit_log WHERE id >= :id", 3, "removed"),
    "details edited": (None, 2, "altered"),
    "prev_hash rewritten": ("UPDATE audit_log SET prev_hash = :zeros WHERE id = :id", 2, "does not follow"),
    "hash rewritten": ("UPDATE audit_log SET hash = :zeros WHERE id = :id", 2, "altered"),
    "timestamp moved": (
        "UPDATE audit_log SET occurred_at = (SELECT occurred_at FROM audit_log WHERE id = :first) WHERE id = :id",
        2, "altered"),
}


def test_intact_chain_exits_0(session: Session) -> None:
    append(session, 3)

    result = run_cli("audit", "verify")

    assert result.exit_code == 0, result
    assert "audit chain intact" in result.stdout


@pytest.mark.parametrize("case", TAMPERING)
def test_tampering_is_named_by_row(session: Session, dialect: str, case: str) -> None:
    sql, position, problem = TAMPERING[case]
    ids = append(session, 5)
    bad = ids[position]
    session.execute(text(sql or edit_details(dialect)), {"id": bad, "first": ids[0], "zeros": "0" * 64})

    result = run_cli("audit", "verify")

    assert result.exit_code == 1, result
    assert f"BROKEN at row {bad}:" in result.stderr
    assert problem in result.stderr
    assert "Traceback" not in result.stderr
