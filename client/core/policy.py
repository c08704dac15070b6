"""The IT policy file: options IT presets and locks, validated strictly.

A malformed policy stops the app with a message that names the file and the problem; it is never
silently ignored. An absent file is an empty policy (nothing locked).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.core.errors import PolicyError
from client.core.hub_address import check_hub_url, check_hub_urls, same_address_key
from client.core.settings import OPTIONS, OPTIONS_BY_NAME

log = logging.getLogger(__name__)

# Policy key path -> option name, e.g. ("vpn", "probe") -> "vpn_probe".
_POLICY_KEYS: dict[tuple[str, ...], str] = {
    option.policy_key: option.name for option in OPTIONS if option.policy_key is not None
}
_GROUPS = {key[0] for key in _POLICY_KEYS if len(key) > 1}


@dataclass(frozen=True)
class Policy:
    """The options IT set, by option name; `source` is the file they came from."""

    source: Path | None = None
    values: Mapping[str, Any] = field(default_factory=dict)


def default_policy_path() -> Path:
    """Where IT installs the policy on this platform."""
    if sys.platform == "win32":
        return Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData")) / "Vigil" / "policy.json"
    if sys.platform == "darwin":
        return Path("/Library/Application Support/Vigil/policy.json")
    return Path("/etc/vigil/policy.json")


def load_policy(path: Path | None = None) -> Policy:
    """Read the policy from `path`, else VIGIL_POLICY, else the platform's place.

    An absent file is an empty policy; anything malformed raises PolicyError.
    """
    if path is None:
        env = os.environ.get("VIGIL_POLICY")
        path = Path(env) if env else default_policy_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        log.info("no IT policy at %s; nothing is locked", path)
        return Policy()
    except OSError as exc:
        raise _error(path, f"it cannot be read ({exc.strerror})") from None
    try:
        # utf-8-sig: policy files written with Windows editors often start with a BOM.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _error(path, "it is not UTF-8 text") from None
    try:
        raw = json.loads(text, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_nan)
    except json.JSONDecodeError as exc:
        raise _error(
            path, f"it is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except ValueError as exc:
        raise _error(path, str(exc)) from None
    values = _validate(path, raw)
    log.info("IT policy %s locks: %s", path, ", ".join(sorted(values)) or "nothing")
    return Policy(source=path, values=values)


def _validate(path: Path, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _error(path, "it must hold a JSON object ({...}) at the top level")
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _GROUPS:
            if not isinstance(value, dict):
                problems.append(f"'{key}' must be an object")
                continue
            for sub_key, sub_value in value.items():
                _take(values, problems, (key, sub_key), sub_value)
        else:
            _take(values, problems, (key,), value)
    plain_http = bool(values.get("allow_plain_http"))
    url = values.get("hub_url")
    if url is not None:
        try:
            check_hub_url(url, allow_plain_http=plain_http)
        except ValueError as exc:
            problems.append(f"'hub_url' {exc}")
    urls = values.get("hub_urls")
    if urls is not None:
        try:
            check_hub_urls(urls, allow_plain_http=plain_http)
        except ValueError as exc:
            problems.append(f"'hub_urls' {exc}")
        else:
            _lock_preferred(values, problems)
    if problems:
        raise _error(path, "; ".join(problems))
    return values


def _lock_preferred(values: dict[str, Any], problems: list[str]) -> None:
    """hub_urls' first entry is the hub_url everything else reads (and locks); a hub_url beside
    the list must be that same first entry, so the two never disagree about the preferred."""
    preferred = values["hub_urls"][0]
    single = values.get("hub_url")
    if single is None:
        values["hub_url"] = preferred
    elif same_address_key(single) != same_address_key(preferred):
        problems.append(
            f"'hub_url' ({single}) must be the first entry of 'hub_urls' ({preferred}) when both "
            "are set; or leave hub_url out"
        )


def _take(values: dict[str, Any], problems: list[str], key: tuple[str, ...], value: Any) -> None:
    dotted = ".".join(key)
    name = _POLICY_KEYS.get(key)
    if name is None:
        known = ", ".join(sorted(".".join(k) for k in _POLICY_KEYS))
        problems.append(f"unknown setting '{dotted}' (known: {known})")
        return
    declared = OPTIONS_BY_NAME[name]
    try:
        parsed = declared.type.parse(value)
    except ValueError as exc:
        problems.append(f"'{dotted}' {exc}")
        return
    # An explicit null leaves the option to the user rather than locking it to "unset".
    if parsed is not None:
        values[name] = parsed


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key '{key}' appears twice")
        result[key] = value
    return result


def _refuse_nan(constant: str) -> Any:
    raise ValueError(f"{constant} is not a valid JSON value")


def _error(path: Path, problem: str) -> PolicyError:
    return PolicyError(
        f"The IT policy file {path} is invalid: {problem}. Vigil cannot start until it is fixed; "
        "contact your IT team."
    )
