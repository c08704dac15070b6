"""POST /v1/readiness: an agent's device reports its shift-readiness self-test; the hub keeps the
latest per device, the device taken from the access token's sign-in."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from hub.clock import rfc3339
from hub.deps import AccessGrantDep, AgentUser, SettingsDep, StoreDep
from hub.errors import ApiError, error_responses
from hub.routes.acks import ACK_CLOCK_SKEW_SECONDS
from hub.storage.readiness import UnknownDevice

router = APIRouter()

CHECK_NAMES = (
    "vpn",
    "hub",
    "stream",
    "notifications",
    "audio",
    "clock_skew",
    "cache_age",
    "pending_acks",
)
DETAIL_MAX = 300
# Explicit bidi controls: a detail shown in a dispatcher's list must not reorder what follows it.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


class ReadinessCheck(BaseModel):
    """One check's outcome and the sentence a person reads."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "warn", "fail"]
    detail: str


class ReadinessReport(BaseModel):
    """The request body; names, details and ran_at are checked below to say where they fail."""

    model_config = ConfigDict(extra="forbid")

    ran_at: str
    checks: dict[str, ReadinessCheck]


@router.post("/v1/readiness", responses=error_responses(401, 403, 413, 422))
def post_readiness(
    report: ReadinessReport,
    store: StoreDep,
    settings: SettingsDep,
    user: AgentUser,
    grant: AccessGrantDep,
) -> dict[str, Any]:
    """Keep this device's latest self-test; answers whether it is ready and the hub's time."""
    checks = _checks(report.checks)
    now = settings.clock.now()
    ran_at = _ran_at(report.ran_at, now)
    try:
        store.readiness.record(user.username, grant.family_id, ran_at, checks)
    except UnknownDevice:
        raise ApiError(
            401,
            "token_invalid",
            "This sign-in has ended; sign in again.",
            {"WWW-Authenticate": "Bearer"},
        ) from None
    ready = all(check["status"] != "fail" for check in checks.values())
    return {"ready": ready, "hub_time": rfc3339(now)}


def _checks(checks: dict[str, ReadinessCheck]) -> dict[str, dict[str, str]]:
    if not checks:
        raise _invalid(f"checks: name at least one check ({', '.join(CHECK_NAMES)}).")
    unknown = [name for name in checks if name not in CHECK_NAMES]
    if unknown:
        shown = ", ".join(_quoted(name) for name in unknown[:5])
        raise _invalid(f"checks: unknown check {shown}; the checks are {', '.join(CHECK_NAMES)}.")
    for name, check in checks.items():
        _check_detail(name, check.detail)
    return {
        name: {"status": check.status, "detail": check.detail} for name, check in checks.items()
    }


def _check_detail(name: str, detail: str) -> None:
    where = f"checks.{name}.detail"
    if not detail.strip():
        raise _invalid(f"{where}: say in a sentence what the check found.")
    if len(detail) > DETAIL_MAX:
        raise _invalid(f"{where}: at most {DETAIL_MAX} characters, not {len(detail):,}.")
    for char in detail:
        if char in _BIDI_CONTROLS or unicodedata.category(char) == "Cc":
            raise _invalid(
                f"{where}: holds the control character U+{ord(char):04X}; a detail is one line "
                "of plain text."
            )


def _ran_at(text: str, now: float) -> float:
    shown = _quoted(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(
            f"ran_at: {shown} is not an RFC 3339 time such as 2026-11-27T10:42:00.123Z."
        ) from None
    if moment.tzinfo is None:
        raise _invalid(f"ran_at: {shown} has no time zone (end it with Z for UTC).")
    try:
        ran_at = moment.timestamp()
    except (OverflowError, ValueError):
        ran_at = float("inf")
    skew = ACK_CLOCK_SKEW_SECONDS
    if not abs(ran_at - now) <= skew:
        raise _invalid(
            f"ran_at: {shown} is more than {skew // 3600} hours from the hub's time "
            f"({rfc3339(now)}); check this computer's clock and time zone."
        )
    return ran_at


def _quoted(text: str) -> str:
    # repr() escapes control and bidi characters, so a hostile value cannot rewrite the line it
    # is shown on; a huge one is cut.
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _invalid(detail: str) -> ApiError:
    return ApiError(422, "invalid_readiness", detail)
