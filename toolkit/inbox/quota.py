"""The channel's monthly message quota and what this month has used, asked of LINE (or the
sandbox) through the LINE adapter, as staff need to read it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from toolkit.messaging import channel
from toolkit.messaging.channel import NoChannel
from toolkit.line.client import LineClient, SendResult

WARN_SHARE = 0.8  # warn from 80 % of the quota used
TIMEOUT_S = 5.0  # a page waits; LINE answers these reads in well under a second

# Why there are no numbers: no token configured, LINE not reached, or LINE said no.
NOT_CONFIGURED, UNREACHABLE, REFUSED = "not_configured", "unreachable", "refused"


@dataclass(frozen=True)
class QuotaReport:
    limit: int | None = None  # messages a month; None with no problem: LINE sets no limit
    used: int | None = None  # messages counted this month
    problem: str | None = None
    detail: str | None = None

    @property
    def share(self) -> float | None:
        if self.limit is None or self.used is None:
            return None
        return self.used / self.limit if self.limit > 0 else 1.0

    @property
    def percent(self) -> int | None:
        return None if self.share is None else int(self.share * 100)

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None or self.used is None else max(self.limit - self.used, 0)

    @property
    def warn(self) -> bool:
        return self.share is not None and self.share >= WARN_SHARE


def line_client() -> LineClient:
    return channel.line_client(timeout_s=TIMEOUT_S)


def _failed(result: SendResult) -> QuotaReport:
    if result.status == 0:
        return QuotaReport(problem=UNREACHABLE, detail=result.error)
    return QuotaReport(problem=REFUSED, detail=f"{result.status} {result.error or ''}".strip())


def read_quota(client: LineClient) -> QuotaReport:
    quota = client.quota()
    if quota.status != 200:
        return _failed(quota)
    consumption = client.quota_consumption()
    if consumption.status != 200:
        return _failed(consumption)
    kind = quota.body.get("type")
    limited = getattr(kind, "value", kind) == "limited"  # the SDK gives its QuotaType enum
    return QuotaReport(limit=int(quota.body.get("value") or 0) if limited else None,
                       used=int(consumption.body.get("totalUsage") or 0))


def check_quota(client_factory: Callable[[], LineClient] | None = None) -> QuotaReport:
    try:
        client = (client_factory or line_client)()
    except NoChannel as exc:
        return QuotaReport(problem=NOT_CONFIGURED, detail=str(exc))
    try:
        return read_quota(client)
    finally:
        client.close()
