"""Security headers on every answer, no-store on token answers, HSTS over HTTPS only, and the
OpenAPI schema only where it was turned on."""

from __future__ import annotations

import queue
import re
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from hub.config import HubSettings
from hub.server import EmbeddedHub
from tests.hub.test_cli import COMMAND, PROCESS_TIMEOUT
from tests.hubtools import (
    HTTP_TIMEOUT,
    auth_headers,
    create_user,
    login,
    next_code,
    submit_code,
)
from tests.security.test_transport import _serve_tls

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def assert_secure(response: requests.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.request.url, name)


def assert_not_stored(response: requests.Response) -> None:
    assert response.headers.get("Cache-Control") == "no-store", response.request.url
    assert response.headers.get("Pragma") == "no-cache", response.request.url


def test_token_answers_are_never_stored_and_every_answer_is_secured(hub: EmbeddedHub) -> None:
    secret = create_user(hub.store, "ana", "agent")
    password_step = login(hub.url, "ana")
    code_step = submit_code(hub.url, password_step.json()["mfa_token"], next_code(secret))
    tokens = code_step.json()
    refreshed = requests.post(
        f"{hub.url}/v1/auth/refresh",
        json={"refresh_token": tokens["refresh_token"]},
        timeout=HTTP_TIMEOUT,
    )
    token = refreshed.json()["access_token"]
    answers = [
        password_step,
        code_step,
        refreshed,
        login(hub.url, "ana", "wrong password"),
        requests.get(f"{hub.url}/healthz", timeout=HTTP_TIMEOUT),
        requests.get(f"{hub.url}/v1/me", headers=auth_headers(token), timeout=HTTP_TIMEOUT),
        requests.get(f"{hub.url}/v1/alerts", headers=auth_headers(token), timeout=HTTP_TIMEOUT),
        requests.get(f"{hub.url}/v1/me", timeout=HTTP_TIMEOUT),
        requests.get(f"{hub.url}/no/such/path", timeout=HTTP_TIMEOUT),
        requests.post(f"{hub.url}/v1/auth/login", data=b"{", timeout=HTTP_TIMEOUT),
        requests.post(f"{hub.url}/v1/auth/login", data=b"x" * 2_000_000, timeout=HTTP_TIMEOUT),
    ]

    assert [answer.status_code for answer in answers] == [
        200, 200, 200, 401, 200, 200, 200, 401, 404, 422, 413,
    ]  # fmt: skip
    for answer in answers:
        assert_secure(answer)
        assert_not_stored(answer)
        assert "Strict-Transport-Security" not in answer.headers


def test_the_stream_keeps_its_own_caching_and_gets_the_security_headers(
    hub: EmbeddedHub,
) -> None:
    secret = create_user(hub.store, "ana", "agent")
    mfa_token = login(hub.url, "ana").json()["mfa_token"]
    token = submit_code(hub.url, mfa_token, next_code(secret)).json()["access_token"]

    with requests.get(
        f"{hub.url}/v1/alerts/stream",
        headers=auth_headers(token),
        stream=True,
        timeout=HTTP_TIMEOUT,
    ) as stream:
        assert stream.status_code == 200
        assert_secure(stream)
        assert stream.headers["Cache-Control"] == "no-cache"


def test_an_unexpected_failure_gets_the_headers_too(hub_settings: HubSettings) -> None:
    hub = EmbeddedHub(hub_settings)

    def crash() -> None:
        raise RuntimeError("simulated defect")

    hub.app.add_api_route("/crash", crash)
    with hub:
        response = requests.get(f"{hub.url}/crash", timeout=HTTP_TIMEOUT)

    assert response.status_code == 500
    assert_secure(response)
    assert_not_stored(response)


def test_hsts_only_over_https(hub_settings: HubSettings, tmp_path: Path) -> None:
    tls_hub, ca_file = _serve_tls(hub_settings, tmp_path, ["127.0.0.1"])
    try:
        # Connection: close lets the hub end the TLS connection before it stops.
        response = requests.get(
            f"{tls_hub.url}/healthz",
            headers={"Connection": "close"},
            verify=str(ca_file),
            timeout=HTTP_TIMEOUT,
        )
    finally:
        tls_hub.stop()

    assert response.headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"
    assert_secure(response)


def test_the_openapi_schema_is_served_only_when_turned_on(
    start_hub: Callable[..., EmbeddedHub], tmp_path: Path
) -> None:
    default = start_hub()
    turned_on = start_hub(openapi=True, data_dir=tmp_path / "with-schema")

    hidden = requests.get(f"{default.url}/openapi.json", timeout=HTTP_TIMEOUT)
    docs = [
        requests.get(f"{default.url}{path}", timeout=HTTP_TIMEOUT) for path in ("/docs", "/redoc")
    ]
    shown = requests.get(f"{turned_on.url}/openapi.json", timeout=HTTP_TIMEOUT)

    assert hidden.status_code == 404
    assert hidden.json()["error"] == "not_found"
    assert [answer.status_code for answer in docs] == [404, 404]
    assert shown.status_code == 200
    assert "/v1/alerts" in shown.json()["paths"]


@pytest.mark.slow
def test_serve_openapi_turns_the_schema_on(tmp_path: Path) -> None:
    command = [*COMMAND, "serve", "--port", "0", "--openapi", "--log-level", "warning"]
    with subprocess.Popen(
        [*command, "--data", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_read_lines, args=(process, lines), daemon=True).start()
        try:
            url = None
            for _ in range(100):
                match = re.search(r"http://127\.0\.0\.1:\d+", lines.get(timeout=PROCESS_TIMEOUT))
                if match:
                    url = match.group(0)
                    break
            assert url is not None
            response = requests.get(f"{url}/openapi.json", timeout=HTTP_TIMEOUT)
        finally:
            process.terminate()
            try:
                process.wait(timeout=PROCESS_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=PROCESS_TIMEOUT)

    assert response.status_code == 200
    assert response.json()["info"]["title"] == "Vigil hub"


def _read_lines(process: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line)
