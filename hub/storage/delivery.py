"""Delivery receipts, stream presence, shift-readiness results and fallback notices: what the hub
knows of whether each agent's devices got an alert and can be reached."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from hub.clock import rfc3339
from hub.storage.db import Dialects, spelled

if TYPE_CHECKING:
    from hub.clock import Clock
    from hub.storage.db import Connection, Database

SCHEMA: list[str] = [
    # One row per (alert, user, device): when the client stored the alert and when it showed it,
    # by the client's clock; reported_at is the hub's. The earliest report of each wins.
    """
    CREATE TABLE alert_receipts (
        alert_id TEXT NOT NULL,
        username TEXT NOT NULL COLLATE NOCASE,
        device_id TEXT NOT NULL,
        device_name TEXT NOT NULL,
        received_at_ms INTEGER NOT NULL,
        shown_at_ms INTEGER,
        reported_at_ms INTEGER NOT NULL,
        PRIMARY KEY (alert_id, username, device_id)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX alert_receipts_username ON alert_receipts (username, alert_id)",
    # One row per alert stream a hub process held: reachability now (closed_at NULL and seen
    # lately) and over time (the intervals).
    """
    CREATE TABLE stream_presence (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL COLLATE NOCASE,
        device_id TEXT NOT NULL,
        device_name TEXT NOT NULL,
        opened_at REAL NOT NULL,
        last_seen_at REAL NOT NULL,
        closed_at REAL
    )
    """,
    "CREATE INDEX stream_presence_username ON stream_presence (username, opened_at)",
    "CREATE INDEX stream_presence_open ON stream_presence (closed_at, last_seen_at)",
    # The latest shift-readiness self-test of each device: checks is a JSON object.
    """
    CREATE TABLE readiness (
        username TEXT NOT NULL COLLATE NOCASE,
        device_id TEXT NOT NULL,
        device_name TEXT NOT NULL,
        ran_at REAL NOT NULL,
        received_at REAL NOT NULL,
        ready INTEGER NOT NULL,
        checks TEXT NOT NULL,
        PRIMARY KEY (username, device_id)
    ) WITHOUT ROWID
    """,
    # Agents a critical alert could not reach in time, and each fallback channel's outcome.
    """
    CREATE TABLE fallback_notices (
        alert_id TEXT NOT NULL,
        username TEXT NOT NULL COLLATE NOCASE,
        channel TEXT NOT NULL,
        marked_at REAL NOT NULL,
        sent_at REAL,
        ok INTEGER NOT NULL DEFAULT 0,
        detail TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (alert_id, username, channel)
    ) WITHOUT ROWID
    """,
]

# The name of the device an answer came from, kept with it: the token family that named it may be
# gone (signed out, user removed) by the time another device or a dispatcher reads the answer.
ANSWER_DEVICE_SCHEMA: list[str] = [
    "ALTER TABLE alert_acks ADD COLUMN device_name TEXT",
]

# A stream is reachable while a hub process saw it this recently: three heartbeats of last-seen
# writes, so one slow write never flags a connected agent.
REACHABLE_SECONDS = 45.0
# The channel recorded when no fallback channel is configured: the agent is still marked
# unreachable, so the dispatchers' board lists them.
NO_CHANNEL = "none"

ReceiptStatus = Literal["accepted", "rejected"]
DeliveryState = Literal["silent", "delivered", "shown", "acknowledged", "escalated", "unable"]
# Silent first: the board is read top down by a dispatcher looking for whom to call.
_STATE_ORDER: dict[str, int] = {
    "silent": 0,
    "delivered": 1,
    "shown": 2,
    "unable": 3,
    "escalated": 4,
    "acknowledged": 5,
}
_IN_CHUNK = 500


@dataclass(frozen=True)
class NewReceipt:
    """A well-formed receipt as a client sent it: times as Unix milliseconds."""

    alert_id: str
    received_at_ms: int
    shown_at_ms: int | None


