"""How `vigil alerts` and `vigil alert ID` put alerts on a terminal or into JSON.

Hub text (titles, update texts, device names) is untrusted: on a terminal, control characters
(which could move the cursor or recolour the screen) and bidi overrides (which could reorder what
is read) are shown as U+FFFD, line breaks as spaces; JSON escapes everything itself.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any

from client.core.answers import AlertAnswer
from client.core.models import Alert, AlertUpdate

DRILL_NOTICE = "DRILL: no action with real patients"
# U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C: what reorders or hides text.
_BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)
# A summary line shows this much of an update's text; `vigil alert ID` shows all of it.
SUMMARY_CHARS = 200


def terminal_text(text: str) -> str:
    """`text` safe to print on a terminal: one line, no control or bidi characters."""
    out: list[str] = []
    for char in text:
        if char in "\n\r\t":
            out.append(" ")
        elif char in _BIDI_CONTROLS or unicodedata.category(char) == "Cc":
            out.append("\ufffd")
        else:
            out.append(char)
    return "".join(out)


def _elided(text: str, limit: int = SUMMARY_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _overdue(alert: Alert, now: datetime) -> bool:
    if alert.is_closed or alert.next_update_by is None:
        return False
    try:
        due = datetime.fromisoformat(alert.next_update_by)
    except ValueError:
        return False
    if due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    return due < now


def _update_heading(update: AlertUpdate) -> str:
    kinds = {"update": f"Update {update.number}", "resolved": "Resolved", "retracted": "Retracted"}
    parts = [kinds.get(update.kind, update.kind), update.at]
    if update.by:
        parts.append(f"by {update.by}")
    if update.severity:
        parts.append(f"severity {update.severity}")
    if update.title:
        parts.append(f"title {update.title!r}")
    return terminal_text(" · ".join(parts))


def _next_update(alert: Alert, now: datetime) -> str | None:
    if alert.is_closed or alert.next_update_by is None:
        return None
    line = f"next update by {terminal_text(alert.next_update_by)}"
    return line + " (overdue)" if _overdue(alert, now) else line


def summary_lines(alert: Alert, answer: str, now: datetime) -> list[str]:
    """An alert in the `vigil alerts` list: a heading, then what is known of it."""
    drill = "DRILL  " if alert.drill else ""
    lines = [
        f"{terminal_text(alert.issued_at)}  {alert.severity:<8}  {alert.status.upper()}  {drill}"
        f"{terminal_text(alert.title)}",
        f"  id {terminal_text(alert.id)}  playbook {terminal_text(alert.playbook_id or '-')}  "
        f"revision {alert.revision}  {terminal_text(answer)}",
    ]
    if alert.drill:
        lines.append(f"  {DRILL_NOTICE}")
    if alert.updates:
        latest = alert.updates[-1]
        lines.append(f"  {_update_heading(latest)}: {_elided(terminal_text(latest.text))}")
    next_update = _next_update(alert, now)
    if next_update:
        lines.append(f"  {next_update}")
    return lines


def detail_lines(alert: Alert, answer: str, now: datetime) -> list[str]:
    """One alert in full for `vigil alert ID`, with every update in order."""
    lines = [
        f"{terminal_text(alert.title)}",
        f"{alert.severity} · {alert.status.upper()} · revision {alert.revision}",
    ]
    if alert.drill:
        lines.append(DRILL_NOTICE)
    lines += [
        f"id {alert.id}",
        f"issued {alert.issued_at}"
        + (f" by {terminal_text(alert.issued_by)}" if alert.issued_by else ""),
        f"playbook {terminal_text(alert.playbook_id or '-')}",
        f"answer: {terminal_text(answer)}",
    ]
    next_update = _next_update(alert, now)
    if next_update:
        lines.append(next_update)
    lines += ["", terminal_text(alert.body)]
    for update in alert.updates:
        lines += ["", _update_heading(update), f"  {terminal_text(update.text)}"]
        lines += [f"  link {terminal_text(link)}" for link in update.links]
        if update.next_update_by:
            lines.append(f"  next update by {terminal_text(update.next_update_by)}")
    return lines


def alert_json(alert: Alert, answer: AlertAnswer, now: datetime) -> dict[str, Any]:
    """The alert as the hub sent it, plus revision, overdue and this user's answer."""
    return {
        **alert.to_json(),
        "revision": alert.revision,
        "update_overdue": _overdue(alert, now),
        "answer": {
            "state": answer.state,
            "action": answer.action,
            "reason": answer.reason,
            "device_name": answer.device_name,
        },
    }
