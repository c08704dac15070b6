"""Signed self-updates: fetch the hub's update manifest, check it, download and verify the file.

The manifest (`GET /v1/updates/latest?platform=P`) is JSON: `{"signed": {...}, "signature":
"<minisign signature file>"}`, the signature over the RFC 8785 encoding of `signed`, made with
the release key (the same key and format as the release files, so `minisign -V` checks both).
`signed` holds: type "vigil-update", manifest_version (an integer that grows with every manifest
IT signs), issued_at, expires, platform, version, minimum_supported_version, notes, and
artifact {url, size, sha256}. Nothing in it is used before the signature verifies.

Checks, each a typed UpdateError with a message that says what happened: the signature is by the
update key (IT policy, else the one built into the package); the manifest is for this platform,
not expired, and not older than the newest manifest this computer has seen for that key; the
version is newer than the running one; the download stays within its declared size and a time
limit, and its size and SHA-256 match before the file gets its final name.

The manifest is asked of the hub's addresses (IT's hub_urls) in order: one that gives no answer
(unreachable, timed out, 5xx) is passed over for the next; a 404 or a manifest is the answer. The
file named by a relative URL comes from the address that served the manifest.

Why not python-tuf (ngclient): TUF would add four signed roles (root, targets, snapshot,
timestamp), each with its own expiry, and a timestamp that must be re-signed every few days by an
online key or a job; the hub would have to serve a TUF repository (versioned N.root.json files,
metadata and target paths) instead of the one file IT places per platform; and TUF's signatures
are not minisign's, so IT would run two signing systems for the same release. For one artifact
per platform and one signer, the single signed document here binds version, platform, size and
hash together, which is what snapshot and targets protect against mixing. What TUF has and this
does not: threshold signatures and in-band root key rotation; here the update key is rotated
through the IT policy file (see docs/updates-security.md). Size was not the reason: tuf and
securesystemslib are small, pure Python.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import requests
import requests.utils
import rfc8785

from client.core import minisign
from client.core.errors import (
    ReleaseSignatureError,
    UpdateDownloadError,
    UpdateError,
    UpdateRefused,
)
from client.core.events import Event
from client.core.hub_address import check_hub_url, check_hub_urls, is_loopback_host

if TYPE_CHECKING:
    from client.core.paths import AppPaths
    from client.core.settings import Settings

log = logging.getLogger(__name__)

MANIFEST_TYPE = "vigil-update"
MAX_MANIFEST_BYTES = 64 * 1024
MAX_ARTIFACT_BYTES = 1024 * 1024 * 1024
BUILT_IN_KEY_FILE = "update-key.pub"
_VERSION = re.compile(r"^\d{1,6}(\.\d{1,6}){0,3}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,120}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 64 * 1024
MAX_REDIRECTS = 5
_SIGNED_FIELDS = {
    "type",
    "manifest_version",
    "issued_at",
    "expires",
    "platform",
    "version",
    "minimum_supported_version",
    "notes",
    "artifact",
}


def parse_version(text: str) -> tuple[int, ...]:
    """A release version (1 to 4 dot-separated whole numbers) as a comparable tuple."""
    if not isinstance(text, str) or not _VERSION.fullmatch(text):
        raise ValueError(f"{text!r} is not a release version such as 1.4.2")
    parts = tuple(int(part) for part in text.split("."))
    return parts + (0,) * (4 - len(parts))


def running_version() -> str:
    """This installation's version, from the package metadata (also in the frozen build)."""
    try:
        return metadata.version("vigil")
    except metadata.PackageNotFoundError:
        return "0"


