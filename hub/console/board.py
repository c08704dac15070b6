"""The live board: every open incident with its counts and whom to call, kept current by SSE."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from hub.console import incident_view
from hub.console.live import live_fragments
from hub.console.pages import render, templates
from hub.console.session import ConsoleDispatcher
from hub.deps import SettingsDep, StoreDep

router = APIRouter()


@router.get("/console", response_class=HTMLResponse)
def board_page(
    request: Request, session: ConsoleDispatcher, store: StoreDep, settings: SettingsDep
) -> HTMLResponse:
    """The board: open incidents, live apart from drills, newest critical first."""
    board = incident_view.board(store, settings)
    return render(request, "board.html", session, nav="board", board=board)


@router.get("/console/board/live")
def board_live(
    request: Request, session: ConsoleDispatcher, store: StoreDep, settings: SettingsDep
) -> StreamingResponse:
    """The board's parts as server-sent events, sent again whenever one of them changes."""

    def fragments() -> dict[str, str]:
        context = {"board": incident_view.board(store, settings), "now": settings.clock.now()}
        return {
            "board": templates.get_template("board_incidents.html").render(context),
            "board-summary": templates.get_template("board_summary.html").render(context),
        }

    return live_fragments(request, session, fragments)
