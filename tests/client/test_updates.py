"""Signed updates: the real hub serves the manifest, a loopback server the test controls serves the
file (or plays a hostile hub or mirror). Each refusal is one attack from TUF's list (spec 1.5.2)
or one of the issue's cases; docs/updates-security.md maps them."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.core.errors import UpdateDownloadError, UpdateError, UpdateRefused
from client.core.paths import AppPaths
from client.core.policy import load_policy
from client.core.settings import Settings
from client.core.updates import UpdateChecker, _redirect_target
from hub.server import EmbeddedHub
from installer.signing import SecretKey
from installer.update_manifest import sign_manifest, signed_part
from tests.faultproxy import FaultProxy, HttpAnswer

PLATFORM = "linux-x86_64"
PAYLOAD = b"vigil release 2.0.0 " * 4096


@dataclass
class Route:
    """What the loopback server answers on one path."""

    body: bytes = b""
    # Content-Length sent; None: the real length.
    declared_length: int | None = None
    # Bytes sent before closing (truncation); None: all of them.
    send: int | None = None
    # Keep sending one byte at a time until the client goes away (slow or endless).
    trickle: bool = False
    # Answer 302 to this Location instead of the body.
    redirect: str | None = None
    # The status sent with the body.
    status: int = 200


@dataclass
class FileServer:
    """A loopback HTTP server with programmable answers; `hits` lists the paths asked for."""

    # Out of the repr: hypothesis prints a failing example's fixtures, and the bodies are large.
    routes: dict[str, Route] = field(default_factory=dict, repr=False)
    hits: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    url: str = ""


@pytest.fixture
def files() -> Iterator[FileServer]:
    state = FileServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            state.hits.append(path)
            route = state.routes.get(path)
            if route is None:
                self.send_error(404)
                return
            if route.redirect is not None:
                self.send_response(302)
                self.send_header("Location", route.redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(route.status)
            if not route.trickle:
                length = route.declared_length
                self.send_header(
                    "Content-Length", str(len(route.body) if length is None else length)
                )
            self.end_headers()
            if route.trickle:
                # Bounded by count and by the test's end, whichever is first.
                for _ in range(100_000):
                    if state.stop.wait(0.05):
                        return
                    try:
                        self.wfile.write(b" ")
                        self.wfile.flush()
                    except OSError:
                        return
                return
            try:
                self.wfile.write(route.body[: route.send])
            except OSError:
                # The client hung up on purpose (it saw more than the signed size).
                return

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.stop.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def key() -> SecretKey:
    return SecretKey.generate()


def manifest(
    key: SecretKey,
    url: str,
    *,
    body: bytes = PAYLOAD,
    version: str = "2.0.0",
    manifest_version: int = 5,
    platform: str = PLATFORM,
    minimum: str = "1.0.0",
    expires_in: timedelta = timedelta(days=7),
) -> dict[str, Any]:
    now = datetime.now(UTC)
    signed = signed_part(
        manifest_version=manifest_version,
        platform=platform,
        version=version,
        minimum_supported_version=minimum,
        notes="Faster alerts.",
        url=url,
        size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
        issued_at=now - timedelta(minutes=1),
        expires=now + expires_in,
    )
    return sign_manifest(key, signed)


def publish(hub: EmbeddedHub, document: dict[str, Any] | bytes) -> None:
    """Place a manifest where the hub serves it, as IT does."""
    folder = hub.settings.data_dir / "updates"
    folder.mkdir(exist_ok=True)
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    (folder / f"{PLATFORM}.json").write_bytes(data)


@pytest.fixture
def checker(tmp_path: Path, hub: EmbeddedHub, key: SecretKey) -> Callable[..., UpdateChecker]:
    def make(**overrides: Any) -> UpdateChecker:
        options: dict[str, Any] = {
            "download_dir": tmp_path / "downloads",
            "state_file": tmp_path / "update-state.json",
            "current_version": "1.2.0",
            "platform_name": PLATFORM,
            "manifest_deadline": 5.0,
            "download_deadline": 5.0,
        }
        options.update(overrides)
        hub_url = options.pop("hub_url", hub.url)
        public_key = options.pop("public_key", key.public_key)
        return UpdateChecker(hub_url, public_key, **options)

    return make


def downloads(tmp_path: Path) -> list[str]:
    folder = tmp_path / "downloads"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_newer_signed_release_is_downloaded_verified_and_announced(
    hub: EmbeddedHub, files: FileServer, key: SecretKey, checker: Callable[..., UpdateChecker]
) -> None:
    files.routes["/vigil-2.0.0.tar.gz"] = Route(PAYLOAD)
    publish(hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz"))
    announced: list[Any] = []
    update_checker = checker()
    update_checker.ready.connect(announced.append)

    ready = update_checker.check()

    assert ready is not None
    assert ready.version == "2.0.0" and ready.notes == "Faster alerts." and not ready.required
    assert ready.path.read_bytes() == PAYLOAD
    assert announced == [ready]


def test_an_update_is_required_when_the_running_version_is_no_longer_supported(
    hub: EmbeddedHub, files: FileServer, key: SecretKey, checker: Callable[..., UpdateChecker]
) -> None:
    files.routes["/vigil-2.0.0.tar.gz"] = Route(PAYLOAD)
    publish(hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz", minimum="1.5.0"))
    ready = checker().check()
    assert ready is not None and ready.required


def test_no_manifest_on_the_hub_means_up_to_date(checker: Callable[..., UpdateChecker]) -> None:
    assert checker().check() is None


def test_tampered_manifest_is_refused(
    hub: EmbeddedHub, files: FileServer, key: SecretKey, checker: Callable[..., UpdateChecker]
) -> None:
    document = manifest(key, f"{files.url}/vigil-2.0.0.tar.gz")
    document["signed"]["version"] = "9.0.0"
    publish(hub, document)
    with pytest.raises(UpdateRefused, match="does not match its signature"):
        checker().check()
    assert files.hits == []


def test_manifest_signed_by_another_key_is_refused(
    hub: EmbeddedHub, files: FileServer, checker: Callable[..., UpdateChecker]
) -> None:
    publish(hub, manifest(SecretKey.generate(), f"{files.url}/vigil-2.0.0.tar.gz"))
    with pytest.raises(UpdateRefused, match="not with the trusted release key"):
        checker().check()


@pytest.mark.parametrize("version", ["1.2.0", "1.1.9", "0.9"])
def test_a_version_not_newer_than_the_running_one_is_not_installed(
    hub: EmbeddedHub,
    files: FileServer,
    key: SecretKey,
    checker: Callable[..., UpdateChecker],
    tmp_path: Path,
    version: str,
) -> None:
    """Rollback (TUF) and downgrade/replay of an old, validly signed release."""
    files.routes["/old.tar.gz"] = Route(PAYLOAD)
    publish(hub, manifest(key, f"{files.url}/old.tar.gz", version=version))
    assert checker().check() is None
    assert files.hits == [] and downloads(tmp_path) == []


def test_hash_mismatch_from_a_malicious_mirror_is_refused_and_deleted(
    hub: EmbeddedHub,
    files: FileServer,
    key: SecretKey,
    checker: Callable[..., UpdateChecker],
    tmp_path: Path,
) -> None:
    evil = bytes(len(PAYLOAD))
    files.routes["/vigil-2.0.0.tar.gz"] = Route(evil)
    publish(hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz"))
    with pytest.raises(UpdateDownloadError, match="SHA-256 does not match"):
        checker().check()
    assert downloads(tmp_path) == []


def test_truncated_download_is_refused_and_deleted(
    hub: EmbeddedHub,
    files: FileServer,
    key: SecretKey,
    checker: Callable[..., UpdateChecker],
    tmp_path: Path,
) -> None:
    files.routes["/vigil-2.0.0.tar.gz"] = Route(PAYLOAD, send=len(PAYLOAD) // 2)
    publish(hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz"))
    with pytest.raises(UpdateDownloadError, match=r"cut short|could not be read whole"):
        checker().check()
    assert downloads(tmp_path) == []


def test_a_manifest_that_never_finishes_arriving_times_out(
    files: FileServer, checker: Callable[..., UpdateChecker]
) -> None:
    """Slow retrieval: a hostile hub trickles the manifest one byte at a time, forever."""
    files.routes["/v1/updates/latest"] = Route(trickle=True)
    with pytest.raises(UpdateDownloadError, match="did not arrive within 1 seconds"):
        checker(hub_url=files.url, manifest_deadline=1.0).check()


def test_a_download_that_never_finishes_times_out(
    hub: EmbeddedHub,
    files: FileServer,
    key: SecretKey,
    checker: Callable[..., UpdateChecker],
    tmp_path: Path,
) -> None:
    """Slow retrieval of the file itself."""
    files.routes["/vigil-2.0.0.tar.gz"] = Route(trickle=True)
    publish(hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz"))
    with pytest.raises(UpdateDownloadError, match="did not arrive within 1 seconds"):
        checker(download_deadline=1.0).check()
    assert downloads(tmp_path) == []


def test_endless_data_past_the_signed_size_is_cut_off(
    hub: EmbeddedHub,
    files: FileServer,
    key: SecretKey,
    checker: Callable[..., UpdateChecker],
    tmp_path: Path,
) -> None:
    files.routes["/vigil-2.0.0.tar.gz"] = Route(PAYLOAD * 50)
    publish(hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz"))
    with pytest.raises(UpdateDownloadError, match="longer than the"):
        checker().check()
    assert downloads(tmp_path) == []


def test_an_endless_manifest_is_cut_off(
    files: FileServer, checker: Callable[..., UpdateChecker]
) -> None:
    files.routes["/v1/updates/latest"] = Route(b"{" + b" " * 10_000_000)
    with pytest.raises(UpdateDownloadError, match="larger than 65536 bytes"):
        checker(hub_url=files.url).check()


def test_an_expired_manifest_is_refused(
    hub: EmbeddedHub, files: FileServer, key: SecretKey, checker: Callable[..., UpdateChecker]
) -> None:
    """Indefinite freeze: a mirror keeps serving an old manifest after it ran out."""
    publish(hub, manifest(key, f"{files.url}/x.tar.gz", expires_in=timedelta(seconds=-1)))
    with pytest.raises(UpdateRefused, match="expired"):
        checker().check()


def test_an_older_manifest_than_one_already_seen_is_refused(
    hub: EmbeddedHub, files: FileServer, key: SecretKey, checker: Callable[..., UpdateChecker]
) -> None:
    """Rollback of metadata: manifest 5 was seen; a replayed manifest 4 is refused even though it
    offers a newer version."""
    files.routes["/vigil-2.0.0.tar.gz"] = Route(PAYLOAD)
    publish(hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz", manifest_version=5))
    assert checker().check() is not None
    publish(hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz", manifest_version=4))
    with pytest.raises(UpdateRefused, match="older than manifest 5 already seen"):
        checker().check()


def test_fast_forward_by_a_forged_manifest_does_not_block_later_real_ones(
    hub: EmbeddedHub, files: FileServer, key: SecretKey, checker: Callable[..., UpdateChecker]
) -> None:
    """Fast-forward: a forged manifest with a huge number must not become the "highest seen"."""
    publish(hub, manifest(SecretKey.generate(), f"{files.url}/x.tar.gz", manifest_version=10**9))
    with pytest.raises(UpdateRefused):
        checker().check()
    files.routes["/vigil-2.0.0.tar.gz"] = Route(PAYLOAD)
    publish(hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz", manifest_version=6))
    assert checker().check() is not None


def test_mix_and_match_of_signed_parts_is_refused(
    hub: EmbeddedHub, files: FileServer, key: SecretKey, checker: Callable[..., UpdateChecker]
) -> None:
    """One release's signature on another release's details; and a reused manifest number."""
    first = manifest(key, f"{files.url}/vigil-2.0.0.tar.gz", version="2.0.0")
    second = manifest(key, f"{files.url}/vigil-2.1.0.tar.gz", version="2.1.0")
    publish(hub, {"signed": second["signed"], "signature": first["signature"]})
    with pytest.raises(UpdateRefused, match="does not match its signature"):
        checker().check()

    files.routes["/vigil-2.0.0.tar.gz"] = Route(PAYLOAD)
    publish(hub, first)
    assert checker().check() is not None
    publish(hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz", version="3.0.0"))
    with pytest.raises(UpdateRefused, match="reuses manifest number 5"):
        checker().check()


def test_a_release_for_another_platform_is_refused(
    hub: EmbeddedHub, files: FileServer, key: SecretKey, checker: Callable[..., UpdateChecker]
) -> None:
    """Wrong software: a genuine Windows release placed where Linux clients look."""
    publish(hub, manifest(key, f"{files.url}/vigil.exe", platform="windows-x86_64"))
    with pytest.raises(UpdateRefused, match="wrong software"):
        checker().check()
    assert files.hits == []


def test_arbitrary_installation_from_a_hostile_hub_fetches_nothing(
    files: FileServer, checker: Callable[..., UpdateChecker]
) -> None:
    """A hostile hub offers its own file with a manifest it signed itself: the file is never
    even requested."""
    attacker = SecretKey.generate()
    forged = manifest(attacker, f"{files.url}/payload.tar.gz")
    files.routes["/v1/updates/latest"] = Route(json.dumps(forged).encode())
    files.routes["/payload.tar.gz"] = Route(PAYLOAD)
    with pytest.raises(UpdateRefused, match="not with the trusted release key"):
        checker(hub_url=files.url).check()
    assert files.hits == ["/v1/updates/latest"]


def test_after_it_rotates_a_compromised_key_its_manifests_are_refused(
    hub: EmbeddedHub, files: FileServer, key: SecretKey, checker: Callable[..., UpdateChecker]
) -> None:
    """Key compromise: IT puts a new update key in the policy; the old key signs nothing more."""
    files.routes["/vigil-2.0.0.tar.gz"] = Route(PAYLOAD)
    publish(hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz", manifest_version=50))
    new_key = SecretKey.generate()
    with pytest.raises(UpdateRefused, match="not with the trusted release key"):
        checker(public_key=new_key.public_key).check()
    # The new key starts its own manifest numbering: the old key's 50 does not block its 1.
    publish(hub, manifest(new_key, f"{files.url}/vigil-2.0.0.tar.gz", manifest_version=1))
    assert checker(public_key=new_key.public_key).check() is not None


def test_a_manifest_naming_a_plain_http_file_elsewhere_is_refused(
    hub: EmbeddedHub, key: SecretKey, checker: Callable[..., UpdateChecker]
) -> None:
    publish(hub, manifest(key, "http://downloads.example.org/vigil-2.0.0.tar.gz"))
    with pytest.raises(UpdateRefused, match="not https"):
        checker().check()


def test_a_redirect_to_another_origin_over_plain_http_is_refused_before_any_request(
    hub: EmbeddedHub,
    files: FileServer,
    key: SecretKey,
    checker: Callable[..., UpdateChecker],
    tmp_path: Path,
) -> None:
    port = files.url.rsplit(":", 1)[1]
    files.routes["/vigil-2.0.0.tar.gz"] = Route(
        redirect=f"http://localhost:{port}/elsewhere/vigil-2.0.0.tar.gz"
    )
    files.routes["/elsewhere/vigil-2.0.0.tar.gz"] = Route(PAYLOAD)
    publish(hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz"))

    with pytest.raises(UpdateDownloadError, match="leaves https"):
        checker().check()

    assert files.hits == ["/vigil-2.0.0.tar.gz"], "the redirect target was never asked"
    assert downloads(tmp_path) == []


def test_a_redirect_within_the_same_origin_is_followed(
    hub: EmbeddedHub, files: FileServer, key: SecretKey, checker: Callable[..., UpdateChecker]
) -> None:
    files.routes["/vigil-2.0.0.tar.gz"] = Route(redirect="/mirror/vigil-2.0.0.tar.gz")
    files.routes["/mirror/vigil-2.0.0.tar.gz"] = Route(PAYLOAD)
    publish(hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz"))

    ready = checker().check()

    assert ready is not None and ready.path.read_bytes() == PAYLOAD


def test_endless_redirects_stop(
    hub: EmbeddedHub, files: FileServer, key: SecretKey, checker: Callable[..., UpdateChecker]
) -> None:
    files.routes["/vigil-2.0.0.tar.gz"] = Route(redirect="/vigil-2.0.0.tar.gz")
    publish(hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz"))

    with pytest.raises(UpdateDownloadError, match="redirected more than"):
        checker().check()

    assert len(files.hits) == 6


@pytest.mark.parametrize(
    "current, location",
    [
        ("https://downloads.example.org/v.tar.gz", "http://downloads.example.org/v.tar.gz"),
        ("https://downloads.example.org/v.tar.gz", "ftp://downloads.example.org/v.tar.gz"),
        ("https://downloads.example.org/v.tar.gz", "file:///etc/passwd"),
        ("http://127.0.0.1:8600/v.tar.gz", "http://evil.example.net/v.tar.gz"),
    ],
)
def test_no_redirect_leaves_https(current: str, location: str) -> None:
    with pytest.raises(UpdateDownloadError, match="leaves https"):
        _redirect_target(current, location, "the update file")


def test_a_redirect_to_https_on_another_host_is_allowed() -> None:
    target = _redirect_target("https://downloads.example.org/v", "//cdn.example.net/v", "x")
    assert target == "https://cdn.example.net/v"


# The hub's several addresses (IT's hub_urls): the manifest is asked of each in order.

# The manifest names its file relative to the address that serves it.
RELATIVE_FILE = "files/vigil-2.0.0.tar.gz"
RELATIVE_FILE_PATH = "/v1/updates/files/vigil-2.0.0.tar.gz"


def closed_port_url() -> str:
    """A loopback address where nothing listens: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def second_hub(start_hub: Callable[..., EmbeddedHub], tmp_path: Path) -> EmbeddedHub:
    """Another hub process with its own data folder, so each serves its own manifest copy."""
    return start_hub(data_dir=tmp_path / "hub-b-data")


