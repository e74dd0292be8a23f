"""Building blocks shared by definition models: delays, time-of-day windows, identifiers."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

DefinitionId = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$"),
    Field(description="Stable ID: lower-case letters, digits and dashes, e.g. no-show-follow-up"),
]
StepId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]

_DELAY_PART = re.compile(r"(\d+)\s*(d|h|m|s)")
_DELAY_FULL = re.compile(r"^\s*(?:\d+\s*[dhms]\s*)+$")


def content_checks_apply() -> bool:
    """Checks that read outside data (template parser, time-zone and holiday tables) run when a
    definition is validated or applied, not when a workflow decodes its input: the copy in the
    input was checked when it was stored, and replaying history must not depend on the versions
    of those libraries."""
    from temporalio import workflow

    return not (workflow.in_workflow() or workflow.unsafe.in_sandbox())


class StrictModel(BaseModel):
    """Definitions reject unknown keys: a typo must not silently do nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Delay(StrictModel):
    """How long after the previous step. Whole days keep the local time of day; hours, minutes
    and seconds are elapsed time. Written as ``2d``, ``1d 4h``, ``30m``, ``0`` or a mapping."""

    days: int = Field(default=0, ge=0, le=3650)
    hours: int = Field(default=0, ge=0, le=10000)
    minutes: int = Field(default=0, ge=0, le=100000)
    seconds: int = Field(default=0, ge=0, le=1000000)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            if value != 0:
                raise ValueError("a bare number is ambiguous; write a unit, e.g. 2d, 4h, 30m or 45s")
            return {}
        if isinstance(value, str):
            text = value.strip().lower()
            if text in ("0", "", "immediately", "none"):
                return {}
            if not _DELAY_FULL.match(text):
                raise ValueError(
                    f"{value!r} is not a delay; write days/hours/minutes/seconds like 2d, 1d 4h, 30m or 45s"
                )
            out: dict[str, int] = {}
            names = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
            for number, unit in _DELAY_PART.findall(text):
                out[names[unit]] = out.get(names[unit], 0) + int(number)
            return out
        return value

    @property
    def is_zero(self) -> bool:
        return not (self.days or self.hours or self.minutes or self.seconds)

    def __str__(self) -> str:
        parts = [f"{v}{u}" for v, u in ((self.days, "d"), (self.hours, "h"), (self.minutes, "m"), (self.seconds, "s")) if v]
        return " ".join(parts) or "0"


def _parse_time(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return dt.time.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a time of day; write HH:MM, e.g. 08:30") from exc
    if isinstance(value, int):  # YAML 1.1 reads 08:30 as sexagesimal minutes
        return dt.time(value // 60, value % 60)
    return value


class TimeWindow(StrictModel):
    """A daily window in local time: start inclusive, end exclusive."""

    start: dt.time
    end: dt.time

    @model_validator(mode="before")
    @classmethod
    def _times(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: _parse_time(v) if k in ("start", "end") else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _order(self) -> TimeWindow:
        if self.end <= self.start:
            raise ValueError(f"end {self.end:%H:%M} must be after start {self.start:%H:%M}")
        return self
