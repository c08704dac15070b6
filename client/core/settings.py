"""Every client option, declared once, and the user's settings file layered under the IT policy.

An option the IT policy sets is locked: `get` answers the policy's value and `set` refuses it.
User settings are preferences, not security policy, so a damaged settings file is set aside and
defaults are used instead of stopping the app. No secret is ever stored here.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from client.core.errors import SettingsError
from client.core.events import Event
from client.core.hub_address import check_hub_url, check_hub_urls

if TYPE_CHECKING:
    from client.core.paths import AppPaths
    from client.core.policy import Policy
    from client.core.vpn import VpnRules
    from client.core.vpn_gate import VpnMode

log = logging.getLogger(__name__)


class OptionType:
    """How an option's value is checked: `parse` normalises it or raises ValueError."""

    def parse(self, value: Any) -> Any:
        """Check `value` and return it normalised; the ValueError text says what is wrong."""
        raise NotImplementedError


class Bool(OptionType):
    """true or false."""

    def parse(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value


@dataclass(frozen=True)
class Int(OptionType):
    """A whole number within bounds."""

    low: int
    high: int

    def parse(self, value: Any) -> int:
        expected = f"a whole number from {self.low} to {self.high}"
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"must be {expected}")
        if not self.low <= value <= self.high:
            raise ValueError(f"must be {expected}, not {value}")
        return value


class Text(OptionType):
    """A non-empty line of text."""

    def parse(self, value: Any) -> str:
        if not isinstance(value, str) or not value.strip() or "\n" in value:
            raise ValueError("must be a non-empty line of text")
        return value.strip()


@dataclass(frozen=True)
class Choice(OptionType):
    """One of a fixed list of words."""

    words: tuple[str, ...]

    def parse(self, value: Any) -> str:
        if value not in self.words:
            raise ValueError(f"must be one of {', '.join(self.words)}")
        return str(value)