@pytest.fixture
def front(hub: EmbeddedHub) -> Iterator[FaultProxy]:
    """An address of `hub` through a proxy that can refuse connections or answer for the hub."""
    proxy = FaultProxy((hub.host, hub.port)).start()
    yield proxy
    proxy.stop()


def serve_manifest(server: FileServer, document: dict[str, Any]) -> None:
    """Make the loopback server answer as a hub with `document` and the file it names."""
    server.routes["/v1/updates/latest"] = Route(json.dumps(document).encode())
    server.routes[RELATIVE_FILE_PATH] = Route(PAYLOAD)


def test_with_the_first_address_closed_the_manifest_and_file_come_from_the_second(
    files: FileServer, key: SecretKey, checker: Callable[..., UpdateChecker]
) -> None:
    serve_manifest(files, manifest(key, RELATIVE_FILE))

    ready = checker(hub_url=[closed_port_url(), files.url]).check()

    assert ready is not None and ready.path.read_bytes() == PAYLOAD
    # The relative file address was resolved against the second address, which served it.
    assert files.hits == ["/v1/updates/latest", RELATIVE_FILE_PATH]


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_first_address_answering_502_503_or_504_is_passed_over_for_the_second(
    hub: EmbeddedHub,
    front: FaultProxy,
    second_hub: EmbeddedHub,
    files: FileServer,
    key: SecretKey,
    checker: Callable[..., UpdateChecker],
    status: int,
) -> None:
    files.routes["/vigil-2.0.0.tar.gz"] = Route(PAYLOAD)
    publish(second_hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz"))
    front.answer_with(HttpAnswer(status, "Unavailable", "text/html", b"<h1>down</h1>"))

    ready = checker(hub_url=[front.url, second_hub.url]).check()

    assert ready is not None and ready.path.read_bytes() == PAYLOAD
    assert files.hits == ["/vigil-2.0.0.tar.gz"]


def test_a_first_hub_answering_500_for_its_own_damaged_manifest_is_passed_over(
    hub: EmbeddedHub,
    second_hub: EmbeddedHub,
    files: FileServer,
    key: SecretKey,
    checker: Callable[..., UpdateChecker],
) -> None:
    """The real hub answers 500 for a manifest file that is not JSON: that file is this
    process's own, and the second address has a good copy."""
    publish(hub, b"{not json")
    files.routes["/vigil-2.0.0.tar.gz"] = Route(PAYLOAD)
    publish(second_hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz"))

    assert checker(hub_url=[hub.url, second_hub.url]).check() is not None


def test_a_first_address_that_times_out_is_passed_over_for_the_second(
    hub: EmbeddedHub, files: FileServer, key: SecretKey, checker: Callable[..., UpdateChecker]
) -> None:
    files.routes["/v1/updates/latest"] = Route(trickle=True)
    publish(hub, manifest(key, f"{hub.url}/nothing-here.tar.gz", version="1.0.0"))

    assert checker(hub_url=[files.url, hub.url], manifest_deadline=1.0).check() is None

    assert files.hits == ["/v1/updates/latest"]


def test_a_404_from_the_first_address_is_the_answer_and_the_second_is_not_asked(
    hub: EmbeddedHub, files: FileServer, key: SecretKey, checker: Callable[..., UpdateChecker]
) -> None:
    serve_manifest(files, manifest(key, RELATIVE_FILE))

    assert checker(hub_url=[hub.url, files.url]).check() is None

    assert files.hits == []


def tampered(key: SecretKey, url: str) -> dict[str, Any]:
    document = manifest(key, url)
    document["signed"]["version"] = "9.0.0"
    return document


@pytest.mark.parametrize(
    "bad_manifest, refusal",
    [
        (tampered, "does not match its signature"),
        (lambda _key, url: manifest(SecretKey.generate(), url), "not with the trusted"),
        (lambda key, url: manifest(key, url, expires_in=timedelta(seconds=-1)), "expired"),
        (lambda key, url: manifest(key, url, platform="windows-x86_64"), "wrong software"),
    ],
    ids=["bad signature", "other key", "expired", "other platform"],
)
def test_a_refused_manifest_from_the_first_address_is_not_retried_on_the_second(
    hub: EmbeddedHub,
    files: FileServer,
    key: SecretKey,
    checker: Callable[..., UpdateChecker],
    tmp_path: Path,
    bad_manifest: Callable[[SecretKey, str], dict[str, Any]],
    refusal: str,
) -> None:
    publish(hub, bad_manifest(key, f"{files.url}{RELATIVE_FILE_PATH}"))
    serve_manifest(files, manifest(key, RELATIVE_FILE))

    with pytest.raises(UpdateRefused, match=refusal):
        checker(hub_url=[hub.url, files.url]).check()

    assert files.hits == [], "the second address was never asked, nor the file fetched"
    assert downloads(tmp_path) == []


def test_when_every_address_is_down_one_error_names_their_count(
    front: FaultProxy, checker: Callable[..., UpdateChecker], caplog: pytest.LogCaptureFixture
) -> None:
    front.answer_with(HttpAnswer(503, "Unavailable", "text/plain", b"down"))
    addresses = [closed_port_url(), front.url, closed_port_url()]

    with pytest.raises(UpdateDownloadError) as raised:
        checker(hub_url=addresses).check()

    message = raised.value.message
    assert message.startswith("The hub could not be reached at any of its 3 addresses")
    assert message.endswith("Vigil will try again later.")
    assert all(address in message for address in addresses)
    assert "it answered 503" in message
    assert "Traceback" not in message and "@" not in message
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    assert "Traceback" not in caplog.text


def test_the_highest_manifest_seen_is_one_state_for_every_address(
    hub: EmbeddedHub,
    front: FaultProxy,
    second_hub: EmbeddedHub,
    files: FileServer,
    key: SecretKey,
    checker: Callable[..., UpdateChecker],
) -> None:
    """Manifest 5 came from the preferred; a backup still serving manifest 4 is a rollback."""
    files.routes["/vigil-2.0.0.tar.gz"] = Route(PAYLOAD)
    publish(hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz", manifest_version=5))
    publish(second_hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz", manifest_version=4))
    addresses = [front.url, second_hub.url]
    assert checker(hub_url=addresses).check() is not None

    front.refuse_connections()

    with pytest.raises(UpdateRefused, match="older than manifest 5 already seen"):
        checker(hub_url=addresses).check()


def test_a_file_named_by_the_second_address_still_must_be_https_elsewhere(
    second_hub: EmbeddedHub, key: SecretKey, checker: Callable[..., UpdateChecker]
) -> None:
    publish(second_hub, manifest(key, "http://downloads.example.org/vigil-2.0.0.tar.gz"))
    with pytest.raises(UpdateRefused, match="not https"):
        checker(hub_url=[closed_port_url(), second_hub.url]).check()


def test_forty_parallel_checks_with_the_first_address_down_all_get_the_same_file(
    files: FileServer, key: SecretKey, checker: Callable[..., UpdateChecker], tmp_path: Path
) -> None:
    serve_manifest(files, manifest(key, RELATIVE_FILE))
    addresses = [closed_port_url(), files.url]

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(lambda _: checker(hub_url=addresses).check(), range(40)))

    assert all(ready is not None and ready.version == "2.0.0" for ready in results)
    assert downloads(tmp_path) == ["vigil-2.0.0.tar.gz"], "no partial file is left behind"
    assert (tmp_path / "downloads" / "vigil-2.0.0.tar.gz").read_bytes() == PAYLOAD


@pytest.mark.parametrize(
    "addresses, allow_plain_http, problem",
    [
        ([], False, "must list at least one hub address"),
        (
            ["https://hub-a.example.org", "https://HUB-A.example.org:443/"],
            False,
            "entry 2 ('https://HUB-A.example.org:443/') is the same address as entry 1",
        ),
        (
            ["https://hub-a.example.org", "https://hub-b.\u202egro.elpmaxe"],
            False,
            "entry 2 ('https://hub-b.\\u202egro.elpmaxe') contains control or invisible",
        ),
        (
            ["https://hub-a.example.org", "http://hub-b.example.org"],
            False,
            "entry 2 ('http://hub-b.example.org') uses plain http://",
        ),
        (["https://hub-a.example.org", "<b>hub</b>"], False, "entry 2 ('<b>hub</b>') must be a"),
        (["https://hub-a.example.org", ""], False, "entry 2 ('') must be a URL"),
        (["https://hub-a.example.org", 443], False, "entry 2 must be a URL"),
        ([f"https://hub-{n}.example.org" for n in range(9)], False, "at most 8"),
    ],
    ids=["empty", "duplicate", "U+202E", "plain http", "HTML", "empty entry", "number", "nine"],
)
def test_a_hostile_address_list_is_refused_naming_the_entry(
    key: SecretKey, tmp_path: Path, addresses: list[Any], allow_plain_http: bool, problem: str
) -> None:
    with pytest.raises(UpdateError) as raised:
        UpdateChecker(
            addresses,
            key.public_key,
            download_dir=tmp_path / "downloads",
            state_file=tmp_path / "update-state.json",
            allow_plain_http=allow_plain_http,
        )
    assert raised.value.message.startswith("Updates cannot be checked: the list of hub addresses")
    assert problem in raised.value.message


def test_plain_http_backups_are_taken_when_it_allows_them(key: SecretKey, tmp_path: Path) -> None:
    checker = UpdateChecker(
        ["https://hub-a.example.org", "http://hub-b.example.org/"],
        key.public_key,
        download_dir=tmp_path / "downloads",
        state_file=tmp_path / "update-state.json",
        allow_plain_http=True,
    )
    assert checker.hub_urls == ("https://hub-a.example.org", "http://hub-b.example.org")


def test_the_checker_from_settings_asks_every_address_of_the_policy(
    hub: EmbeddedHub, files: FileServer, key: SecretKey, tmp_path: Path
) -> None:
    preferred = closed_port_url()
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "hub_urls": [preferred, hub.url],
                "update_public_key": key.public_key.to_base64(),
            }
        ),
        encoding="utf-8",
    )
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    client_settings = Settings.load(paths, load_policy(policy))
    files.routes["/vigil-2.0.0.tar.gz"] = Route(PAYLOAD)
    publish(hub, manifest(key, f"{files.url}/vigil-2.0.0.tar.gz"))

    update_checker = UpdateChecker.from_settings(client_settings, paths)

    assert update_checker is not None
    assert update_checker.hub_urls == (preferred, hub.url)
    update_checker.current_version = "1.2.0"
    update_checker.platform = PLATFORM
    ready = update_checker.check()
    assert ready is not None and ready.path.read_bytes() == PAYLOAD


