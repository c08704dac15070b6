"""GET /v1/keys and GET /v1/content: the content key and the signed change feed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from hub.deps import AgentUser, SinceQuery, StoreDep
from hub.errors import error_responses
from hub.signing import ContentSigner

router = APIRouter()

CONTENT_PAGE_DEFAULT = 500
CONTENT_PAGE_MAX = 1000


def _signer(request: Request) -> ContentSigner:
    signer: ContentSigner = request.app.state.signer
    return signer


SignerDep = Annotated[ContentSigner, Depends(_signer)]


@router.get("/v1/keys")
def content_keys(signer: SignerDep) -> dict[str, Any]:
    """The public content keys; the one marked current signs new items (clients pin it first)."""
    return {
        "content_keys": [
            {
                "key_id": signer.key_id,
                "public_key": signer.public_key_b64,
                "algorithm": "Ed25519",
                "current": True,
            }
        ]
    }


@router.get("/v1/content", responses=error_responses(401, 403, 422))
def content_changes(
    store: StoreDep,
    user: AgentUser,
    since: SinceQuery = None,
    limit: Annotated[int, Query(ge=1, le=CONTENT_PAGE_MAX)] = CONTENT_PAGE_DEFAULT,
) -> dict[str, Any]:
    """Playbooks and templates changed after `since`, in cursor order."""
    items, cursor, more = store.content.changes(since, limit)
    return {"cursor": cursor, "more": more, "items": [item.to_wire() for item in items]}
