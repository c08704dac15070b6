"""Data shapes of the protocol as the client sees them, parsed strictly from the hub's JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from client.core.errors import BadResponse

SEVERITIES = ("info", "minor", "major", "critical")
ALERT_STATUSES = ("open", "resolved", "retracted")
UPDATE_KINDS = ("update", "resolved", "retracted")


def _field(raw: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = raw.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise BadResponse(f"The hub sent {what} with a missing or malformed '{name}'.")
    return value


@dataclass(frozen=True)
class AlertUpdate:
    """One numbered change to an alert: an update, its resolution or its retraction."""

    number: int
    kind: str
    at: str
    by: str | None
    text: str
    severity: str | None
    title: str | None
    links: tuple[str, ...]
    next_update_by: str | None

    @classmethod
    def from_json(cls, raw: Any) -> AlertUpdate:
        """Parse one item of an alert's `updates`; BadResponse when it does not match."""
        if not isinstance(raw, dict):
            raise BadResponse("The hub sent an alert update that is not a JSON object.")
        kind = _field(raw, "kind", str, "an alert update")
        if kind not in UPDATE_KINDS:
            raise BadResponse(f"The hub sent an alert update of unknown kind {kind!r}.")
        severity = raw.get("severity")
        if severity is not None and severity not in SEVERITIES:
            raise BadResponse(f"The hub sent an alert update with severity {severity!r}.")
        links = raw.get("links") or []
        if not isinstance(links, list) or not all(isinstance(link, str) for link in links):
            raise BadResponse("The hub sent an alert update with malformed 'links'.")
        optional = {name: raw.get(name) for name in ("by", "title", "next_update_by")}
        for name, value in optional.items():
            if value is not None and not isinstance(value, str):
                raise BadResponse(f"The hub sent an alert update with a malformed '{name}'.")
        return cls(
            number=_field(raw, "number", int, "an alert update"),
            kind=kind,
            at=_field(raw, "at", str, "an alert update"),
            by=optional["by"],
            text=_field(raw, "text", str, "an alert update"),
            severity=severity,
            title=optional["title"],
            links=tuple(links),
            next_update_by=optional["next_update_by"],
        )

    def to_json(self) -> dict[str, Any]:
        """The protocol's JSON shape of this update."""
        return {
            "number": self.number,
            "kind": self.kind,
            "at": self.at,
            "by": self.by,
            "text": self.text,
            "severity": self.severity,
            "title": self.title,
            "links": list(self.links),
            "next_update_by": self.next_update_by,
        }


@dataclass(frozen=True)
class Alert:
    """A crisis alert in its latest state; `seq` is the seq of its latest change.

    The fields after `issued_by` came with incidents; a hub without them sends none, and the
    defaults describe what such an alert is: open, live, never updated.
    """

    id: str
    seq: int
    severity: str
    title: str
    body: str
    playbook_id: str | None
    template_ids: tuple[str, ...]
    requires_ack: bool
    issued_at: str
    expires_at: str | None
    issued_by: str | None
    status: str = "open"
    drill: bool = False
    next_update_by: str | None = None
    updated_at: str | None = None
    updates: tuple[AlertUpdate, ...] = ()

    @property
    def revision(self) -> int:
        """How many changes the alert has had (0: as first published)."""
        return len(self.updates)

    @property
    def is_closed(self) -> bool:
        """Resolved or retracted: no pop-up, reminder or answer is asked for any more."""
        return self.status != "open"

    @classmethod
    def from_json(cls, raw: Any) -> Alert:
        """Parse one alert object; raise BadResponse when it does not match the protocol."""
        if not isinstance(raw, dict):
            raise BadResponse("The hub sent an alert that is not a JSON object.")
        severity = _field(raw, "severity", str, "an alert")
        if severity not in SEVERITIES:
            raise BadResponse(f"The hub sent an alert with an unknown severity {severity!r}.")
        template_ids = raw.get("template_ids") or []
        if not isinstance(template_ids, list) or not all(isinstance(t, str) for t in template_ids):
            raise BadResponse("The hub sent an alert with malformed 'template_ids'.")
        playbook_id = raw.get("playbook_id")
        expires_at = raw.get("expires_at")
        issued_by = raw.get("issued_by")
        for name, value in (
            ("playbook_id", playbook_id),
            ("expires_at", expires_at),
            ("issued_by", issued_by),
        ):
            if value is not None and not isinstance(value, str):
                raise BadResponse(f"The hub sent an alert with a malformed '{name}'.")
        requires_ack = raw.get("requires_ack", True)
        if not isinstance(requires_ack, bool):
            raise BadResponse("The hub sent an alert with a malformed 'requires_ack'.")
        status = raw.get("status", "open")
        if status not in ALERT_STATUSES:
            raise BadResponse(f"The hub sent an alert with an unknown status {status!r}.")
        drill = raw.get("drill", False)
        if not isinstance(drill, bool):
            raise BadResponse("The hub sent an alert with a malformed 'drill'.")
        times = {name: raw.get(name) for name in ("next_update_by", "updated_at")}
        for name, value in times.items():
            if value is not None and not isinstance(value, str):
                raise BadResponse(f"The hub sent an alert with a malformed '{name}'.")
        updates = raw.get("updates") or []
        if not isinstance(updates, list):
            raise BadResponse("The hub sent an alert with malformed 'updates'.")
        return cls(
            id=_field(raw, "id", str, "an alert"),
            seq=_field(raw, "seq", int, "an alert"),
            severity=severity,
            title=_field(raw, "title", str, "an alert"),
            body=_field(raw, "body", str, "an alert"),
            playbook_id=playbook_id,
            template_ids=tuple(template_ids),
            requires_ack=requires_ack,
            issued_at=_field(raw, "issued_at", str, "an alert"),
            expires_at=expires_at,
            issued_by=issued_by,
            status=status,
            drill=drill,
            next_update_by=times["next_update_by"],
            updated_at=times["updated_at"],
            updates=tuple(AlertUpdate.from_json(update) for update in updates),
        )

    def to_json(self) -> dict[str, Any]:
        """The protocol's JSON shape of this alert."""
        return {
            "id": self.id,
            "seq": self.seq,
            "severity": self.severity,
            "title": self.title,
            "body": self.body,
            "playbook_id": self.playbook_id,
            "template_ids": list(self.template_ids),
            "requires_ack": self.requires_ack,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "issued_by": self.issued_by,
            "status": self.status,
            "drill": self.drill,
            "next_update_by": self.next_update_by,
            "updated_at": self.updated_at,
            "updates": [update.to_json() for update in self.updates],
        }
