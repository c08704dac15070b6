"""Every console route, whatever page adds it: signed out it leads to sign-in and changes nothing;
a form post without the session's CSRF token is refused; the admin pages refuse a dispatcher."""

from __future__ import annotations

import re
import uuid

import requests
from fastapi.routing import iter_route_contexts

from tests.console.conftest import ConsoleHub, form_token, signed_in_session

# The sign-in steps are open by design (their forms carry their own token), static files too.
OPEN_PREFIXES = ("/console/sign-in", "/console/static")
PLACEHOLDER = re.compile(r"\{[^}]+\}")


def _console_routes(console_hub: ConsoleHub) -> list[tuple[str, str]]:
    routes = {
        (method, PLACEHOLDER.sub(_value, route.path))
        for route in iter_route_contexts(console_hub.hub.app.routes)
        if route.path.startswith("/console") and not route.path.startswith(OPEN_PREFIXES)
        for method in route.methods or ()
        if method != "HEAD"
    }
    return sorted(routes)


def _value(match: re.Match[str]) -> str:
    name = match.group(0)
    return {"{username}": "avery", "{name}": "no-such-group"}.get(name, str(uuid.uuid4()))


def test_every_console_route_sends_a_signed_out_browser_to_sign_in(
    console_hub: ConsoleHub,
) -> None:
    routes = _console_routes(console_hub)
    assert len(routes) > 40
    for method, path in routes:
        answer = requests.request(method, console_hub.url(path), allow_redirects=False, timeout=10)
        assert answer.status_code == 303, (method, path, answer.status_code)
        assert answer.headers["location"].startswith("/console/sign-in?next="), (method, path)
        live = requests.request(
            method,
            console_hub.url(path),
            headers={"Accept": "text/event-stream"},
            allow_redirects=False,
            timeout=10,
        )
        # A live view without a session: 204 stops the browser's EventSource reconnecting.
        assert live.status_code == 204, (method, path, live.status_code)


def test_every_console_form_post_needs_the_sessions_token(console_hub: ConsoleHub) -> None:
    admin = signed_in_session(console_hub, "ada")
    token = form_token(admin.get(console_hub.url("/console")).text)
    for method, path in _console_routes(console_hub):
        if method == "GET":
            continue
        for data in ({}, {"csrf_token": "0" * 64}, {"csrf_token": token[:-1]}):
            answer = admin.request(
                method, console_hub.url(path), data=data, allow_redirects=False, timeout=10
            )
            assert answer.status_code == 403, (method, path, data, answer.status_code)
            assert "nothing was changed" in answer.text
    # Still signed in, nothing disabled or removed: the refused posts did nothing.
    assert admin.get(console_hub.url("/console"), allow_redirects=False).status_code == 200
    assert console_hub.store.accounts.find_user(username="avery") is not None
    summary = console_hub.store.accounts.user_summary(username="avery")
    assert summary is not None and summary.disabled_at is None


def test_the_admin_pages_refuse_a_dispatcher(console_hub: ConsoleHub) -> None:
    dispatcher = signed_in_session(console_hub, "dina")
    token = form_token(dispatcher.get(console_hub.url("/console")).text)
    admin_routes = [
        (method, path)
        for method, path in _console_routes(console_hub)
        if path.startswith("/console/admin")
    ]
    assert admin_routes
    for method, path in admin_routes:
        answer = dispatcher.request(
            method,
            console_hub.url(path),
            data={"csrf_token": token} if method != "GET" else None,
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 403, (method, path, answer.status_code)
    summary = console_hub.store.accounts.user_summary(username="avery")
    assert summary is not None and summary.disabled_at is None
