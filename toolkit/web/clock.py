"""The product's clock over HTTP, for a demo or a browser test that needs another day or
hour (quiet hours, schedules, business hours). Mounted only with the LINE sandbox on, and
only an admin may move it; production refuses both the sandbox and a moved clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, model_validator

from toolkit.auth.deps import api_permission
from toolkit.auth.service import Actor
from toolkit.kit import clock
from toolkit.kit.errors import InvalidInput

router = APIRouter(prefix="/api/v1/clock", tags=["clock"])
ClockSetter = Annotated[Actor, Depends(api_permission("clock.set"))]


class ClockRead(BaseModel):
    now: datetime
    offset_s: float = Field(description="seconds ahead of the machine's time (negative: behind)")
    frozen: bool


class ClockSet(BaseModel):
    """One of: `at` (the time it is now; `frozen` stops it there), `offset_s`, or `real`."""

    at: datetime | None = None
    frozen: bool = False
    offset_s: float | None = Field(default=None, ge=-10 * 366 * 86400, le=10 * 366 * 86400)
    real: bool = False

    @model_validator(mode="after")
    def _one_setting(self) -> "ClockSet":
        given = [self.at is not None, self.offset_s is not None, self.real]
        if sum(given) != 1:
            raise ValueError("give exactly one of at, offset_s or real")
        return self


def _read() -> ClockRead:
    now = clock.utcnow()
    return ClockRead(now=now, offset_s=(now - clock.real_utcnow()).total_seconds(),
                     frozen=clock.state().frozen_at is not None)


@router.get("", response_model=ClockRead, summary="Read the product's clock")
def read_clock(_actor: ClockSetter) -> ClockRead:
    return _read()


@router.put("", response_model=ClockRead, summary="Move the product's clock (sandbox only)",
            responses={422: {"description": "not one setting, or a time without a UTC offset"}})
def set_clock(data: ClockSet, _actor: ClockSetter) -> ClockRead:
    if data.real:
        clock.set_state(clock.REAL_TIME)
    elif data.offset_s is not None:
        clock.set_state(clock.ClockState(offset=timedelta(seconds=data.offset_s)))
    else:
        assert data.at is not None
        if data.at.tzinfo is None:
            raise InvalidInput("at needs a UTC offset, e.g. 2026-12-24T20:00:00+08:00")
        clock.set_time(data.at, frozen=data.frozen)
    return _read()
