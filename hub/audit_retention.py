"""Keeps the audit trail to its retention period (`audit_retention_days`) while the hub runs."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from hub.storage.db import DATABASE_ERRORS

if TYPE_CHECKING:
    from hub.config import HubSettings
    from hub.storage import Store

logger = logging.getLogger(__name__)

PURGE_EVERY_SECONDS = 3600


async def purge_audit_events(store: Store, settings: HubSettings) -> None:
    """Delete audit events past the retention period at start and hourly, until cancelled."""
    while True:
        try:
            removed = await asyncio.to_thread(
                store.audit.purge, retention_seconds=settings.audit_retention_seconds
            )
        except DATABASE_ERRORS as exc:
            # A busy or full disk now is no reason to stop the hub; the next round tries again.
            logger.warning("Could not purge old audit events: %s", exc)
        else:
            if removed:
                logger.info(
                    "Purged %d audit events past %g days", removed, settings.audit_retention_days
                )
        await asyncio.sleep(PURGE_EVERY_SECONDS)
