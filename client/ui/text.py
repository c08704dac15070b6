"""Safe text for widgets: search snippets as escaped rich text, eliding, and local times.

Content and alert text is untrusted. Everything goes to Qt as plain text except search snippets,
whose rich text is built here only: every piece is escaped first, then marked parts get <b>.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from client.core.content import highlight_parts, strip_markers
from client.core.models import Alert, AlertUpdate
from client.ui.bidi import without_bidi_controls

if TYPE_CHECKING:
    from PySide6.QtWidgets import QLabel

ELLIPSIS = "…"
_WHITESPACE = re.compile(r"\s+")
# The hub refuses longer alert titles and bodies. Longer text (from a broken or hostile hub) is cut
# before it reaches a widget: laying out a megabyte of text freezes the UI for many seconds.
TITLE_SHOWN_MAX = 200
BODY_SHOWN_MAX = 10_000
TOOLTIP_MAX = 300


def snippet_html(snippet: str) -> str:
    """A search snippet as rich text: all text escaped, matched words in <b>, on one line."""
    pieces = []
    for text, marked in highlight_parts(snippet):
        # A stray marker inside a part (content faking one) is dropped, never shown or trusted.
        plain = without_bidi_controls(strip_markers(text))
        escaped = html.escape(_WHITESPACE.sub(" ", plain), quote=True)
        pieces.append(f"<b>{escaped}</b>" if marked else escaped)
    return "".join(pieces)


def search_hit_html(kind_label: str, title: str, snippet: str) -> str:
    """One search result as rich text: escaped title in bold, kind, then the snippet."""
    head = html.escape(one_line(without_bidi_controls(strip_markers(title))), quote=True)
    kind = html.escape(kind_label, quote=True)
    return f"<b>{head}</b> <small>({kind})</small><br>{snippet_html(snippet)}"


def snippet_plain(snippet: str) -> str:
    """A search snippet without its markers, on one line (for screen readers and tooltips)."""
    return one_line(strip_markers(snippet))


def one_line(text: str) -> str:
    """`text` with every run of whitespace (newlines included) turned into one space."""
    return " ".join(text.split())


def elide(text: str, max_chars: int) -> str:
    """`text` on one line, cut to at most `max_chars` characters with an ellipsis when longer."""
    line = one_line(text)
    if len(line) <= max_chars:
        return line
    return line[: max(max_chars - 1, 0)].rstrip() + ELLIPSIS


def cut(text: str, max_chars: int) -> str:
    """`text` unchanged when it has at most `max_chars` characters, else cut with an ellipsis."""
    if len(text) <= max_chars:
        return text
    return text[: max(max_chars - 1, 0)] + ELLIPSIS


def plain_tooltip(text: str) -> str:
    """Untrusted text as a tooltip that shows it literally, cut short and without bidi controls.

    Qt renders a tooltip that looks like HTML as rich text (it would load an <img src=...>), so
    such text is escaped inside a paragraph that keeps its line breaks; other text stays as is.
    """
    # Qt's namespace takes about 10 ms to load: the tray icon, which uses this module, does not
    # wait for it; the first window that needs it loads it.
    from PySide6.QtGui import Qt as GuiQt

    shown = without_bidi_controls(cut(text, TOOLTIP_MAX))
    # The same test QToolTip applies (it lives in QtGui's Qt namespace, not QtCore's).
    if not GuiQt.mightBeRichText(shown):
        return shown
    return f"<p style='white-space:pre-wrap'>{html.escape(shown, quote=True)}</p>"


def shown(text: str, max_chars: int) -> str:
    """Untrusted text as a widget shows it: cut to `max_chars`, explicit bidi controls removed
    (an override would show "fdp.exe" as "exe.pdf" and reverse the words after it)."""
    return cut(without_bidi_controls(text), max_chars)


def ago_text(when: datetime, now: datetime) -> str:
    """How long ago `when` was, in words: "just now", "12 min ago", "3 h ago", "2 days ago"."""
    seconds = (now - when).total_seconds()
    if seconds < 60:
        # A time ahead of this computer's clock (or a hub's skew) reads as just now.
        return "just now"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min ago"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h ago"
    return f"{hours // 24} days ago"


def local_time(when: datetime, tz: tzinfo | None = None) -> str:
    """The clock time of `when` in the local zone (or `tz`), e.g. "10:42"."""
    return f"{when.astimezone(tz):%H:%M}"


def local_when(when: datetime, now: datetime, tz: tzinfo | None = None) -> str:
    """ "10:42" when `when` is today (local), else "26 Nov 10:42"."""
    local = when.astimezone(tz)
    if local.date() == now.astimezone(tz).date():
        return f"{local:%H:%M}"
    return f"{local.day} {local:%b %H:%M}"


def parse_timestamp(text: str | None) -> datetime | None:
    """An RFC 3339 time from the hub (e.g. "2026-11-27T10:42:00Z"), or None when absent or bad."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def plain_label(text: str = "", *, name: str = "", wrap: bool = True) -> QLabel:
    """A selectable QLabel that never interprets its text as markup."""
    from PySide6.QtCore import Qt  # on first use, as in plain_tooltip
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(wrap)
    label.setText(text)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if name:
        label.setObjectName(name)
    return label


