"""Every error is JSON {error, detail}: bad bodies, oversized bodies, unknown paths, crashes."""

from __future__ import annotations

from collections.abc import Iterator

import requests

from hub.config import HubSettings
from hub.server import EmbeddedHub
from tests.hubtools import HTTP_TIMEOUT

LOGIN_BODY = {
    "username": "anyone",
    "password": "hunter2-but-longer",
    "device_id": "d1",
    "device_name": "Laptop",
}


def _assert_error(response: requests.Response, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error
    detail: str = body["detail"]
    assert detail
    return detail


def test_a_body_over_one_megabyte_is_413(hub: EmbeddedHub) -> None:
    padding = "x" * 1_000_001
    response = requests.post(
        f"{hub.url}/v1/auth/login",
        data=f'{{"username": "{padding}"}}',
        headers={"Content-Type": "application/json"},
        timeout=HTTP_TIMEOUT,
    )
    _assert_error(response, 413, "too_large")


def test_a_chunked_body_over_one_megabyte_is_413(hub: EmbeddedHub) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"username": "'
        for _ in range(11):
            yield b"x" * 100_000
        yield b'"}'

    # A generator makes requests send Transfer-Encoding: chunked, with no Content-Length.
    response = requests.post(
        f"{hub.url}/v1/auth/login",
        data=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=HTTP_TIMEOUT,
    )
    _assert_error(response, 413, "too_large")


def test_unknown_fields_are_422_invalid_request(hub: EmbeddedHub) -> None:
    response = requests.post(
        f"{hub.url}/v1/auth/login", json={**LOGIN_BODY, "is_admin": True}, timeout=HTTP_TIMEOUT
    )
    detail = _assert_error(response, 422, "invalid_request")
    assert "is_admin" in detail


def test_wrong_types_and_missing_fields_are_422_and_name_the_field(hub: EmbeddedHub) -> None:
    wrong_type = requests.post(
        f"{hub.url}/v1/auth/login", json={**LOGIN_BODY, "device_id": 42}, timeout=HTTP_TIMEOUT
    )
    missing = requests.post(f"{hub.url}/v1/auth/mfa", json={"code": "123456"}, timeout=HTTP_TIMEOUT)
    not_an_object = requests.post(f"{hub.url}/v1/auth/refresh", json=[1, 2], timeout=HTTP_TIMEOUT)

    assert "device_id" in _assert_error(wrong_type, 422, "invalid_request")
    assert "mfa_token" in _assert_error(missing, 422, "invalid_request")
    assert "JSON object" in _assert_error(not_an_object, 422, "invalid_request")


def test_invalid_json_is_422(hub: EmbeddedHub) -> None:
    response = requests.post(
        f"{hub.url}/v1/auth/login",
        data=b'{"username": ',
        headers={"Content-Type": "application/json"},
        timeout=HTTP_TIMEOUT,
    )
    assert "JSON" in _assert_error(response, 422, "invalid_request")


def test_validation_errors_do_not_echo_secrets(hub: EmbeddedHub) -> None:
    secret_password = "Pa55word-" + "z" * 1100
    response = requests.post(
        f"{hub.url}/v1/auth/login",
        json={**LOGIN_BODY, "password": secret_password, "extra": "x"},
        timeout=HTTP_TIMEOUT,
    )
    detail = _assert_error(response, 422, "invalid_request")
    assert "password" in detail
    assert "Pa55word" not in response.text


def test_unknown_path_and_wrong_method_are_json(hub: EmbeddedHub) -> None:
    not_found = requests.get(f"{hub.url}/v1/nothing-here", timeout=HTTP_TIMEOUT)
    wrong_method = requests.delete(f"{hub.url}/v1/me", timeout=HTTP_TIMEOUT)
    _assert_error(not_found, 404, "not_found")
    _assert_error(wrong_method, 405, "method_not_allowed")


def test_an_unexpected_failure_is_500_internal_error(hub_settings: HubSettings) -> None:
    hub = EmbeddedHub(hub_settings)

    def crash() -> None:
        raise RuntimeError("simulated defect")

    hub.app.add_api_route("/crash", crash)
    with hub:
        response = requests.get(f"{hub.url}/crash", timeout=HTTP_TIMEOUT)

    detail = _assert_error(response, 500, "internal_error")
    assert "simulated defect" not in detail
