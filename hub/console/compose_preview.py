"""What an agent's pop-up will show for a compose form, as plain text for the console's preview."""

from __future__ import annotations

from dataclasses import dataclass

from hub.console.compose_form import SEVERITIES, ComposeForm
from hub.storage import Store
from hub.storage.content import ContentKind

# The client's pop-up words and limits (client/ui/text.py): the preview must read as the pop-up.
DRILL_BANNER = "DRILL: no action with real patients"
TITLE_SHOWN_MAX = 200
BODY_SHOWN_MAX = 10_000
# The client drops explicit bidi embeddings, overrides and isolates from every alert text
# (client/ui/bidi.py), so an override cannot make one instruction read as another.
_BIDI_CONTROLS = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))


@dataclass(frozen=True)
class LinkedItem:
    """A playbook or template the alert links: its id and title, or found False."""

    id: str
    title: str
    found: bool


@dataclass(frozen=True)
class PopupPreview:
    """The pop-up's parts: every text plain, as the agent will read it."""

    severity: str
    # One of SEVERITIES, or "none": safe to use as a style name.
    severity_key: str
    drill: bool
    drill_banner: str
    title: str
    body: str
    playbook: LinkedItem | None
    templates: list[LinkedItem]
    notes: list[str]

    @property
    def empty(self) -> bool:
        """Whether nothing has been typed yet."""
        return not (self.title or self.body)


def popup_preview(store: Store, form: ComposeForm) -> PopupPreview:
    """The pop-up the form's alert would open on an agent's computer."""
    notes = []
    title = _shown(form.title, TITLE_SHOWN_MAX)
    body = _shown(form.body, BODY_SHOWN_MAX)
    if title != form.title.strip() or body != form.body.strip():
        notes.append(
            "Bidi control characters (such as U+202E) or text past the limit are left out: "
            "the pop-up never shows them."
        )
    playbook = _linked(store, "playbook", form.playbook_id) if form.playbook_id else None
    templates = [_linked(store, "template", item) for item in form.template_ids]
    known = form.severity in SEVERITIES
    return PopupPreview(
        severity=form.severity.capitalize() if known else "No severity chosen",
        severity_key=form.severity if known else "none",
        drill=form.drill,
        drill_banner=DRILL_BANNER,
        title=title,
        body=body,
        playbook=playbook,
        templates=templates,
        notes=notes,
    )


def content_title(store: Store, kind: ContentKind, item_id: str) -> str | None:
    """The title of a live playbook or template, or None when the hub has no such item."""
    item = store.content.get(kind, item_id)
    if item is None or item.deleted or item.data is None:
        return None
    title = item.data.get("title")
    return _shown(title, TITLE_SHOWN_MAX) if isinstance(title, str) and title else item.id


def _linked(store: Store, kind: ContentKind, item_id: str) -> LinkedItem:
    title = content_title(store, kind, item_id)
    if title is None:
        return LinkedItem(item_id, f"No {kind} {item_id!r} on this hub", found=False)
    return LinkedItem(item_id, title, found=True)


def _shown(text: str, limit: int) -> str:
    return text.translate(_BIDI_CONTROLS).strip()[:limit]
