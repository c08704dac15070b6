"""What the board and the incident page show of incidents: counts, per-agent rows and timeline.

Read from the hub's stores as GET /v1/incidents and GET /v1/alerts/{id}/delivery read them; plain
data for the templates, no HTML. Every text that came from a person goes through `shown_text`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from hub.alerts_service import update_overdue
from hub.storage.alerts import Alert, Answer
from hub.storage.delivery import AgentDelivery, AlertDelivery

if TYPE_CHECKING:
    from hub.config import HubSettings
    from hub.storage import Store

# Enough rows to see whom to call first on a 1280x800 screen with a few incidents open; the
# incident page lists everyone.
BOARD_ROWS = 10
# The most open incidents the board reads at once; a hub with more has bigger problems.
BOARD_INCIDENTS_MAX = 200
_SEVERITY_RANK = {"critical": 3, "major": 2, "minor": 1, "info": 0}
# Explicit bidi controls would reorder the page around the text that holds them; the hub refuses
# them in updates and notes but older rows (and alert titles) may still hold them.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
STATE_LABELS: dict[str, str] = {
    "silent": "Silent: no device reported it",
    "delivered": "Delivered",
    "shown": "Shown",
    "acknowledged": "Acknowledged",
    "escalated": "Escalated",
    "unable": "Unable to act",
}
TimelineKind = Literal[
    "published",
    "update",
    "received",
    "shown",
    "acknowledged",
    "escalated",
    "unable",
    "resolved",
    "retracted",
]


def shown_text(value: str | None) -> str:
    """Untrusted text as the console shows it: no bidi or other control characters (newlines and
    tabs stay), so it can neither reorder nor break the page. Autoescaping does the rest."""
    if not value:
        return ""
    if value.isprintable():
        # No control, format (bidi included) or separator character but the space: the common
        # case, checked in C.
        return value
    return "".join(
        char
        for char in value
        if char in "\n\t"
        or not (char in _BIDI_CONTROLS or unicodedata.category(char) in ("Cc", "Cs"))
    )


def coarse_age(seconds: float) -> str:
    """How long ago, to the minute: the board is sent again whenever its HTML changes, and an
    age in seconds would swap every open board (and the keyboard focus in it) every render."""
    minutes = max(0, int(seconds // 60))
    if minutes < 1:
        return "under a minute ago"
    if minutes < 120:
        return f"{minutes} min ago"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min ago"
    return f"{hours // 24} days ago"


def tel_href(phone: str | None) -> str | None:
    """A tel: link for a phone-tree entry (digits and a leading +), None when it has no digit."""
    if not phone:
        return None
    digits = re.sub(r"[^0-9]", "", phone)
    if not digits:
        return None
    return "tel:" + ("+" if phone.strip().startswith("+") else "") + digits


@dataclass(frozen=True)
class Counts:
    """How many of an alert's targets the hub knows reached, saw and answered it."""

    targeted: int
    delivered: int
    shown: int
    acknowledged: int
    escalated: int
    unable: int
    silent: int
    unreachable: int

    def shown_counts(self) -> list[tuple[str, str, int]]:
        """(name, label, value) of each count the console shows, in reading order."""
        return [
            ("targeted", "Targeted", self.targeted),
            ("delivered", "Delivered", self.delivered),
            ("shown", "Shown", self.shown),
            ("acknowledged", "Acknowledged", self.acknowledged),
            ("escalated", "Escalated", self.escalated),
            ("unable", "Unable", self.unable),
            ("silent", "Silent", self.silent),
        ]

    def summary(self) -> str:
        """The counts in one sentence, for the screen reader's polite announcement."""
        return (
            f"{self.delivered} of {self.targeted} delivered, {self.shown} shown, "
            f"{self.acknowledged} acknowledged, {self.escalated} escalated, "
            f"{self.unable} unable, {self.silent} silent"
        )


@dataclass(frozen=True)
class DeviceLine:
    """When one device of an agent stored and showed the alert (the device's clock)."""

    name: str
    received_at: float
    shown_at: float | None


@dataclass(frozen=True)
class FallbackLine:
    """One fallback channel's attempt to reach an agent the stream did not."""

    channel: str
    ok: bool
    sent_at: float | None


@dataclass(frozen=True)
class AgentRow:
    """One person on an incident's table: where they stand, and how to call them."""

    username: str
    display_name: str
    groups: tuple[str, ...]
    phone: str
    tel: str | None
    targeted: bool
    state: str
    state_label: str
    waiting: bool
    reachable: bool
    unreachable_since: float | None
    fallback: tuple[FallbackLine, ...]
    devices: tuple[DeviceLine, ...]
    note: str
    answered_at: float | None
    answer_device: str


