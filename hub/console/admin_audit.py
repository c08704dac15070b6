"""The console's audit trail page (admins only): filters, paging, and CSV / JSON export.

The filters mean what they mean for `vigil-hub audit` and GET /v1/admin/audit: `user` is the actor
or the subject, `event` a name or a prefix ending in `*`, `since` inclusive and `until` exclusive.
The export writes every filtered row as `vigil-hub audit --format csv|json` does.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from hub.audit_export import InvalidTime, parse_time, write_csv
from hub.console.pages import render
from hub.console.session import ConsoleAdmin, ConsoleSession
from hub.deps import StoreDep
from hub.storage import Store
from hub.storage.audit import AuditEvent, AuditQuery

router = APIRouter(prefix="/console/admin")

PAGE_SIZE = 50
EXPORT_BATCH = 1000
# As GET /v1/admin/audit allows: a username or an event name is at most 64 characters.
FILTER_MAX = 64
_FILTERS = ("event", "user", "since", "until")


@dataclass(frozen=True)
class AuditFilter:
    """The filter form as typed (`text`) and as the store reads it (`query`)."""

    text: dict[str, str]
    query: AuditQuery
    errors: dict[str, str]

    def link(self, **changes: str | int) -> str:
        """The query string of these filters with some values changed."""
        params: dict[str, str | int] = {key: value for key, value in self.text.items() if value}
        params.update(changes)
        return urlencode(params)


def read_filter(request: Request) -> AuditFilter:
    """The filters in the request's query string; each bad one gets a message naming it."""
    text = {name: request.query_params.get(name, "").strip() for name in _FILTERS}
    errors: dict[str, str] = {}
    for name in ("event", "user"):
        if len(text[name]) > FILTER_MAX:
            errors[name] = f"Use at most {FILTER_MAX} characters."
    times: dict[str, float | None] = {}
    for name in ("since", "until"):
        try:
            times[name] = parse_time(text[name], name) if text[name] else None
        except InvalidTime as exc:
            errors[name] = str(exc).removeprefix(f"{name}: ")
            times[name] = None
    after_text = request.query_params.get("after", "0")
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    after = int(after_text) if re.fullmatch(r"[0-9]{1,18}", after_text) else 0
    query = AuditQuery(
        since=times["since"],
        until=times["until"],
        user=text["user"] or None,
        event=text["event"] or None,
        after=after,
    )
    return AuditFilter(text, query, errors)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, session: ConsoleAdmin, store: StoreDep) -> HTMLResponse:
    """One page of audit events, oldest first, with the filters and export links."""
    chosen = read_filter(request)
    if chosen.errors:
        return _page(request, session, chosen, [], more=False, status_code=422)
    events = store.audit.query(replace(chosen.query, limit=PAGE_SIZE + 1))
    return _page(request, session, chosen, events[:PAGE_SIZE], more=len(events) > PAGE_SIZE)


@router.get("/audit.csv", response_class=Response)
def audit_csv(request: Request, session: ConsoleAdmin, store: StoreDep) -> Response:
    """Every filtered event as CSV (formula-safe cells), as `vigil-hub audit` writes it."""
    chosen = read_filter(request)
    if chosen.errors:
        return _page(request, session, chosen, [], more=False, status_code=422)

    def rows() -> Iterator[str]:
        first = True
        for batch in _batches(store, chosen.query):
            out = io.StringIO()
            write_csv(batch, out, header=first)
            first = False
            yield out.getvalue()
        if first:
            out = io.StringIO()
            write_csv([], out)
            yield out.getvalue()

    return _download(rows(), "text/csv; charset=utf-8", "audit.csv")


@router.get("/audit.json", response_class=Response)
def audit_json(request: Request, session: ConsoleAdmin, store: StoreDep) -> Response:
    """Every filtered event as a JSON array of the protocol's audit objects."""
    chosen = read_filter(request)
    if chosen.errors:
        return _page(request, session, chosen, [], more=False, status_code=422)

    def items() -> Iterator[str]:
        first = True
        yield "["
        for batch in _batches(store, chosen.query):
            for event in batch:
                yield ("\n" if first else ",\n") + json.dumps(event.to_wire())
                first = False
        yield "\n]\n"

    return _download(items(), "application/json", "audit.json")


def _batches(store: Store, query: AuditQuery) -> Iterator[list[AuditEvent]]:
    query = replace(query, after=0, limit=EXPORT_BATCH)
    while True:
        events = store.audit.query(query)
        if events:
            yield events
        if len(events) < EXPORT_BATCH:
            return
        query = replace(query, after=events[-1].id)


def _download(body: Iterator[str], media_type: str, filename: str) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def _page(
    request: Request,
    session: ConsoleSession,
    chosen: AuditFilter,
    events: list[AuditEvent],
    *,
    more: bool,
    status_code: int = 200,
) -> HTMLResponse:
    rows = [
        {
            "event": event,
            "detail": json.dumps(event.detail, ensure_ascii=False, sort_keys=True),
        }
        for event in events
    ]
    return render(
        request,
        "admin_audit.html",
        session,
        status_code=status_code,
        nav="audit",
        rows=rows,
        values=chosen.text,
        errors=chosen.errors,
        paged=chosen.query.after > 0,
        first_link=chosen.link(),
        next_link=chosen.link(after=events[-1].id) if more and events else "",
        export_query=chosen.link(),
    )