def current_platform() -> str:
    """This computer's platform name as update manifests use it, e.g. linux-x86_64."""
    system = {"win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "aarch64": "arm64"}.get(machine, machine)
    return f"{system}-{machine}"


def manifest_signing_bytes(signed: Mapping[str, Any]) -> bytes:
    """The bytes the manifest's signature covers: RFC 8785 (canonical JSON) of `signed`."""
    return bytes(rfc8785.dumps(dict(signed)))


def built_in_update_key() -> minisign.PublicKey | None:
    """The update key the package was built with (next to the frozen app), if any."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle is None:
        return None
    path = Path(bundle) / BUILT_IN_KEY_FILE
    try:
        return minisign.PublicKey.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class Artifact:
    """The release file a manifest names."""

    url: str
    size: int
    sha256: str


@dataclass(frozen=True)
class UpdateManifest:
    """A manifest whose signature verified."""

    manifest_version: int
    issued_at: datetime
    expires: datetime
    platform: str
    version: str
    minimum_supported_version: str
    notes: str
    artifact: Artifact
    signed_sha256: str


@dataclass(frozen=True)
class UpdateReady:
    """A verified update file on disk, waiting to be installed."""

    version: str
    path: Path
    notes: str
    # The running version is older than the oldest one IT still supports.
    required: bool


class _NoAnswer(UpdateDownloadError):
    """A server gave no usable answer (unreachable, timed out, cut off, 5xx); for the manifest,
    another hub address may give one. `reason` says why in a few words, without secrets."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class UpdateChecker:
    """Looks for a newer signed release on the hub and downloads it, verified.

    `hub_urls` is the hub's address, or its addresses preferred first. `check` is blocking (run it
    off the UI thread) and answers UpdateReady, None when up to date, or raises an UpdateError.
    `ready` fires with each UpdateReady.
    """

    def __init__(
        self,
        hub_urls: str | Sequence[str],
        public_key: minisign.PublicKey,
        *,
        download_dir: Path,
        state_file: Path,
        current_version: str | None = None,
        platform_name: str | None = None,
        ca_bundle: str | None = None,
        allow_plain_http: bool = False,
        max_manifest_bytes: int = MAX_MANIFEST_BYTES,
        max_artifact_bytes: int = MAX_ARTIFACT_BYTES,
        manifest_deadline: float = 30.0,
        download_deadline: float = 30 * 60.0,
        read_timeout: float = 20.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hub_urls = _checked_urls(hub_urls, allow_plain_http)
        self.public_key = public_key
        self.download_dir = download_dir
        self.state_file = state_file
        self.current_version = current_version or running_version()
        self.platform = platform_name or current_platform()
        self.ready: Event[UpdateReady] = Event("updates.ready")
        self._allow_plain_http = allow_plain_http
        self._verify: str | bool = ca_bundle or True
        self._session = requests.Session()
        # The environment never widens trust (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE would replace
        # the CAs); proxies from it are still used, passed per request for its address.
        self._session.trust_env = False
        self._max_manifest = max_manifest_bytes
        self._max_artifact = max_artifact_bytes
        self._manifest_deadline = manifest_deadline
        self._download_deadline = download_deadline
        self._read_timeout = read_timeout
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, paths: AppPaths) -> UpdateChecker | None:
        """A checker for the configured hub addresses and update key; None when either is
        missing."""
        hub_urls = settings.hub_addresses()
        configured = settings.get("update_public_key")
        key = minisign.PublicKey.parse(configured) if configured else built_in_update_key()
        if not hub_urls or key is None:
            log.info("update checks are off: no %s", "hub address" if key else "update key")
            return None
        return cls(
            hub_urls,
            key,
            download_dir=paths.data_dir / "updates",
            state_file=paths.data_dir / "update-state.json",
            ca_bundle=settings.get("ca_bundle"),
            allow_plain_http=bool(settings.get("allow_plain_http")),
        )

    def check(self) -> UpdateReady | None:
        """Fetch and check the manifest, then download and verify the update it names."""
        answer = self._fetch_manifest()
        if answer is None:
            return None
        address, body = answer
        # A manifest that fails any check ends this check with UpdateRefused: no other address is
        # asked. A refusal is evidence that the hub, or someone between, served what the release
        # key did not sign as current (forged, expired, rolled back, another platform). Taking the
        # next address's answer instead would turn it into a quiet success, hidden from the log
        # and IT, and would let a tampering hub steer the client to a backup still serving an
        # older signed release, one IT has since replaced. An address that is merely down does
        # send the client on, which is why every address's manifest passes the same checks
        # against the one rollback state: the checks, not the address, are the defence.
        manifest = self.verify_manifest(body)
        self._remember(manifest)
        if parse_version(manifest.version) <= parse_version(self.current_version):
            log.info("up to date: running %s, newest %s", self.current_version, manifest.version)
            return None
        path = self._download(manifest, address)
        ready = UpdateReady(
            version=manifest.version,
            path=path,
            notes=manifest.notes,
            required=parse_version(self.current_version)
            < parse_version(manifest.minimum_supported_version),
        )
        log.info("update %s is ready at %s", ready.version, ready.path)
        self.ready.emit(ready)
        return ready

    def verify_manifest(self, body: bytes) -> UpdateManifest:
        """Check a manifest's signature, platform, expiry and version; UpdateRefused if not."""
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise _refused("it is not valid JSON") from None
        if not isinstance(document, dict) or set(document) != {"signed", "signature"}:
            raise _refused("it must hold exactly 'signed' and 'signature'")
        signed, signature_text = document["signed"], document["signature"]
        if not isinstance(signed, dict) or not isinstance(signature_text, str):
            raise _refused("'signed' must be an object and 'signature' a string")
        try:
            signature = minisign.Signature.parse(signature_text, what="the update manifest")
            minisign.verify(
                self.public_key,
                manifest_signing_bytes(signed),
                signature,
                what="the update manifest",
            )
        except ReleaseSignatureError as exc:
            raise UpdateRefused(f"Update refused: {exc.message}") from None
        manifest = _read_signed(signed)
        if manifest.platform != self.platform:
            raise _refused(
                f"it is for {manifest.platform}, and this computer is {self.platform} "
                "(wrong software)"
            )
        now = datetime.fromtimestamp(self._clock(), UTC)
        if manifest.expires <= now:
            raise _refused(
                f"it expired on {manifest.expires:%Y-%m-%d %H:%M} UTC; the hub may be serving "
                "an old copy. Ask IT to publish a fresh manifest"
            )
        seen = self._seen()
        if seen is not None:
            seen_version, seen_hash = seen
            if manifest.manifest_version < seen_version:
                raise _refused(
                    f"it is manifest {manifest.manifest_version}, older than manifest "
                    f"{seen_version} already seen here (a rollback)"
                )
            if manifest.manifest_version == seen_version and manifest.signed_sha256 != seen_hash:
                raise _refused(
                    f"it reuses manifest number {seen_version} with other contents; each "
                    "signed manifest needs a new number"
                )
        return manifest

    # Manifest download

    def _fetch_manifest(self) -> tuple[str, bytes] | None:
        """The manifest and the address that served it, or None when the hub has no update.

        The addresses are asked in IT's order, not from the one the HubClient's route uses now:
        the checker is built afresh from settings for each daily check, away from the HubClient,
        and a dead preferred address costs one connect timeout a day. A 404 (no update for this
        platform) or a manifest ends the search, as does any other answer (another status, a
        manifest too large, a certificate that fails); only an address that gives no answer
        (unreachable, timed out, cut off, 5xx) is passed over.
        """
        failures: list[tuple[str, _NoAnswer]] = []
        for address in self.hub_urls:
            try:
                body = self._fetch_manifest_from(address)
            except _NoAnswer as exc:
                log.info("update manifest: no answer from %s (%s)", address, exc.reason)
                failures.append((address, exc))
                continue
            return None if body is None else (address, body)
        if len(failures) == 1:
            raise failures[0][1]
        reasons = "; ".join(f"{address}: {failure.reason}" for address, failure in failures)
        raise UpdateDownloadError(
            f"The hub could not be reached at any of its {len(failures)} addresses ({reasons}); "
            "Vigil will try again later."
        )

    def _fetch_manifest_from(self, address: str) -> bytes | None:
        url = f"{address}/v1/updates/latest?platform={self.platform}"
        with self._get(url, "the update manifest", self._manifest_deadline) as response:
            if response.status_code == 404:
                log.info("the hub at %s has no update for %s", address, self.platform)
                return None
            message = (
                f"The hub answered {response.status_code} when asked for updates; Vigil will "
                "try again later."
            )
            if response.status_code >= 500:
                # Any 5xx, unlike the HubClient's 502-504 only: the manifest is a file in each
                # hub process's data folder, not in the shared database, so one process's 500
                # may be its own; and another address's manifest is checked just the same.
                raise _NoAnswer(message, f"it answered {response.status_code}")
            if response.status_code != 200:
                raise UpdateDownloadError(message)
            data = bytearray()
            for chunk in self._chunks(response, self._manifest_deadline, "the update manifest"):
                data += chunk
                if len(data) > self._max_manifest:
                    raise UpdateDownloadError(
                        f"The update manifest is larger than {self._max_manifest} bytes, far "
                        "more than a manifest needs; it was not read further."
                    )
            return bytes(data)

    # Artifact download

    def _download(self, manifest: UpdateManifest, address: str) -> Path:
        """Download the file `manifest` names; a relative URL is taken from `address`, the hub
        address that served the manifest."""
        artifact = manifest.artifact
        if artifact.size > self._max_artifact:
            raise _refused(
                f"its file is {artifact.size} bytes, more than the {self._max_artifact} allowed"
            )
        url = urljoin(f"{address}/v1/updates/latest", artifact.url)
        self._check_artifact_url(url)
        name = Path(urlsplit(url).path).name
        if not _FILE_NAME.fullmatch(name):
            raise _refused(f"its file name {name!r} is not a plain file name")
        final = self.download_dir / name
        if final.is_file() and _file_matches(final, artifact):
            return final
        self.download_dir.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed below, renamed or removed)
            dir=self.download_dir, prefix=".partial-", delete=False
        )
        temp = Path(handle.name)
        try:
            with handle, self._get(url, "the update file", self._download_deadline) as response:
                if response.status_code != 200:
                    raise UpdateDownloadError(
                        f"The update file's server answered {response.status_code}; Vigil will "
                        "try again later."
                    )
                digest = hashlib.sha256()
                received = 0
                what = "the update file"
                for chunk in self._chunks(response, self._download_deadline, what):
                    received += len(chunk)
                    if received > artifact.size:
                        raise UpdateDownloadError(
                            f"The update file is longer than the {artifact.size} bytes its "
                            "signed manifest says; the download was stopped and deleted."
                        )
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            if received != artifact.size:
                raise UpdateDownloadError(
                    f"The update file arrived cut short: {received} of {artifact.size} bytes. "
                    "It was deleted; Vigil will try again later."
                )
            if digest.hexdigest() != artifact.sha256:
                raise UpdateDownloadError(
                    "The update file's SHA-256 does not match its signed manifest: it was changed "
                    "or damaged on the way. It was deleted and will not be installed."
                )
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return final

    def _check_artifact_url(self, url: str) -> None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme == "https" and host:
            return
        if parts.scheme == "http" and host and (self._allow_plain_http or is_loopback_host(host)):
            return
        raise _refused(f"its file address {url!r} is not https://")

    # HTTP with a size cap and a total deadline

    def _get(self, url: str, what: str, deadline: float) -> requests.Response:
        """GET `url`, following at most MAX_REDIRECTS redirects, each one checked first."""
        for _ in range(MAX_REDIRECTS + 1):
            response = self._get_once(url, what, deadline)
            if not response.is_redirect:
                return response
            location = response.headers.get("Location", "")
            response.close()
            url = _redirect_target(url, location, what)
        raise UpdateDownloadError(
            f"The server of {what} redirected more than {MAX_REDIRECTS} times; nothing was "
            "downloaded."
        )

    def _get_once(self, url: str, what: str, deadline: float) -> requests.Response:
        try:
            return self._session.get(
                url,
                stream=True,
                timeout=(5.0, min(self._read_timeout, deadline)),
                verify=self._verify,
                allow_redirects=False,
                proxies=requests.utils.get_environ_proxies(url),
                headers={"User-Agent": f"Vigil/{self.current_version}"},
            )
        except requests.exceptions.Timeout:
            raise _too_slow(what, deadline) from None
        except requests.exceptions.SSLError:
            # Not passed over for another address, as the HubClient does not either: a
            # certificate that fails is misconfiguration or interception, which IT must see.
            raise UpdateDownloadError(
                f"The secure connection for {what} failed (certificate not trusted)."
            ) from None
        except requests.exceptions.RequestException as exc:
            raise _NoAnswer(
                f"Could not fetch {what} ({type(exc).__name__}); Vigil will try again later.",
                f"no answer ({type(exc).__name__})",
            ) from None

    def _chunks(self, response: requests.Response, deadline: float, what: str) -> Iterator[bytes]:
        """The body as it arrives; UpdateDownloadError once `deadline` seconds have passed.

        read1 returns whatever has arrived, so a server that trickles bytes cannot hold a read
        open past the deadline; a silent one is cut off by the read timeout.
        """
        end = time.monotonic() + deadline
        try:
            while True:
                if time.monotonic() >= end:
                    raise _too_slow(what, deadline)
                chunk = response.raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    return
                yield chunk
        except UpdateError:
            raise
        except Exception as exc:
            if time.monotonic() >= end:
                raise _too_slow(what, deadline) from None
            raise _NoAnswer(
                f"{_capital(what)} could not be read whole ({type(exc).__name__}); it was "
                "dropped. Vigil will try again later.",
                f"its answer was cut short ({type(exc).__name__})",
            ) from None
        finally:
            response.close()

    # Highest manifest seen, per update key

    def _state_key(self) -> str:
        return self.public_key.to_base64() if self.public_key.key_id else "bare-key"

    def _seen(self) -> tuple[int, str] | None:
        entry = _read_state(self.state_file).get(self._state_key())
        if not isinstance(entry, dict):
            return None
        version, digest = entry.get("manifest_version"), entry.get("signed_sha256")
        if isinstance(version, int) and isinstance(digest, str):
            return version, digest
        return None

    def _remember(self, manifest: UpdateManifest) -> None:
        state = _read_state(self.state_file)
        state[self._state_key()] = {
            "manifest_version": manifest.manifest_version,
            "signed_sha256": manifest.signed_sha256,
        }
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.state_file.parent, prefix=".update-state-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(state, handle, indent=2, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.state_file)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


