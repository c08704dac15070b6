"""The groups an alert can target, for dispatchers choosing an audience."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hub.deps import DispatcherUser, StoreDep
from hub.errors import error_responses

router = APIRouter()


@router.get("/v1/groups", responses=error_responses(401, 403))
def list_groups(store: StoreDep, user: DispatcherUser) -> dict[str, Any]:
    """Every group by name, with how many enabled agents an alert to it reaches now."""
    counts = store.groups.agent_counts()
    return {
        "groups": [
            {
                "name": group.name,
                "kind": group.kind,
                "description": group.description,
                "agents": counts.get(group.name, 0),
            }
            for group in store.groups.all()
        ]
    }