@dataclass(frozen=True)
class ReceiptResult:
    """The outcome for one receipt of a batch; alert_id is None for an item without one."""

    alert_id: str | None
    status: ReceiptStatus
    error: str | None = None
    detail: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The result object of POST /v1/receipts; error and detail only when set."""
        wire: dict[str, Any] = {"alert_id": self.alert_id, "status": self.status}
        if self.error is not None:
            wire["error"] = self.error
        if self.detail is not None:
            wire["detail"] = self.detail
        return wire


@dataclass(frozen=True)
class OpenedStream:
    """An alert stream a hub process has just opened: whose, from which device."""

    username: str
    device_id: str
    device_name: str


@dataclass(frozen=True)
class Device:
    """One device of an agent: whether it streams now, and its latest readiness self-test."""

    device_id: str
    device_name: str
    streaming: bool
    last_seen_at: float | None
    readiness: dict[str, Any] | None

    def to_wire(self) -> dict[str, Any]:
        """The device object of GET /v1/agents."""
        return {
            "device_id": self.device_id,
            "device_name": self.device_name,
            "streaming": self.streaming,
            "last_seen_at": _time(self.last_seen_at),
            "readiness": self.readiness,
        }


@dataclass(frozen=True)
class AgentReach:
    """An agent, their groups and contact, and whether a live stream reaches them now."""

    username: str
    display_name: str
    groups: list[str]
    phone: str | None
    devices: list[Device]

    @property
    def reachable(self) -> bool:
        """Whether any device of theirs holds a live stream now."""
        return any(device.streaming for device in self.devices)

    def to_wire(self) -> dict[str, Any]:
        """The agent object of GET /v1/agents."""
        seen = [d.last_seen_at for d in self.devices if d.last_seen_at is not None]
        return {
            "username": self.username,
            "display_name": self.display_name,
            "groups": list(self.groups),
            "phone": self.phone,
            "reachable": self.reachable,
            "last_seen_at": _time(max(seen)) if seen else None,
            "devices": [device.to_wire() for device in self.devices],
        }


@dataclass(frozen=True)
class DeviceReceipt:
    """When one device of an agent stored an alert and showed it, by the device's clock."""

    device_id: str
    device_name: str
    received_at_ms: int
    shown_at_ms: int | None

    def to_wire(self) -> dict[str, Any]:
        """An item of `devices` in the delivery view."""
        return {
            "device_id": self.device_id,
            "device_name": self.device_name,
            "received_at": rfc3339(self.received_at_ms / 1000),
            "shown_at": None if self.shown_at_ms is None else rfc3339(self.shown_at_ms / 1000),
        }