def _redirect_target(current: str, location: str, what: str) -> str:
    """Where a redirect from `current` may go: never from https to anything else, and from a
    plain-http address (this computer, or allowed by IT) only within its own origin or to https."""
    target = urljoin(current, location)
    here, there = urlsplit(current), urlsplit(target)
    if there.scheme == "https" and there.hostname:
        return target
    same_origin = (there.scheme, there.netloc) == (here.scheme, here.netloc)
    if here.scheme == "http" and same_origin:
        return target
    raise UpdateDownloadError(
        f"The server of {what} redirected to {target!r}, which leaves https; nothing was "
        "downloaded from there."
    )


def _checked_urls(hub_urls: str | Sequence[str], allow_plain_http: bool) -> tuple[str, ...]:
    if isinstance(hub_urls, str):
        try:
            return (check_hub_url(hub_urls, allow_plain_http=allow_plain_http),)
        except ValueError as exc:
            raise UpdateError(f"Updates cannot be checked: the hub address {exc}.") from None
    try:
        return check_hub_urls(hub_urls, allow_plain_http=allow_plain_http)
    except ValueError as exc:
        raise UpdateError(f"Updates cannot be checked: the list of hub addresses {exc}.") from None


def _too_slow(what: str, deadline: float) -> _NoAnswer:
    return _NoAnswer(
        f"{_capital(what)} did not arrive within {deadline:g} seconds (the server is too slow "
        "or stalled); it was dropped. Vigil will try again later.",
        f"no answer within {deadline:g} seconds",
    )


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _read_state(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        # Losing this only weakens rollback protection until the next manifest; say so.
        log.warning("update state %s unreadable (%s); starting afresh", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _file_matches(path: Path, artifact: Artifact) -> bool:
    if path.stat().st_size != artifact.size:
        return False
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest() == artifact.sha256


def _read_signed(signed: dict[str, Any]) -> UpdateManifest:
    if set(signed) != _SIGNED_FIELDS:
        missing = sorted(_SIGNED_FIELDS - set(signed))
        extra = sorted(set(signed) - _SIGNED_FIELDS)
        raise _refused(f"its fields are wrong (missing: {missing}, unknown: {extra})")
    if signed["type"] != MANIFEST_TYPE:
        raise _refused(f"it is a {signed['type']!r} document, not a Vigil update (wrong software)")
    number = signed["manifest_version"]
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise _refused("manifest_version must be a whole number from 1")
    artifact = signed["artifact"]
    if not isinstance(artifact, dict) or set(artifact) != {"url", "size", "sha256"}:
        raise _refused("artifact must hold exactly url, size and sha256")
    size, sha256, url = artifact["size"], artifact["sha256"], artifact["url"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise _refused("artifact.size must be a positive whole number")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise _refused("artifact.sha256 must be 64 lowercase hex digits")
    if not isinstance(url, str) or not url:
        raise _refused("artifact.url must be a URL")
    for field in ("platform", "version", "minimum_supported_version", "notes"):
        if not isinstance(signed[field], str):
            raise _refused(f"{field} must be text")
    try:
        parse_version(signed["version"])
        parse_version(signed["minimum_supported_version"])
        issued_at = _parse_time(signed["issued_at"])
        expires = _parse_time(signed["expires"])
    except ValueError as exc:
        raise _refused(str(exc)) from None
    return UpdateManifest(
        manifest_version=number,
        issued_at=issued_at,
        expires=expires,
        platform=signed["platform"],
        version=signed["version"],
        minimum_supported_version=signed["minimum_supported_version"],
        notes=signed["notes"],
        artifact=Artifact(url=url, size=size, sha256=sha256),
        signed_sha256=hashlib.sha256(manifest_signing_bytes(signed)).hexdigest(),
    )


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise ValueError(f"{value!r} is not an RFC 3339 UTC time such as 2026-11-27T10:42:00Z")
    try:
        return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{value!r} is not an RFC 3339 UTC time") from None


def _refused(problem: str) -> UpdateRefused:
    return UpdateRefused(f"Update refused: the update manifest {problem}.")
