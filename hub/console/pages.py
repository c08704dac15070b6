"""Rendering console pages: the Jinja2 environment, its filters, and the common answers."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context

from hub.console.session import ConsoleSession

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)


def when(epoch_seconds: float | None) -> str:
    """A moment as the console shows it: '2026-12-03 14:05:09 UTC'; a dash for none."""
    if epoch_seconds is None:
        return "—"
    try:
        moment = datetime.fromtimestamp(epoch_seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return "—"
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    """A length of time in words: '45 s', '3 min 05 s', '2 h 10 min'."""
    if seconds is None or math.isnan(seconds):
        return "—"
    total = max(0, round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} days"


@pass_context
def ago(context: Context, epoch_seconds: float | None) -> str:
    """How long before the page's `now` a moment was: '3 min 05 s ago'; 'in 2 min' ahead."""
    if epoch_seconds is None:
        return "—"
    now = context.get("now")
    delta = (time.time() if now is None else float(now)) - epoch_seconds
    return f"{duration(delta)} ago" if delta >= 0 else f"in {duration(-delta)}"


templates.env.filters["when"] = when
templates.env.filters["duration"] = duration
templates.env.filters["ago"] = ago


def render(
    request: Request,
    template: str,
    session: ConsoleSession | None,
    *,
    status_code: int = 200,
    nav: str = "",
    **context: Any,
) -> HTMLResponse:
    """A console page: `template` with the session's user, CSRF token and navigation."""
    settings = request.app.state.settings
    values = {
        "session": session,
        "user": None if session is None else session.user,
        "csrf_token": "" if session is None else session.csrf_token,
        "is_admin": session is not None and session.is_admin,
        "nav": nav,
        "now": settings.clock.now(),
        **context,
    }
    return templates.TemplateResponse(request, template, values, status_code=status_code)


def see_other(url: str) -> RedirectResponse:
    """After a form post: go to `url` with a GET (303), so a reload never posts twice."""
    return RedirectResponse(url, status_code=303)
