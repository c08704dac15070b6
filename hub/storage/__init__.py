"""The hub's storage: every SQL statement of the hub lives in this package.

Routes and services talk to `Store` and its per-family stores only, so another backend (such as
PostgreSQL) can replace the SQLite one without touching them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hub.clock import Clock
from hub.storage import (
    accounts,
    alerts,
    audit,
    console_sessions,
    content,
    delivery,
    groups,
    hub_settings,
    reports,
    surveys,
)
from hub.storage.accounts import AccountStore
from hub.storage.alerts import AlertStore
from hub.storage.audit import AuditStore
from hub.storage.console_sessions import ConsoleSessionStore
from hub.storage.content import ContentStore
from hub.storage.db import Database, Statement, open_database
from hub.storage.delivery import DeliveryStore
from hub.storage.groups import GroupStore
from hub.storage.hub_settings import HubSettingStore
from hub.storage.readiness import ReadinessStore
from hub.storage.reports import ReportStore
from hub.storage.surveys import SurveyStore

# Ordered schema migrations: entry N takes the file from user_version N-1 to N. Append a new
# entry for every schema change; never edit one that has shipped.
MIGRATIONS: list[Sequence[Statement]] = [
    [*accounts.SCHEMA, *content.SCHEMA, *alerts.SCHEMA],
    alerts.PUBLISH_KEYS_SCHEMA,
    # Accounts IT can disable, and the audit trail.
    [*accounts.USER_ADMIN_SCHEMA, *audit.SCHEMA],
    accounts.SIGNIN_HARDENING_SCHEMA,
    # Incidents: updates, resolution, retraction, drills, approval, audiences, delivery receipts,
    # reachability, fallback notices and surveys.
    [*alerts.INCIDENTS_SCHEMA, *groups.SCHEMA, *delivery.SCHEMA, *surveys.SCHEMA],
    # The name of the device each answer came from.
    delivery.ANSWER_DEVICE_SCHEMA,
    # Hub-wide settings (two-person approval); approval requests keep their rejection reason and
    # the Idempotency-Key they came with.
    [*hub_settings.SCHEMA, *alerts.APPROVAL_SCHEMA],
    # The KPI report's indexes: first answers, updates in order, a period's live or drill alerts.
    reports.SCHEMA,
    # Each report target's earliest receipt and first answer, kept by triggers.
    reports.FIRSTS_SCHEMA,
    # The dispatcher console's browser sessions.
    console_sessions.SCHEMA,
]


class Store:
    """The hub's state: one database and a store per table family."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.accounts = AccountStore(db, clock)
        self.content = ContentStore(db, clock)
        self.alerts = AlertStore(db, clock)
        self.audit = AuditStore(db, clock)
        self.groups = GroupStore(db, clock)
        self.readiness = ReadinessStore(db, clock)
        self.delivery = DeliveryStore(db, clock)
        self.surveys = SurveyStore(db, clock)
        self.settings = HubSettingStore(db, clock)
        self.reports = ReportStore(db)
        self.console_sessions = ConsoleSessionStore(db, clock)

    @classmethod
    def open(cls, location: Path | str, clock: Clock) -> Store:
        """Open (or create) the database at `location` (a SQLite file's path or a postgresql://
        URL) and bring its schema up to date."""
        if isinstance(location, Path):
            location.parent.mkdir(parents=True, exist_ok=True)
        db = open_database(location)
        try:
            db.migrate(MIGRATIONS)
        except BaseException:
            db.close()
            raise
        return cls(db, clock)

    def close(self) -> None:
        """Close the database; the store is unusable afterwards."""
        self.db.close()