@dataclass(frozen=True)
class IncidentView:
    """An incident as the board and its page show it."""

    id: str
    title: str
    severity: str
    drill: bool
    status: str
    audience: tuple[str, ...] | None
    body: str
    issued_at: float
    age: str
    issued_by: str
    approved_by: str
    expires_at: float | None
    expired: bool
    next_update_by: float | None
    overdue: bool
    updates: int
    closed_at: float | None
    closing_note: str
    counts: Counts
    # The first rows of the agent table (all of them on the incident page), silent on top.
    agents: tuple[AgentRow, ...]
    agent_count: int

    @property
    def is_open(self) -> bool:
        """Whether the incident still takes updates, a resolution or a retraction."""
        return self.status == "open"

    @property
    def rows_left(self) -> int:
        """How many rows of the agent table are left out here (for the incident page)."""
        return self.agent_count - len(self.agents)


@dataclass(frozen=True)
class Board:
    """The open incidents, live apart from drills, and the approvals waiting."""

    live: tuple[IncidentView, ...]
    drills: tuple[IncidentView, ...]
    pending_approvals: int

    def summary(self) -> str:
        """One sentence per incident's counts, for the polite announcement."""
        if not self.live and not self.drills:
            return "No open incidents."
        parts = [f"{item.title}: {item.counts.summary()}." for item in self.live]
        parts += [f"Drill {item.title}: {item.counts.summary()}." for item in self.drills]
        return " ".join(parts)


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened to an incident, at a time."""

    at: float
    kind: TimelineKind
    who: str
    text: str
    device: str = ""
    number: int = 0
    links: tuple[str, ...] = ()
    next_update_by: float | None = None
    title: str = ""
    severity: str = ""


@dataclass(frozen=True)
class IncidentPage:
    """One incident as its page shows it: the header and every agent, and the timeline."""

    view: IncidentView
    timeline: list[TimelineEntry]


def board(store: Store, settings: HubSettings) -> Board:
    """Every open incident, newest critical first, and how many publishes wait for approval."""
    now = settings.clock.now()
    found = store.alerts.incidents("open", None, BOARD_INCIDENTS_MAX)
    views = []
    for alert in found:
        view = _view(store, alert, now, BOARD_ROWS)
        if view is not None:
            views.append(view)
    views.sort(key=lambda view: (-_SEVERITY_RANK.get(view.severity, 0), -view.issued_at))
    pending = len(store.alerts.approvals("pending", BOARD_INCIDENTS_MAX))
    return Board(
        live=tuple(view for view in views if not view.drill),
        drills=tuple(view for view in views if view.drill),
        pending_approvals=pending,
    )


def incident_page(store: Store, settings: HubSettings, alert_id: str) -> IncidentPage | None:
    """One kept incident with its full table and timeline; None when the hub keeps no such
    alert."""
    alert = store.alerts.get(alert_id)
    delivery = None if alert is None else store.delivery.delivery(alert_id)
    if alert is None or delivery is None:
        return None
    answers = store.alerts.answers_to(alert_id)
    return IncidentPage(
        view=_build_view(alert, delivery, answers, settings.clock.now(), None),
        timeline=_timeline(alert, delivery, answers),
    )


def _timeline(alert: Alert, delivery: AlertDelivery, answers: list[Answer]) -> list[TimelineEntry]:
    """Publish, updates, receipts, answers and the closing note of an incident, oldest first."""
    entries = [
        TimelineEntry(
            at=alert.issued_at,
            kind="published",
            who=shown_text(alert.issued_by),
            text=shown_text(alert.body),
        )
    ]
    for change in alert.changes:
        entries.append(
            TimelineEntry(
                at=change.at,
                kind=change.kind,
                who=shown_text(change.by),
                text=shown_text(change.text),
                number=change.number,
                links=tuple(change.links),
                next_update_by=change.next_update_by,
                title=shown_text(change.title),
                severity=change.severity or "",
            )
        )
    for agent in delivery.agents:
        for device in agent.devices:
            name = shown_text(device.device_name)
            who = shown_text(agent.display_name)
            entries.append(
                TimelineEntry(device.received_at_ms / 1000, "received", who, "", device=name)
            )
            if device.shown_at_ms is not None:
                entries.append(
                    TimelineEntry(device.shown_at_ms / 1000, "shown", who, "", device=name)
                )
    names = {agent.username.casefold(): agent.display_name for agent in delivery.agents}
    for answer in answers:
        entries.append(
            TimelineEntry(
                at=answer.acted_at_ms / 1000,
                kind=answer.action,
                who=shown_text(names.get(answer.username.casefold(), answer.username)),
                text=shown_text(answer.note),
                device=shown_text(answer.device_name or answer.device_id),
            )
        )
    # Stable: things at the same moment keep the order they happened in (publish first).
    entries.sort(key=lambda entry: entry.at)
    return entries


def _view(store: Store, alert: Alert, now: float, rows: int) -> IncidentView | None:
    delivery = store.delivery.delivery(alert.id)
    if delivery is None:
        # Purged between the two reads.
        return None
    return _build_view(alert, delivery, store.alerts.answers_to(alert.id), now, rows)


def _build_view(
    alert: Alert, delivery: AlertDelivery, answers: list[Answer], now: float, rows: int | None
) -> IncidentView:
    latest = _latest_answers(answers)
    closing = next((change for change in reversed(alert.changes) if change.kind != "update"), None)
    return IncidentView(
        id=alert.id,
        title=shown_text(alert.title),
        severity=alert.severity,
        drill=alert.drill,
        status=alert.status,
        audience=None if alert.audience is None else tuple(map(shown_text, alert.audience)),
        body=shown_text(alert.body),
        issued_at=alert.issued_at,
        age=coarse_age(now - alert.issued_at),
        issued_by=shown_text(alert.issued_by),
        approved_by=shown_text(alert.approved_by),
        expires_at=alert.expires_at,
        expired=alert.expires_at is not None and alert.expires_at <= now,
        next_update_by=alert.next_update_by,
        overdue=update_overdue(alert, now),
        updates=sum(1 for change in alert.changes if change.kind == "update"),
        closed_at=alert.closed_at,
        closing_note="" if closing is None else shown_text(closing.text),
        counts=_counts(delivery),
        # Rows are built for what is shown only: the board reads every open incident each time
        # anything changes.
        agents=tuple(_row(agent, latest) for agent in _ordered(delivery)[:rows]),
        agent_count=len(delivery.agents),
    )


def _ordered(delivery: AlertDelivery) -> list[AgentDelivery]:
    # The delivery view's order: silent and unreachable first, then by state and username.
    return sorted(delivery.agents, key=lambda agent: agent.sort_key())


def _latest_answers(answers: list[Answer]) -> dict[str, Answer]:
    latest: dict[str, Answer] = {}
    for answer in answers:
        latest[answer.username.casefold()] = answer
    return latest


def _counts(delivery: AlertDelivery) -> Counts:
    targets = [agent for agent in delivery.agents if agent.targeted]
    states = [agent.state for agent in targets]
    answered = ("acknowledged", "escalated", "unable")
    return Counts(
        targeted=len(targets),
        # Reached: a device reported it, or the agent answered it (from whichever device).
        delivered=sum(1 for agent in targets if agent.devices or agent.state in answered),
        shown=sum(
            1
            for agent in targets
            if any(device.shown_at_ms is not None for device in agent.devices)
        ),
        acknowledged=states.count("acknowledged"),
        escalated=states.count("escalated"),
        unable=states.count("unable"),
        silent=states.count("silent"),
        unreachable=sum(1 for agent in targets if agent.unreachable_marked_at is not None),
    )


def _row(agent: AgentDelivery, answers: dict[str, Answer]) -> AgentRow:
    answer = answers.get(agent.username.casefold())
    answer_device = ""
    if answer is not None:
        answer_device = shown_text(answer.device_name or answer.device_id)
    waiting = agent.sort_key()[0] == 0
    return AgentRow(
        username=shown_text(agent.username),
        display_name=shown_text(agent.display_name),
        groups=tuple(map(shown_text, agent.groups)),
        phone=shown_text(agent.phone),
        tel=tel_href(agent.phone),
        targeted=agent.targeted,
        state=agent.state,
        state_label=STATE_LABELS[agent.state],
        waiting=waiting,
        reachable=agent.reachable,
        unreachable_since=agent.unreachable_marked_at,
        fallback=tuple(
            FallbackLine(shown_text(notice.channel), notice.ok, notice.sent_at)
            for notice in agent.fallback
        ),
        devices=tuple(
            DeviceLine(
                shown_text(device.device_name),
                device.received_at_ms / 1000,
                None if device.shown_at_ms is None else device.shown_at_ms / 1000,
            )
            for device in agent.devices
        ),
        note=shown_text(agent.note),
        answered_at=None if agent.answered_at_ms is None else agent.answered_at_ms / 1000,
        answer_device=answer_device,
    )