@dataclass(frozen=True)
class FallbackOutcome:
    """One fallback channel's attempt to reach an agent an alert could not reach."""

    channel: str
    ok: bool
    marked_at: float
    sent_at: float | None
    detail: str

    def to_wire(self) -> dict[str, Any]:
        """An item of `fallback` in the delivery view."""
        return {
            "channel": self.channel,
            "ok": self.ok,
            "sent_at": _time(self.sent_at),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class AgentDelivery:
    """Where one agent stands with one alert."""

    username: str
    display_name: str
    groups: list[str]
    phone: str | None
    targeted: bool
    state: DeliveryState
    note: str | None
    answered_at_ms: int | None
    answer_device: str | None
    devices: list[DeviceReceipt]
    reachable: bool
    fallback: list[FallbackOutcome]

    @property
    def unreachable_marked_at(self) -> float | None:
        """When the fallback task marked the agent unreachable for this alert, if it did."""
        return min((notice.marked_at for notice in self.fallback), default=None)

    def sort_key(self) -> tuple[int, int, str]:
        """Silent and unreachable agents first, then by state, then by username."""
        waiting = self.state == "silent" or (
            self.unreachable_marked_at is not None and self.state in ("delivered", "shown")
        )
        return (0 if waiting else 1, _STATE_ORDER[self.state], self.username.lower())

    def to_wire(self) -> dict[str, Any]:
        """The agent object of GET /v1/alerts/{id}/delivery."""
        return {
            "username": self.username,
            "display_name": self.display_name,
            "groups": list(self.groups),
            "phone": self.phone,
            "targeted": self.targeted,
            "state": self.state,
            "note": self.note,
            "answered_at": (
                None if self.answered_at_ms is None else rfc3339(self.answered_at_ms / 1000)
            ),
            "answer_device": self.answer_device,
            "devices": [device.to_wire() for device in self.devices],
            "reachable": self.reachable,
            "unreachable_marked_at": _time(self.unreachable_marked_at),
            "fallback": [notice.to_wire() for notice in self.fallback],
        }


@dataclass(frozen=True)
class AlertDelivery:
    """Who an alert reached, who saw it, who answered, and who could not be reached."""

    alert_id: str
    drill: bool
    agents: list[AgentDelivery]

    def to_wire(self) -> dict[str, Any]:
        """The answer of GET /v1/alerts/{id}/delivery; counts cover targets only."""
        targets = [agent for agent in self.agents if agent.targeted]
        counts = dict.fromkeys(_STATE_ORDER, 0)
        for agent in targets:
            counts[agent.state] += 1
        counts["unreachable"] = sum(
            1 for agent in targets if agent.unreachable_marked_at is not None
        )
        return {
            "alert_id": self.alert_id,
            "drill": self.drill,
            "targeted": len(targets),
            "counts": counts,
            "agents": [agent.to_wire() for agent in sorted(self.agents, key=_sort_key)],
        }


def _sort_key(agent: AgentDelivery) -> tuple[int, int, str]:
    return agent.sort_key()


@dataclass(frozen=True)
class DueFallback:
    """A target of an open critical alert that no device of theirs reported receiving in time."""

    alert_id: str
    title: str
    severity: str
    drill: bool
    issued_at: float
    username: str
    display_name: str
    phone: str | None
    fallback_email: str | None


class DeliveryStore:
    """Owns alert_receipts, stream_presence and fallback_notices; reads readiness."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def record_receipts(
        self,
        username: str,
        device: tuple[str, str],
        receipts: Sequence[NewReceipt],
        *,
        clock_skew_ms: int,
        sees_all: bool,
    ) -> list[ReceiptResult]:
        """Store a batch in one transaction; the earliest times of each (alert, user, device) win.

        A receipt for an alert that is not kept, or that the user may not see, is rejected as
        unknown; so is one whose times lie outside the alert's issue time and now, give or take
        `clock_skew_ms`.
        """
        now_ms = round(self._clock.now() * 1000)
        device_id, device_name = device
        results = []
        with self._db.write() as conn:
            for receipt in receipts:
                problem = _receipt_problem(
                    conn, username, receipt, now_ms, clock_skew_ms, sees_all=sees_all
                )
                if problem is not None:
                    results.append(problem)
                    continue
                conn.execute(
                    """
                    INSERT INTO alert_receipts (alert_id, username, device_id, device_name,
                        received_at_ms, shown_at_ms, reported_at_ms)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (alert_id, username, device_id) DO UPDATE SET
                        device_name = excluded.device_name,
                        received_at_ms =
                            MIN(alert_receipts.received_at_ms, excluded.received_at_ms),
                        shown_at_ms = CASE
                            WHEN alert_receipts.shown_at_ms IS NULL THEN excluded.shown_at_ms
                            WHEN excluded.shown_at_ms IS NULL THEN alert_receipts.shown_at_ms
                            ELSE MIN(alert_receipts.shown_at_ms, excluded.shown_at_ms) END
                    """,
                    (
                        receipt.alert_id,
                        username,
                        device_id,
                        device_name,
                        receipt.received_at_ms,
                        receipt.shown_at_ms,
                        now_ms,
                    ),
                )
                results.append(ReceiptResult(receipt.alert_id, "accepted"))
        return results

    def record_streams(
        self, opened: Sequence[OpenedStream], seen: Sequence[int], closed: Sequence[int]
    ) -> list[int]:
        """In one write: record streams a hub process now holds (their presence ids, in order),
        stamp open ones as seen now and closed ones as closed."""
        if not opened and not seen and not closed:
            return []
        now = self._clock.now()
        with self._db.write() as conn:
            ids = [
                int(
                    conn.execute(
                        """
                        INSERT INTO stream_presence
                            (username, device_id, device_name, opened_at, last_seen_at)
                        VALUES (?, ?, ?, ?, ?) RETURNING id
                        """,
                        (stream.username, stream.device_id, stream.device_name, now, now),
                    ).fetchone()[0]
                )
                for stream in opened
            ]
            _update_chunked(
                conn,
                "UPDATE stream_presence SET last_seen_at = ? WHERE closed_at IS NULL AND id IN",
                (now,),
                seen,
            )
            _update_chunked(
                conn,
                "UPDATE stream_presence SET last_seen_at = ?, closed_at = ? WHERE id IN",
                (now, now),
                closed,
            )
        return ids

    def purge_presence(self, older_than_seconds: float) -> int:
        """Forget streams closed (or last seen) longer ago than that; how many."""
        cutoff = self._clock.now() - older_than_seconds
        with self._db.write() as conn:
            return int(
                conn.execute(
                    "DELETE FROM stream_presence WHERE last_seen_at < ?", (cutoff,)
                ).rowcount
            )

    def agents(self, group: str | None = None) -> list[AgentReach]:
        """Every enabled agent (of `group` when given) with their devices, by username."""
        live_since = self._clock.now() - REACHABLE_SECONDS
        member = ""
        params: tuple[Any, ...] = ()
        if group is not None:
            member = (
                " AND EXISTS (SELECT 1 FROM group_members m"
                " WHERE m.username = users.username AND m.group_name = ?)"
            )
            params = (group,)
        with self._db.read() as conn:
            users = conn.execute(
                "SELECT username, display_name, phone FROM users"
                f" WHERE role = 'agent' AND disabled_at IS NULL{member} ORDER BY username",
                params,
            ).fetchall()
            groups = _groups_by_user(conn)
            devices = _devices_by_user(conn, live_since)
        return [
            AgentReach(
                username=str(row[0]),
                display_name=str(row[1]),
                groups=groups.get(str(row[0]).lower(), []),
                phone=None if row[2] is None else str(row[2]),
                devices=devices.get(str(row[0]).lower(), []),
            )
            for row in users
        ]

    def delivery(self, alert_id: str) -> AlertDelivery | None:
        """Where each target of an alert stands, and anyone else who answered it; None when the
        alert is not kept."""
        live_since = self._clock.now() - REACHABLE_SECONDS
        with self._db.read() as conn:
            alert = conn.execute("SELECT drill FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            if alert is None:
                return None
            targets = {
                str(row[0]).lower(): str(row[0])
                for row in conn.execute(
                    "SELECT username FROM alert_targets WHERE alert_id = ?", (alert_id,)
                )
            }
            answers: dict[str, Any] = {}
            for row in conn.execute(
                """
                SELECT username, action, note, acted_at_ms, device_id FROM alert_acks
                WHERE alert_id = ? ORDER BY rowid
                """,
                (alert_id,),
            ):
                # The latest answer counts: an agent who could not act first may act later.
                answers[str(row[0]).lower()] = row
            receipts: dict[str, list[DeviceReceipt]] = {}
            for row in conn.execute(
                """
                SELECT username, device_id, device_name, received_at_ms, shown_at_ms
                FROM alert_receipts WHERE alert_id = ? ORDER BY received_at_ms, device_id
                """,
                (alert_id,),
            ):
                receipts.setdefault(str(row[0]).lower(), []).append(
                    DeviceReceipt(str(row[1]), str(row[2]), int(row[3]), _int_or_none(row[4]))
                )
            notices: dict[str, list[FallbackOutcome]] = {}
            for row in conn.execute(
                """
                SELECT username, channel, ok, marked_at, sent_at, detail FROM fallback_notices
                WHERE alert_id = ? ORDER BY channel
                """,
                (alert_id,),
            ):
                notices.setdefault(str(row[0]).lower(), []).append(
                    FallbackOutcome(
                        str(row[1]), bool(row[2]), float(row[3]), _float_or_none(row[4]), row[5]
                    )
                )
            people = {**{key: str(row[0]) for key, row in answers.items()}, **targets}
            contacts = _contacts(conn, list(people.values()))
            groups = _groups_by_user(conn)
            streaming = _streaming_users(conn, live_since)
        agents = []
        for key, username in people.items():
            answer = answers.get(key)
            devices = receipts.get(key, [])
            display_name, phone = contacts.get(key, (username, None))
            agents.append(
                AgentDelivery(
                    username=username,
                    display_name=display_name,
                    groups=groups.get(key, []),
                    phone=phone,
                    targeted=key in targets,
                    state=_state(answer, devices),
                    note=None if answer is None or answer[2] is None else str(answer[2]),
                    answered_at_ms=None if answer is None else int(answer[3]),
                    answer_device=None if answer is None or answer[4] is None else str(answer[4]),
                    devices=devices,
                    reachable=key in streaming,
                    fallback=notices.get(key, []),
                )
            )
        return AlertDelivery(alert_id=alert_id, drill=bool(alert[0]), agents=agents)

    def due_fallbacks(self, after_seconds: float, limit: int) -> list[DueFallback]:
        """Targets of open, unexpired critical alerts issued `after_seconds` ago or more that no
        device reported receiving, that did not answer, and that were never marked unreachable."""
        now = self._clock.now()
        with self._db.read() as conn:
            rows = conn.execute(
                """
                SELECT a.id, a.title, a.severity, a.drill, a.issued_at, u.username,
                       u.display_name, u.phone, u.fallback_email
                FROM alerts a
                JOIN alert_targets t ON t.alert_id = a.id
                JOIN users u ON u.username = t.username AND u.disabled_at IS NULL
                WHERE a.status = 'open' AND a.severity = 'critical' AND a.issued_at <= ?
                  AND (a.expires_at IS NULL OR a.expires_at > ?)
                  AND NOT EXISTS (SELECT 1 FROM alert_receipts r
                                  WHERE r.alert_id = a.id AND r.username = t.username)
                  AND NOT EXISTS (SELECT 1 FROM alert_acks k
                                  WHERE k.alert_id = a.id AND k.username = t.username)
                  AND NOT EXISTS (SELECT 1 FROM fallback_notices f
                                  WHERE f.alert_id = a.id AND f.username = t.username)
                ORDER BY a.issued_at, u.username
                LIMIT ?
                """,
                (now - after_seconds, now, limit),
            ).fetchall()
        return [
            DueFallback(
                alert_id=str(row[0]),
                title=str(row[1]),
                severity=str(row[2]),
                drill=bool(row[3]),
                issued_at=float(row[4]),
                username=str(row[5]),
                display_name=str(row[6]),
                phone=None if row[7] is None else str(row[7]),
                fallback_email=None if row[8] is None else str(row[8]),
            )
            for row in rows
        ]

    def claim_fallback(self, alert_id: str, username: str, channels: Sequence[str]) -> list[str]:
        """Mark an agent unreachable for an alert on each channel; the channels this call claimed.

        Inserted (or not, ON CONFLICT DO NOTHING) under the write lock: of any number of hub
        processes, exactly one claims each (alert, agent, channel), so no notice is sent twice.
        """
        now = self._clock.now()
        claimed = []
        with self._db.write() as conn:
            for channel in channels:
                inserted = conn.execute(
                    """
                    INSERT INTO fallback_notices (alert_id, username, channel, marked_at)
                    VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING
                    """,
                    (alert_id, username, channel, now),
                ).rowcount
                if inserted == 1:
                    claimed.append(channel)
        return claimed

    def record_fallback_outcome(
        self, alert_id: str, username: str, channel: str, *, ok: bool, detail: str, sent: bool
    ) -> None:
        """Store what a channel answered for a claimed notice."""
        now = self._clock.now()
        with self._db.write() as conn:
            conn.execute(
                """
                UPDATE fallback_notices SET sent_at = ?, ok = ?, detail = ?
                WHERE alert_id = ? AND username = ? AND channel = ?
                """,
                (now if sent else None, int(ok), detail, alert_id, username, channel),
            )


def _update_chunked(
    conn: Connection, statement: str, params: tuple[Any, ...], ids: Sequence[int]
) -> None:
    values = list(ids)
    for start in range(0, len(values), _IN_CHUNK):
        chunk = values[start : start + _IN_CHUNK]
        conn.execute(f"{statement} ({', '.join('?' * len(chunk))})", [*params, *chunk])


def _receipt_problem(
    conn: Connection,
    username: str,
    receipt: NewReceipt,
    now_ms: int,
    clock_skew_ms: int,
    *,
    sees_all: bool,
) -> ReceiptResult | None:
    row = conn.execute(
        """
        SELECT issued_at, audience IS NULL OR EXISTS (
            SELECT 1 FROM alert_targets t WHERE t.alert_id = alerts.id AND t.username = ?)
        FROM alerts WHERE id = ?
        """,
        (username, receipt.alert_id),
    ).fetchone()
    if row is None or not (sees_all or row[1]):
        return ReceiptResult(
            receipt.alert_id,
            "rejected",
            "unknown_alert",
            f"No alert {receipt.alert_id} is kept on the hub for you; it may be past retention.",
        )
    issued_at = row[0]
    earliest = (
        round(issued_at * 1000) - clock_skew_ms
        if isinstance(issued_at, int | float) and math.isfinite(issued_at)
        else None
    )
    latest = now_ms + clock_skew_ms
    for name, value in (("received_at", receipt.received_at_ms), ("shown_at", receipt.shown_at_ms)):
        if value is None:
            continue
        if (earliest is not None and value < earliest) or value > latest:
            return ReceiptResult(
                receipt.alert_id,
                "rejected",
                "invalid_receipt",
                f"{name}: must be after the alert was issued and not after the hub received the "
                f"receipt, give or take {clock_skew_ms // 3_600_000} hours of clock difference; "
                "check the device's clock.",
            )
    return None


def _state(answer: Any, devices: list[DeviceReceipt]) -> DeliveryState:
    if answer is not None and answer[1] in ("acknowledged", "escalated", "unable"):
        return cast(DeliveryState, answer[1])
    if any(device.shown_at_ms is not None for device in devices):
        return "shown"
    return "delivered" if devices else "silent"


def _groups_by_user(conn: Connection) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for row in conn.execute("SELECT username, group_name FROM group_members ORDER BY group_name"):
        groups.setdefault(str(row[0]).lower(), []).append(str(row[1]))
    return groups


def _contacts(conn: Connection, usernames: list[str]) -> dict[str, tuple[str, str | None]]:
    contacts: dict[str, tuple[str, str | None]] = {}
    for start in range(0, len(usernames), _IN_CHUNK):
        chunk = usernames[start : start + _IN_CHUNK]
        for row in conn.execute(
            "SELECT username, display_name, phone FROM users"
            f" WHERE username IN ({', '.join('?' * len(chunk))})",
            chunk,
        ):
            contacts[str(row[0]).lower()] = (str(row[1]), None if row[2] is None else str(row[2]))
    return contacts


def _streaming_users(conn: Connection, live_since: float) -> set[str]:
    return {
        str(row[0]).lower()
        for row in conn.execute(
            "SELECT DISTINCT username FROM stream_presence"
            " WHERE closed_at IS NULL AND last_seen_at >= ?",
            (live_since,),
        )
    }


# One row per device, with the name from its latest stream: SQLite takes a bare column from the
# row holding the MAX; PostgreSQL says so with DISTINCT ON.
_LATEST_PRESENCE = Dialects(
    sqlite="""
    SELECT username, device_id, device_name, MAX(last_seen_at) FROM stream_presence
    GROUP BY username, device_id
    """,
    postgresql="""
    SELECT DISTINCT ON (username, device_id) username, device_id, device_name, last_seen_at
    FROM stream_presence ORDER BY username, device_id, last_seen_at DESC
    """,
)


def _devices_by_user(conn: Connection, live_since: float) -> dict[str, list[Device]]:
    seen: dict[tuple[str, str], tuple[str, float]] = {}
    for row in conn.execute(spelled(conn, _LATEST_PRESENCE)):
        seen[(str(row[0]).lower(), str(row[1]))] = (str(row[2]), float(row[3]))
    streaming = {
        (str(row[0]).lower(), str(row[1]))
        for row in conn.execute(
            "SELECT DISTINCT username, device_id FROM stream_presence"
            " WHERE closed_at IS NULL AND last_seen_at >= ?",
            (live_since,),
        )
    }
    readiness: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for row in conn.execute(
        "SELECT username, device_id, device_name, ran_at, ready, checks FROM readiness"
    ):
        readiness[(str(row[0]).lower(), str(row[1]))] = (str(row[2]), _readiness(row))
    devices: dict[str, list[Device]] = {}
    for key in sorted(seen.keys() | readiness.keys()):
        last_seen: float | None = None
        if key in seen:
            name, last_seen = seen[key]
        else:
            name = readiness[key][0]
        devices.setdefault(key[0], []).append(
            Device(
                device_id=key[1],
                device_name=name,
                streaming=key in streaming,
                last_seen_at=last_seen,
                readiness=readiness[key][1] if key in readiness else None,
            )
        )
    return devices


def _readiness(row: Any) -> dict[str, Any]:
    # Written by another part of the hub: a damaged checks column loses the details only.
    try:
        checks = json.loads(row[5])
    except (TypeError, ValueError):
        checks = {}
    return {
        "ran_at": _time(_float_or_none(row[3])),
        "ready": bool(row[4]),
        "checks": checks if isinstance(checks, dict) else {},
    }


def _time(value: float | None) -> str | None:
    return None if value is None else rfc3339(value)


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