# What an address does when asked for the manifest, for the property below.
ADDRESS_KINDS = ("closed", "503", "500", "404", "good", "refused")


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(kinds=st.lists(st.sampled_from(ADDRESS_KINDS), min_size=1, max_size=8))
def test_the_first_address_that_answers_decides_and_no_later_one_is_asked(
    files: FileServer,
    key: SecretKey,
    checker: Callable[..., UpdateChecker],
    tmp_path_factory: pytest.TempPathFactory,
    kinds: list[str],
) -> None:
    good = json.dumps(manifest(key, RELATIVE_FILE)).encode()
    refused = json.dumps(tampered(key, RELATIVE_FILE)).encode()
    closed = closed_port_url()
    addresses = []
    for number, kind in enumerate(kinds):
        base = f"/{number}-{kind}"
        addresses.append(f"{closed if kind == 'closed' else files.url}{base}")
        if kind in ("503", "500"):
            files.routes[f"{base}/v1/updates/latest"] = Route(b"down", status=int(kind))
        elif kind in ("good", "refused"):
            body = good if kind == "good" else refused
            files.routes[f"{base}/v1/updates/latest"] = Route(body)
            files.routes[f"{base}{RELATIVE_FILE_PATH}"] = Route(PAYLOAD)
    files.hits.clear()
    deciding = next((n for n, kind in enumerate(kinds) if kind in ("404", "good", "refused")), None)

    # Each example is a laptop of its own: one that kept the last example's manifest 5 would
    # refuse this one's, signed a second later, as manifest 5 changed after it was seen.
    laptop = tmp_path_factory.mktemp("laptop")
    update_checker = checker(
        hub_url=addresses,
        state_file=laptop / "update-state.json",
        download_dir=laptop / "downloads",
    )
    if deciding is None:
        with pytest.raises(UpdateDownloadError) as raised:
            update_checker.check()
        if len(kinds) > 1:
            assert f"at any of its {len(kinds)} addresses" in raised.value.message
    elif kinds[deciding] == "refused":
        with pytest.raises(UpdateRefused):
            update_checker.check()
    elif kinds[deciding] == "404":
        assert update_checker.check() is None
    else:
        ready = update_checker.check()
        assert ready is not None and ready.path.read_bytes() == PAYLOAD

    last = len(kinds) - 1 if deciding is None else deciding
    asked = [
        f"/{n}-{kind}/v1/updates/latest"
        for n, kind in enumerate(kinds[: last + 1])
        if kind != "closed"
    ]
    assert [hit for hit in files.hits if hit.endswith("/latest")] == asked
