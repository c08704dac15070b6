"""Data shapes of the protocol as the client sees them, parsed strictly from the hub's JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from client.core.errors import BadResponse

SEVERITIES = ("info", "minor", "major", "critical")


def _field(raw: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = raw.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise BadResponse(f"The hub sent {what} with a missing or malformed '{name}'.")
    return value


@dataclass(frozen=True)
class Alert:
    """A crisis alert as published by a dispatcher."""

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
        }
