"""The live board: every open incident with its counts and whom to call, kept current by SSE."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from hub.console import incident_view
from hub.console.live import ChangeSignal, live_fragments
from hub.console.pages import render, templates
from hub.console.session import ConsoleDispatcher
from hub.deps import SettingsDep, StoreDep

router = APIRouter()

# Every dispatcher sees the same board: a render is shared by the open boards while nothing was
# written in this process and it is at most this old (time passing, another process's writes).
SHARED_RENDER_SECONDS = 1.0


class SharedBoard:
    """The board's fragments, rendered once for every open board stream.

    Ten dispatchers watching a busy incident must not cost ten renders per acknowledgement.
    """

    def __init__(self, max_age: float = SHARED_RENDER_SECONDS) -> None:
        self._max_age = max_age
        self._lock = threading.Lock()
        self._version: int | None = None
        self._rendered_at = 0.0
        self._fragments: dict[str, str] = {}

    def fragments(self, version: int, render_board: Callable[[], dict[str, str]]) -> dict[str, str]:
        """The fragments for the change signal's `version`; rendered again when stale."""
        with self._lock:
            fresh = time.monotonic() - self._rendered_at < self._max_age
            if self._version != version or not fresh:
                # Rendered under the lock: streams woken by one change wait for one render.
                self._fragments = render_board()
                self._version = version
                self._rendered_at = time.monotonic()
            return self._fragments


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
    signal: ChangeSignal = request.app.state.console_changes
    shared = _shared_board(request)

    def render_board() -> dict[str, str]:
        context = {"board": incident_view.board(store, settings), "now": settings.clock.now()}
        return {
            "board": templates.get_template("board_incidents.html").render(context),
            "board-summary": templates.get_template("board_summary.html").render(context),
        }

    return live_fragments(request, session, lambda: shared.fragments(signal.version, render_board))


_SHARED_LOCK = threading.Lock()


def _shared_board(request: Request) -> SharedBoard:
    # One per app (each test hub has its own), made on the first board stream.
    with _SHARED_LOCK:
        shared: SharedBoard | None = getattr(request.app.state, "console_board", None)
        if shared is None:
            shared = SharedBoard()
            request.app.state.console_board = shared
        return shared
