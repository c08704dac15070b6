"""Placeholder; being written."""

from __future__ import annotations

from typing import Any


class AlertBroker:
    def __init__(self, store: Any, settings: Any) -> None:
        self.store = store

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
