"""The hub's HTTP API as typed calls: one keep-alive session, typed errors, one transparent refresh.

The hub may have several addresses (IT's hub_urls): every request goes to the one in use
(client.core.hub_route), a request that fails there for want of the hub (refused, reset, timed out,
502/503/504) moves the route on, and is sent again at once on the next address when that is safe: a
GET, or any request that surely never left this computer.

TLS verification is always on. When IT gives a CA bundle it replaces the system's certificate
authorities for the hub (requests takes a single `verify` path), so the bundle must hold the full
chain IT wants trusted. Tokens and request bodies never appear in errors or logs.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, NoReturn

import requests
import requests.auth
import requests.utils

from client.core.backoff import Backoff
from client.core.errors import (
    AuthRequired,
    BadResponse,
    HubAddressError,
    HubError,
    HubOffline,
    InvalidCode,
    InvalidCredentials,
    LockedOut,
    RequestRefused,
    ServerError,
    UntrustedCertificate,
)
from client.core.hub_address import check_hub_url, check_hub_urls
from client.core.hub_route import HubRoute

log = logging.getLogger(__name__)

# 15 minutes: the hub's lockout period, used when a locked_out answer carries no retry time.
_DEFAULT_RETRY_AFTER = 900
_REFRESHABLE_CODES = frozenset({"token_expired", "token_invalid"})
_AUTH_ERRORS: dict[str, type[AuthRequired]] = {
    "invalid_credentials": InvalidCredentials,
    "invalid_code": InvalidCode,
    "code_already_used": InvalidCode,
    "mfa_token_invalid": InvalidCode,
}
# Error answers are small; a larger body is not one of ours and is not worth reading.
_MAX_ERROR_BODY = 64 * 1024
# What a proxy or load balancer in front of a hub process answers when that process is gone or
# overloaded: another address of the same hub may well answer.
_UNAVAILABLE_STATUSES = frozenset({502, 503, 504})
# Probing the preferred address while a backup is in use: a small GET a live hub answers at once.
_PROBE_PATH = "/healthz"
_PROBE_TIMEOUT = (3.0, 5.0)


def _user_agent() -> str:
    try:
        version = metadata.version("vigil")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    return f"Vigil/{version}"


class _Bearer(requests.auth.AuthBase):
    """Sets the bearer token; also stops requests from adding credentials from ~/.netrc."""

    def __init__(self, token: str | None) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._token is not None:
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_Bearer(<hidden>)"


class _AddressFailed(Exception):
    """A request failed for want of the hub at one address; `error` is what the caller sees if no
    other address helps, `request_sent` whether the hub may have received it."""

    def __init__(self, error: HubError, reason: str, *, request_sent: bool) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason
        self.request_sent = request_sent


class HubClient:
    """Calls the hub's JSON API and maps every failure to a typed HubError.

    `base_url` is the hub's address, or its addresses preferred first; `base_url` (the attribute)
    is always the preferred one, the hub's identity (its sign-ins are stored under it), and
    `current_url` the one requests go to now.
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        *,
        ca_bundle: str | None = None,
        allow_plain_http: bool = False,
        connect_timeout: float = 5.0,
        read_timeout: float = 20.0,
        probe_backoff: Backoff | None = None,
    ) -> None:
        urls = _checked_urls(base_url, allow_plain_http)
        self.base_url = urls[0]
        # Which address is in use; probes the preferred while a backup is.
        self.route = HubRoute(urls, probe=self._answers_at, probe_backoff=probe_backoff)
        self.refresher: Callable[[], str] | None = None
        # Called with each request's path before it is sent; raises to hold the request back
        # (the policy's VPN block mode, see client.core.vpn_gate).
        self.request_gate: Callable[[str], None] | None = None
        self._timeout = (connect_timeout, read_timeout)
        self._token: str | None = None
        # One refresh at a time: two threads refreshing the same rotated token would look like
        # a replay to the hub and revoke the whole sign-in.
        self._refresh_lock = threading.Lock()
        self._session = requests.Session()
        # The environment must never widen trust: with trust_env, REQUESTS_CA_BUNDLE or
        # CURL_CA_BUNDLE would replace the CAs Vigil trusts. Proxies from the environment (and
        # NO_PROXY) are still honoured, taken explicitly for the hub's address.
        self._session.trust_env = False
        self._proxies = {url: requests.utils.get_environ_proxies(url) for url in urls}
        self._session.headers["User-Agent"] = _user_agent()
        self._session.headers["Accept"] = "application/json"
        # Passed on every request, so no request can go out with a weaker setting.
        self._verify: str | bool = ca_bundle if ca_bundle else True

    def __repr__(self) -> str:
        return f"HubClient({self.base_url!r})"

    @property
    def current_url(self) -> str:
        """The address requests go to now (the preferred, unless it failed)."""
        return self.route.current

    def set_access_token(self, token: str | None) -> None:
        """Use `token` for authenticated calls from now on (None: signed out)."""
        self._token = token

    @property
    def has_access_token(self) -> bool:
        """Whether an access token is set (it may still have expired)."""
        return self._token is not None

    def get_json(
        self, path: str, *, params: Mapping[str, str | int] | None = None, auth: bool = True
    ) -> Any:
        """GET `path` and return its JSON body."""
        response = self._send("GET", path, params=params, auth=auth)
        return self._json_body(response)

    def timed_get(self, path: str) -> TimedAnswer:
        """GET `path` without a token, timing the answer and reading the hub's Date header."""
        started = time.monotonic()
        sent_at = time.time()
        response = self._send("GET", path, auth=False)
        elapsed = time.monotonic() - started
        response.close()
        return TimedAnswer(
            elapsed_seconds=elapsed,
            # The hub stamped its Date somewhere between sending and answering: the midpoint.
            local_time=sent_at + elapsed / 2,
            hub_time=_http_date(response.headers.get("Date", "")),
        )

    def post_json(
        self, path: str, body: Any, *, auth: bool = True, bearer: str | None = None
    ) -> Any:
        """POST `body` as JSON to `path`; return the JSON answer, or None for 204. `bearer`
        (with auth=False) sends that token instead of the session's, with no refresh."""
        headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else None
        response = self._send("POST", path, body=body, auth=auth, headers=headers)
        if response.status_code == 204:
            return None
        return self._json_body(response)

    def open_stream(
        self, path: str, *, headers: Mapping[str, str], read_timeout: float
    ) -> requests.Response:
        """Open a streaming GET (authenticated); the caller reads and closes the response."""
        return self._send(
            "GET",
            path,
            auth=True,
            stream=True,
            headers=headers,
            timeout=(self._timeout[0], read_timeout),
        )

    def close(self) -> None:
        """Stop probing and close the keep-alive connections."""
        self.route.close()
        self._session.close()

    def _send(
        self,
        method: str,
        path: str,
        *,
        auth: bool,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        stream: bool = False,
        headers: Mapping[str, str] | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> requests.Response:
        gate = self.request_gate
        if gate is not None:
            gate(path)
        send = _Request(method, path, auth, params, body, stream, headers, timeout)
        base = self.route.current
        tried = {base}
        # Bounded: each address is tried at most once per request.
        for _ in self.route.urls:
            try:
                return self._send_at(base, send)
            except _AddressFailed as failure:
                after = self.route.failed(base, failure.reason)
                # A POST the hub may have received is not sent twice by this layer: the caller's
                # own retry (acks and receipts are idempotent; a sign-in step is not) decides.
                safe = method == "GET" or not failure.request_sent
                if not safe or after in tried:
                    raise failure.error from None
                log.info("Sending %s %s again, to %s", method, path, after)
                base = after
                tried.add(base)
        raise AssertionError("unreachable: the last address tried raised")

    def _send_at(self, base: str, send: _Request) -> requests.Response:
        token = self._token
        if send.auth and token is None:
            token = self._refresh(None)
        response = self._send_once(base, send, token if send.auth else None)
        if send.auth and response.status_code == 401 and self.refresher is not None:
            answer = _read_error(response)
            if answer.code not in _REFRESHABLE_CODES:
                self._raise_for(base, response.status_code, answer)
            token = self._refresh(token)
            response = self._send_once(base, send, token)
        if response.status_code in _UNAVAILABLE_STATUSES:
            status = response.status_code
            answer = _read_error(response)
            try:
                self._raise_for(base, status, answer)
            except ServerError as exc:
                raise _AddressFailed(exc, f"it answered HTTP {status}", request_sent=True) from None
        if response.status_code >= 300:
            self._raise_for(base, response.status_code, _read_error(response))
        return response

    def _send_once(self, base: str, send: _Request, token: str | None) -> requests.Response:
        try:
            response = self._session.request(
                send.method,
                base + send.path,
                params=send.params,
                json=send.body,
                headers=dict(send.headers) if send.headers else None,
                auth=_Bearer(token),
                timeout=send.timeout or self._timeout,
                stream=send.stream,
                verify=self._verify,
                proxies=self._proxies[base],
                # The API never redirects; following one could downgrade to plain http.
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            raise UntrustedCertificate(
                f"The hub at {base} could not be verified: {_tls_reason(exc)}. "
                "If your organisation uses its own certificate authority, IT can add it with "
                "the ca_bundle policy setting."
            ) from None
        except requests.exceptions.InvalidURL:
            raise HubAddressError(f"The hub address {base!r} is not a valid URL.") from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            error = BadResponse(f"The hub at {base} cut its answer short. Try again in a moment.")
            raise _AddressFailed(error, "it cut its answer short", request_sent=True) from None
        except requests.exceptions.RequestException as exc:
            if _not_http(exc):
                raise BadResponse(
                    f"The address {base} answered, but not like a Vigil hub (the answer "
                    "is not HTTP). Check the hub address."
                ) from None
            reason = _network_reason(exc)
            raise _AddressFailed(
                self._offline(base, reason), reason, request_sent=not _surely_unsent(exc)
            ) from None
        log.debug("%s %s -> %s", send.method, send.path, response.status_code)
        return response

    def _answers_at(self, base: str) -> bool:
        """Whether the hub answers its liveness check at `base` now (the route's probe)."""
        try:
            response = self._session.get(
                base + _PROBE_PATH,
                timeout=_PROBE_TIMEOUT,
                verify=self._verify,
                proxies=self._proxies[base],
                allow_redirects=False,
            )
        except requests.exceptions.RequestException as exc:
            log.info(
                "The preferred hub address %s does not answer yet: %s", base, _network_reason(exc)
            )
            return False
        try:
            body = response.json() if response.status_code == 200 else None
        except ValueError:
            body = None
        finally:
            response.close()
        return isinstance(body, dict) and body.get("status") == "ok"

    def _refresh(self, failed_token: str | None) -> str:
        refresher = self.refresher
        if refresher is None:
            raise AuthRequired("Sign in to Vigil to continue.", "auth_required")
        with self._refresh_lock:
            current = self._token
            if current is not None and current != failed_token:
                # Another thread refreshed while this call waited: use its token.
                return current
            token = refresher()
            self._token = token
            return token

    def _offline(self, base: str, reason: str) -> HubOffline:
        return HubOffline(
            f"The hub at {base} cannot be reached: {reason}. Check your network or VPN; "
            "Vigil keeps working from its cache."
        )

    def _json_body(self, response: requests.Response) -> Any:
        try:
            content = response.content
        except requests.exceptions.RequestException:
            raise BadResponse(
                f"The hub at {self.current_url} cut its answer short. Try again in a moment."
            ) from None
        try:
            return json.loads(content)
        except ValueError:
            raise BadResponse(
                f"The hub at {self.current_url} sent an answer that is not valid JSON "
                f"(HTTP {response.status_code}). Check that the hub address points at a Vigil hub."
            ) from None

    def _raise_for(self, base: str, status: int, answer: _ErrorAnswer) -> NoReturn:
        where = f"The hub at {base}"
        if status < 400:
            raise BadResponse(
                f"{where} answered with an unexpected redirect (HTTP {status}). Check that the "
                "hub address is correct and uses https://."
            )
        if status >= 500:
            raise ServerError(
                f"{where} has a problem (HTTP {status}). Vigil keeps working from its cache and "
                "will try again.",
                status,
            )
        code = answer.code
        if status == 429 and code == "locked_out":
            retry_after = answer.retry_after
            minutes = max(1, -(-retry_after // 60))
            raise LockedOut(
                f"Too many failed sign-in attempts: the account is locked. Try again in "
                f"{minutes} minute{'s' if minutes != 1 else ''}.",
                retry_after,
            )
        text = answer.detail or (
            f"the hub refused the request (HTTP {status}, {code or 'no error code'})"
        )
        if status == 401:
            error_class = _AUTH_ERRORS.get(code or "", AuthRequired)
            raise error_class(_sentence(text), code or "auth_required")
        raise RequestRefused(_sentence(text), status, code or f"http_{status}")


@dataclass(frozen=True)
class _Request:
    """One request as the caller gave it, to be sent to whichever address is in use."""

    method: str
    path: str
    auth: bool
    params: Mapping[str, str | int] | None
    body: Any
    stream: bool
    headers: Mapping[str, str] | None
    timeout: tuple[float, float] | None


def _checked_urls(base_url: str | Sequence[str], allow_plain_http: bool) -> tuple[str, ...]:
    if isinstance(base_url, str):
        try:
            return (check_hub_url(base_url, allow_plain_http=allow_plain_http),)
        except ValueError as exc:
            raise HubAddressError(
                f"The hub address {base_url!r} is not usable: it {exc}."
            ) from None
    try:
        return check_hub_urls(base_url, allow_plain_http=allow_plain_http)
    except ValueError as exc:
        raise HubAddressError(f"The hub addresses are not usable: the list {exc}.") from None


@dataclass(frozen=True)
class TimedAnswer:
    """How long the hub took to answer, and its clock against ours (Unix seconds; hub_time None
    when it sent no usable Date header)."""

    elapsed_seconds: float
    local_time: float
    hub_time: float | None


def _http_date(header: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError, OverflowError):
        return None


@dataclass(frozen=True)
class _ErrorAnswer:
    """The protocol's fields of an error answer, as far as the body had them."""

    code: str | None
    detail: str | None
    retry_after: int


def _read_error(response: requests.Response) -> _ErrorAnswer:
    """Read (at most 64 KiB of) an error answer and close the response."""
    body: Any = None
    try:
        raw = b""
        for chunk in response.iter_content(chunk_size=8192):
            raw += chunk
            if len(raw) >= _MAX_ERROR_BODY:
                break
        body = json.loads(raw)
    except (ValueError, OSError, requests.exceptions.RequestException):
        body = None
    finally:
        response.close()
    if not isinstance(body, dict):
        body = {}
    code = body.get("error") if isinstance(body.get("error"), str) else None
    detail = body.get("detail")[:500] if isinstance(body.get("detail"), str) else None
    retry_after = body.get("retry_after")
    if not isinstance(retry_after, int) or isinstance(retry_after, bool) or retry_after < 0:
        retry_after = _retry_after_header(response.headers.get("Retry-After", ""))
    return _ErrorAnswer(code, detail, retry_after)


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _retry_after_header(header: str) -> int:
    header = header.strip()
    if header.isdigit():
        return int(header)
    if header:
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return _DEFAULT_RETRY_AFTER
        return max(0, int(when.timestamp() - time.time()))
    return _DEFAULT_RETRY_AFTER


def _network_reason(exc: requests.exceptions.RequestException) -> str:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "it did not answer in time"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "it stopped answering"
    chain = _exception_chain(exc)
    text = " ".join(type(e).__name__ + " " + str(e) for e in chain)
    if "NameResolutionError" in text or "Name or service not known" in text:
        return "its name could not be found (DNS)"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in text:
        return "the connection was refused"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "the connection failed or was lost"
    return "the request failed"


def _surely_unsent(exc: requests.exceptions.RequestException) -> bool:
    """Whether the request cannot have reached the hub: no connection was ever made."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    chain = _exception_chain(exc)
    # urllib3's NewConnectionError (NameResolutionError is one): the TCP connection never opened.
    names = {type(e).__name__ for e in chain}
    return bool(names & {"NewConnectionError", "NameResolutionError", "ConnectionRefusedError"})


def _not_http(exc: requests.exceptions.RequestException) -> bool:
    """Whether the peer answered with something that is not HTTP at all."""
    return any(
        isinstance(e, http.client.HTTPException) and not isinstance(e, ConnectionError)
        for e in _exception_chain(exc)
    )


def _tls_reason(exc: requests.exceptions.SSLError) -> str:
    match = re.search(r"certificate verify failed: ([^(\]')\"]+)", str(exc))
    if match:
        return f"its certificate is not trusted by this computer ({match.group(1).strip()})"
    if "hostname" in str(exc).lower():
        return "its certificate is for a different name"
    return "the secure (TLS) connection failed"


def _exception_chain(exc: BaseException) -> list[BaseException]:
    """The exception and those it wraps (cause, context, args, urllib3's `reason`)."""
    seen: list[BaseException] = []
    queue: list[BaseException] = [exc]
    # Bounded: wrapped exceptions are few, and a cycle must not hang the caller.
    while queue and len(seen) < 20:
        current = queue.pop(0)
        if any(current is e for e in seen):
            continue
        seen.append(current)
        reason = getattr(current, "reason", None)
        linked = [current.__cause__, current.__context__, reason, *current.args]
        queue.extend(e for e in linked if isinstance(e, BaseException))
    return seen