class HubUrl(OptionType):
    """The hub's base URL; whether plain http is allowed is checked against allow_plain_http."""

    def parse(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a URL such as https://vigil-hub.example.org")
        # The plain-http rule needs allow_plain_http, so it is applied by the caller that knows it.
        return check_hub_url(value, allow_plain_http=True)


class HubUrls(OptionType):
    """IT's hub addresses, preferred first; plain http is checked like HubUrl's, by the caller."""

    def parse(self, value: Any) -> tuple[str, ...]:
        return check_hub_urls(value, allow_plain_http=True)


class KeyId(OptionType):
    """A content-signing key id: 16 hexadecimal digits."""

    def parse(self, value: Any) -> str:
        if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{16}", value):
            raise ValueError("must be 16 hexadecimal digits (the key id the hub shows in /v1/keys)")
        return value.lower()


class PublicKey(OptionType):
    """An Ed25519 public key in standard base64: the 32 raw bytes, or minisign's public key line
    (`Ed`, the 8-byte key id, the 32-byte key)."""

    def parse(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be an Ed25519 public key in standard base64")
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be an Ed25519 public key in standard base64") from None
        if len(raw) == 42 and raw.startswith(b"Ed"):
            return value
        if len(raw) != 32:
            raise ValueError(
                f"must be a 32-byte Ed25519 public key or the key line of minisign.pub, not "
                f"{len(raw)} bytes"
            )
        return value


class PemBundle(OptionType):
    """An absolute path to a readable PEM file holding at least one certificate."""

    def parse(self, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise ValueError("must be the path of a PEM certificate bundle")
        path = Path(value)
        if not path.is_absolute():
            raise ValueError(f"must be an absolute path, not {value!r}")
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            raise ValueError(f"{value} does not exist") from None
        except IsADirectoryError:
            raise ValueError(f"{value} is a folder, not a certificate file") from None
        except OSError as exc:
            raise ValueError(f"{value} cannot be read ({exc.strerror})") from None
        if b"-----BEGIN CERTIFICATE-----" not in text:
            raise ValueError(f"{value} holds no PEM certificate")
        return value


class Patterns(OptionType):
    """A list of interface name patterns (shell-style wildcards, case-insensitive)."""

    def parse(self, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list | tuple) or not value:
            raise ValueError("must be a non-empty list of interface name patterns")
        patterns = []
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise ValueError("must list only non-empty interface name patterns")
            patterns.append(item.strip())
        return tuple(patterns)


class HostPort(OptionType):
    """A `host:port` to probe; IPv6 hosts in brackets, e.g. `[fd00::1]:443`."""

    def parse(self, value: Any) -> str:
        if isinstance(value, str):
            host, port = split_host_port(value)
            if host and port is not None:
                return value
        raise ValueError("must be host:port, e.g. intranet.example.org:443")


@dataclass(frozen=True)
class Nullable(OptionType):
    """The inner type, or null for "not set"."""

    inner: OptionType

    def parse(self, value: Any) -> Any:
        return None if value is None else self.inner.parse(value)


def split_host_port(value: str) -> tuple[str, int | None]:
    """Split `host:port` (IPv6 host in brackets); the port is None when missing or invalid."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^\s:\[\]]+):(\d{1,5})", value)
    if match is None:
        return "", None
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    return host, port if 1 <= port <= 65535 else None


@dataclass(frozen=True)
class Option:
    """One client option: its name, type, default, what it does, and where IT may lock it."""

    name: str
    type: OptionType
    default: Any
    description: str
    # The key path in the IT policy file that sets (and locks) this option; None: IT cannot lock it.
    policy_key: tuple[str, ...] | None = None
    # A security setting: only IT's policy (or the build's default) sets it, never the user.
    policy_only: bool = False

    @property
    def lockable(self) -> bool:
        """Whether the IT policy may set and lock this option."""
        return self.policy_key is not None


OPTIONS: tuple[Option, ...] = (
    Option(
        "hub_url",
        Nullable(HubUrl()),
        None,
        "The hub's address, e.g. https://vigil-hub.example.org.",
        ("hub_url",),
    ),
    Option(
        "hub_urls",
        Nullable(HubUrls()),
        None,
        "The hub's addresses, preferred first: Vigil uses the first that answers, moves to the "
        "next when one fails, and goes back to the first once it answers again.",
        ("hub_urls",),
        # A backup address receives the agent's sign-in: only IT may name one.
        policy_only=True,
    ),
    Option(
        "ca_bundle",
        Nullable(PemBundle()),
        None,
        "A PEM file with the full certificate chain to trust for the hub, instead of the "
        "system's certificate authorities.",
        ("ca_bundle",),
        policy_only=True,
    ),
    Option(
        "content_key_id",
        Nullable(KeyId()),
        None,
        "The pinned content-signing key id; content signed with any other key is refused.",
        ("content_key_id",),
        policy_only=True,
    ),
    Option(
        "update_public_key",
        Nullable(PublicKey()),
        None,
        "The Ed25519 public key that signs application updates.",
        ("update_public_key",),
        policy_only=True,
    ),
    Option(
        "vpn_interface_patterns",
        Nullable(Patterns()),
        None,
        "Network interface names that count as VPN; unset uses Vigil's built-in list.",
        ("vpn", "interface_patterns"),
    ),
    Option(
        "vpn_probe",
        Nullable(HostPort()),
        None,
        "A host:port reachable only through the VPN, checked to confirm the VPN is up.",
        ("vpn", "probe"),
    ),
    Option(
        "vpn_required",
        Bool(),
        False,
        "Whether the agent must be on the VPN; the tray warns when it is off.",
        ("vpn", "required"),
    ),
    Option(
        "vpn_mode",
        Nullable(Choice(("off", "warn", "block"))),
        None,
        "What happens off the VPN: off (nothing), warn (the tray says so) or block (the library "
        "closes and sign-in and sync wait; alerts still arrive). Unset: warn when vpn.required.",
        ("vpn", "mode"),
        policy_only=True,
    ),
    Option(
        "idle_lock_minutes",
        Int(1, 480),
        15,
        "Minutes without input after which Vigil locks its windows.",
        ("idle_lock_minutes",),
    ),
    Option(
        "allow_plain_http",
        Bool(),
        False,
        "Allow an http:// hub address that is not on this machine (test set-ups only).",
        ("allow_plain_http",),
        policy_only=True,
    ),
    Option("start_at_login", Bool(), True, "Start Vigil when the user signs in to the computer."),
    Option("sounds", Bool(), True, "Play a sound for major and critical alerts."),
    Option(
        "minor_alert_notifications",
        Bool(),
        True,
        "Show desktop notifications for info and minor alerts (major and critical always pop up).",
    ),
    Option("last_username", Nullable(Text()), None, "The username last signed in with."),
    Option(
        "device_id",
        Nullable(Text()),
        None,
        "This installation's id, sent at sign-in; generated once.",
    ),
    Option(
        "sync_interval_minutes",
        Int(1, 60),
        5,
        "Minutes between background syncs with the hub.",
    ),
    Option(
        "critical_repeat_seconds",
        Int(5, 600),
        30,
        "Seconds between repeats of the critical tone while a critical alert waits for an answer.",
        ("alerts", "critical_repeat_seconds"),
    ),
    Option(
        "critical_fullscreen",
        Bool(),
        False,
        "Whether a critical alert takes over the whole screen until it is answered.",
        ("alerts", "critical_fullscreen"),
    ),
    Option(
        "patient_snooze_minutes",
        Int(0, 60),
        10,
        "Minutes a non-critical alert may wait while the agent is with a patient (0: never).",
        ("alerts", "patient_snooze_minutes"),
    ),
    Option(
        "sound_device",
        Nullable(Text()),
        None,
        "The audio output for alert tones (the player's device name); unset: the default.",
    ),
)

OPTIONS_BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}


def option(name: str) -> Option:
    """The declaration of option `name`; SettingsError when there is none."""
    try:
        return OPTIONS_BY_NAME[name]
    except KeyError:
        raise SettingsError(f"There is no setting called {name!r}.") from None


class Settings:
    """The effective options: IT policy first (locked), then the user's settings, then defaults.

    Events: `changed` (the option's name) after `set`.
    """

    def __init__(
        self,
        path: Path,
        policy: Policy,
        user_values: dict[str, Any],
        preserved: dict[str, Any],
        warnings: Sequence[str] = (),
    ) -> None:
        self.path = path
        self.policy = policy
        self.warnings: tuple[str, ...] = tuple(warnings)
        self.changed: Event[str] = Event("settings.changed")
        self._user = user_values
        # Keys this version does not know (from a newer Vigil) are written back untouched.
        self._preserved = preserved
        self._lock = threading.Lock()

    @classmethod
    def load(cls, paths: AppPaths, policy: Policy) -> Settings:
        """Read the user's settings file under `policy`; a damaged file is set aside, not fatal."""
        path = paths.settings_file
        warnings: list[str] = []
        raw = _read_settings_file(path, warnings)
        user: dict[str, Any] = {}
        preserved: dict[str, Any] = {}
        for name, value in raw.items():
            declared = OPTIONS_BY_NAME.get(name)
            if declared is None:
                preserved[name] = value
                continue
            if declared.policy_only:
                # Trust settings from a file the user (or malware as the user) can write would
                # let it widen what Vigil trusts: only IT's policy sets them.
                message = f"Ignored the saved setting {name!r}: only your IT policy can set it."
                log.warning("%s (settings file %s)", message, path)
                warnings.append(message)
                continue
            try:
                user[name] = declared.type.parse(value)
            except ValueError as exc:
                message = f"Ignored the saved setting {name!r}: it {exc}. Using the default."
                log.warning("%s (settings file %s)", message, path)
                warnings.append(message)
        settings = cls(path, policy, user, preserved, warnings)
        if settings.get("device_id") is None:
            # Imported here: only a first run needs it, and every start waits for this module.
            import uuid

            settings._user["device_id"] = str(uuid.uuid4())
            try:
                settings.save()
            except SettingsError as exc:
                # The id still works for this run; the next start simply makes another.
                log.warning("%s", exc.message)
        return settings

    def get(self, name: str) -> Any:
        """The effective value of option `name`."""
        declared = option(name)
        if name in self.policy.values:
            return self.policy.values[name]
        if declared.policy_only:
            return declared.default
        with self._lock:
            if name in self._user:
                return self._user[name]
        return declared.default

    def is_locked(self, name: str) -> bool:
        """Whether the IT policy sets option `name` (so the user cannot change it)."""
        option(name)
        return name in self.policy.values

    def set(self, name: str, value: Any) -> None:
        """Change a user option (not saved until `save`); SettingsError when locked or invalid."""
        declared = option(name)
        if self.is_locked(name):
            raise SettingsError(
                f"The setting {name!r} is set by your organisation's IT policy and can't be "
                "changed here."
            )
        if declared.policy_only:
            raise SettingsError(
                f"The setting {name!r} is a security setting that only your organisation's IT "
                "policy can set."
            )
        try:
            parsed = declared.type.parse(value)
        except ValueError as exc:
            raise SettingsError(f"The setting {name!r} {exc}.") from None
        if name == "hub_url" and parsed is not None:
            try:
                check_hub_url(parsed, allow_plain_http=bool(self.get("allow_plain_http")))
            except ValueError as exc:
                raise SettingsError(f"The setting 'hub_url' {exc}.") from None
        with self._lock:
            self._user[name] = parsed
        self.changed.emit(name)

    def save(self) -> None:
        """Write the user's settings atomically (temporary file, then rename over the old one)."""
        with self._lock:
            data = {**self._preserved, **{k: _to_json(v) for k, v in self._user.items()}}
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # mkstemp makes the file 0600, and the rename keeps it so.
            fd, temp_name = tempfile.mkstemp(
                dir=self.path.parent, prefix=".settings-", suffix=".tmp"
            )
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp_name, self.path)
            except BaseException:
                Path(temp_name).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise SettingsError(
                f"Your settings could not be saved to {self.path}: {exc.strerror}."
            ) from None

    def hub_addresses(self) -> tuple[str, ...]:
        """The hub addresses to use, preferred first: the policy's hub_urls, else hub_url alone,
        else none."""
        listed = self.get("hub_urls")
        if listed:
            return tuple(listed)
        single = self.get("hub_url")
        return (single,) if single else ()

    def vpn_mode(self) -> VpnMode:
        """The policy's VPN rule: its `vpn.mode`, else warn when `vpn.required`, else off."""
        from client.core.vpn_gate import VpnMode

        mode = self.get("vpn_mode")
        if mode is not None:
            return VpnMode(mode)
        return VpnMode.WARN if self.get("vpn_required") else VpnMode.OFF

    def vpn_rules(self) -> VpnRules:
        """The VPN detection rules in effect (policy, user settings, or built-in patterns)."""
        # Imported here: the VPN module (sockets, interfaces) is the core's, built after the tray
        # icon is up, while every start waits for this module.
        from client.core.vpn import DEFAULT_INTERFACE_PATTERNS, VpnRules

        patterns = self.get("vpn_interface_patterns") or DEFAULT_INTERFACE_PATTERNS
        probe = self.get("vpn_probe")
        host, port = split_host_port(probe) if probe else (None, None)
        return VpnRules(
            interface_patterns=tuple(patterns),
            probe_host=host,
            probe_port=port,
            required=bool(self.get("vpn_required")),
        )


def _to_json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _read_settings_file(path: Path, warnings: list[str]) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        problem = "it is not UTF-8 text"
    except OSError as exc:
        message = f"Your settings file {path} cannot be read ({exc.strerror}); using defaults."
        log.warning("%s", message)
        warnings.append(message)
        return {}
    else:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            problem = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
        else:
            if isinstance(raw, dict):
                return raw
            problem = "it is not a JSON object"
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
    try:
        os.replace(path, aside)
    except OSError as exc:
        message = (
            f"Your settings file {path} is damaged ({problem}) and could not be set aside "
            f"({exc.strerror}); Vigil is using default settings."
        )
    else:
        message = (
            f"Your settings file was damaged ({problem}); it was set aside as {aside} and "
            "Vigil is using default settings."
        )
    log.warning("%s", message)
    warnings.append(message)
    return {}