def section_heading(text: str) -> QLabel:
    """A bold heading over a section of a view (fixed words, not content)."""
    label = plain_label(text, name="Subheading", wrap=False)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    label.setContentsMargins(0, 8, 0, 0)
    return label


# Incidents: fixed words every screen uses, so a drill or a retraction reads the same everywhere.
DRILL_BANNER = "DRILL: no action with real patients"
RETRACTED_NOTICE = "RETRACTED: sent in error, disregard"
UPDATE_TEXT_SHOWN_MAX = 10_000
LINK_SHOWN_MAX = 2_000
LINKS_SHOWN = 10


def safe_local_time(text: str | None, now: datetime, tz: tzinfo | None = None) -> str | None:
    """A hub time as "10:42" (today) or "26 Nov 10:42"; None when absent or unreadable.

    A time at year 1 or 9999 overflows when moved to a zone behind or ahead of UTC: it is then
    shown in UTC rather than dropped or raised.
    """
    when = parse_timestamp(text)
    if when is None:
        return None
    try:
        return local_when(when, now, tz)
    except (OverflowError, ValueError):
        return f"{when.day} {when:%b %Y %H:%M} UTC"


def next_update_text(alert: Alert, now: datetime, tz: tzinfo | None = None) -> str:
    """ "Next update by 10:42", "Update overdue (was due by 10:42)", or "" (none promised, or
    the alert is closed)."""
    if alert.is_closed or not alert.next_update_by:
        return ""
    due = parse_timestamp(alert.next_update_by)
    clock = safe_local_time(alert.next_update_by, now, tz)
    if due is None or clock is None:
        return f"Next update by {shown(alert.next_update_by, 40)} (time unreadable)"
    if due <= now:
        return f"Update overdue (was due by {clock})"
    return f"Next update by {clock}"


def latest_update(alert: Alert) -> AlertUpdate | None:
    """The alert's newest change, or None when it was never changed."""
    return alert.updates[-1] if alert.updates else None


def closing_note(alert: Alert) -> str:
    """The note of the change that resolved or retracted the alert ("" while open)."""
    for update in reversed(alert.updates):
        if update.kind == alert.status:
            return update.text
    return ""


def severity_before(alert: Alert, update: AlertUpdate) -> str | None:
    """The alert's severity just before `update`; None when no longer known.

    The alert carries only its current severity: an earlier change that set one says what it
    was; with none, the first publish's severity is the current one only if no change set any.
    """
    earlier = [u.severity for u in alert.updates if u.number < update.number and u.severity]
    if earlier:
        return earlier[-1]
    if any(u.severity for u in alert.updates):
        return None
    return alert.severity


def update_heading(
    alert: Alert, update: AlertUpdate, now: datetime, known_before: str | None = None
) -> str:
    """ "Update 2 · 10:42 · by dora · severity Major → Critical", every part plain text.

    `known_before`: the severity this computer last showed, for when the alert cannot tell.
    """
    kind = {"update": "Update", "resolved": "Resolved", "retracted": "Retracted"}[update.kind]
    parts = [f"{kind} {update.number}" if update.kind == "update" else kind]
    parts.append(safe_local_time(update.at, now) or "at an unknown time")
    if update.by:
        parts.append(f"by {shown(update.by, 100)}")
    if update.severity:
        before = severity_before(alert, update) or known_before
        if before is None:
            parts.append(f"severity now {update.severity.capitalize()}")
        elif before != update.severity:
            parts.append(f"severity {before.capitalize()} → {update.severity.capitalize()}")
    if update.title:
        parts.append(f"title now: {elide(shown(update.title, TITLE_SHOWN_MAX), 80)}")
    return " · ".join(parts)


def opens_as_link(url: str) -> bool:
    """Whether a link from the hub may be opened: https with a host, nothing else (no file:,
    javascript:, custom schemes or http)."""
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return (
        sep == "://"
        and scheme.lower() == "https"
        and bool(host)
        and not any(ch.isspace() or ord(ch) < 32 for ch in url)
        and without_bidi_controls(url) == url
    )


def drill_title(title: str) -> str:
    """A title with the drill marking in front of it, for notification summaries."""
    return f"{DRILL_BANNER} · {title}"
