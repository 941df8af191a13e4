"""Audit jobs: the nightly chain check, so tampering is noticed without anyone asking."""

from __future__ import annotations

import logging

from toolkit.audit import service
from toolkit.db import session_scope
from toolkit.kit.background import job

log = logging.getLogger(__name__)


@job("audit.verify_chain", cron="30 3 * * *")
def verify_chain() -> bool:
    with session_scope() as session:
        report = service.verify(session)
    if report.ok:
        log.info("audit chain intact (%d rows)", report.rows_checked)
    else:
        log.error("audit chain broken: %s", report.problem)
    return report.ok
