"""IT policy and user settings: a policy is validated strictly and locks what it sets; the user's
settings survive a round trip and a damaged settings file never stops the app."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client.core.errors import PolicyError, SettingsError
from client.core.paths import AppPaths
from client.core.policy import Policy, load_policy
from client.core.settings import OPTIONS, Settings
from client.core.vpn import DEFAULT_INTERFACE_PATTERNS


def write_ca_bundle(path: Path) -> Path:
    """A real CA certificate in PEM, as IT would ship."""
    trustme.CA(organization_name="Example Health").cert_pem.write_to_path(str(path))
    return path


def update_key() -> str:
    raw = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return base64.b64encode(raw).decode()


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    return AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")


@pytest.fixture
def good_policy(tmp_path: Path) -> dict[str, Any]:
    return {
        "hub_url": "https://vigil-hub.example.org/",
        "ca_bundle": str(write_ca_bundle(tmp_path / "ca.pem")),
        "content_key_id": "0123456789ABCDEF",
        "update_public_key": update_key(),
        "vpn": {
            "interface_patterns": ["corpvpn*", "tun*"],
            "probe": "intranet.example.org:443",
            "required": True,
        },
        "idle_lock_minutes": 10,
        "allow_plain_http": False,
    }


def write_policy(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_good_policy_is_loaded_and_locks_every_option_it_sets(
    tmp_path: Path, paths: AppPaths, good_policy: dict[str, Any]
) -> None:
    policy = load_policy(write_policy(tmp_path, good_policy))
    settings = Settings.load(paths, policy)

    assert settings.get("hub_url") == "https://vigil-hub.example.org"
    assert settings.get("content_key_id") == "0123456789abcdef"
    assert settings.get("idle_lock_minutes") == 10
    rules = settings.vpn_rules()
    assert rules.interface_patterns == ("corpvpn*", "tun*")
    assert (rules.probe_host, rules.probe_port, rules.required) == (
        "intranet.example.org",
        443,
        True,
    )
    locked = {option.name for option in OPTIONS if settings.is_locked(option.name)}
    assert locked == {
        "hub_url",
        "ca_bundle",
        "content_key_id",
        "update_public_key",
        "vpn_interface_patterns",
        "vpn_probe",
        "vpn_required",
        "idle_lock_minutes",
        "allow_plain_http",
    }
    with pytest.raises(SettingsError, match="IT policy"):
        settings.set("idle_lock_minutes", 60)
    with pytest.raises(SettingsError, match="IT policy"):
        settings.set("hub_url", "https://elsewhere.example.org")
    assert settings.get("idle_lock_minutes") == 10


def test_policy_wins_over_a_user_value_saved_earlier(
    tmp_path: Path, paths: AppPaths, good_policy: dict[str, Any]
) -> None:
    unlocked = Settings.load(paths, Policy())
    unlocked.set("hub_url", "https://old-hub.example.org")
    unlocked.set("idle_lock_minutes", 120)
    unlocked.save()

    settings = Settings.load(paths, load_policy(write_policy(tmp_path, good_policy)))

    assert settings.get("hub_url") == "https://vigil-hub.example.org"
    assert settings.get("idle_lock_minutes") == 10


def test_absent_policy_file_locks_nothing(tmp_path: Path, paths: AppPaths) -> None:
    policy = load_policy(tmp_path / "no-such-policy.json")
    settings = Settings.load(paths, policy)

    assert policy.values == {}
    assert not any(settings.is_locked(option.name) for option in OPTIONS)
    assert settings.vpn_rules().interface_patterns == DEFAULT_INTERFACE_PATTERNS


def test_policy_path_comes_from_vigil_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_policy(tmp_path, {"idle_lock_minutes": 5})
    monkeypatch.setenv("VIGIL_POLICY", str(path))

    assert load_policy().values == {"idle_lock_minutes": 5}


def test_plain_http_is_allowed_to_loopback_or_when_policy_allows_it(tmp_path: Path) -> None:
    local = load_policy(write_policy(tmp_path, {"hub_url": "http://127.0.0.1:8600"}))
    allowed = load_policy(
        write_policy(tmp_path, {"hub_url": "http://hub.lab:8600", "allow_plain_http": True})
    )

    assert local.values["hub_url"] == "http://127.0.0.1:8600"
    assert allowed.values["hub_url"] == "http://hub.lab:8600"


MALFORMED: list[tuple[str, Any, str]] = [
    ("bad JSON", '{"hub_url": "https://a.example",\n  "idle_lock_minutes": }', "line 2, column"),
    ("not an object", "[1, 2]", "JSON object"),
    ("unknown key", {"hub_ulr": "https://a.example"}, "unknown setting 'hub_ulr'"),
    ("unknown vpn key", {"vpn": {"probes": "a:1"}}, "unknown setting 'vpn.probes'"),
    ("vpn not an object", {"vpn": ["tun*"]}, "'vpn' must be an object"),
    ("duplicate key", '{"idle_lock_minutes": 5, "idle_lock_minutes": 6}', "appears twice"),
    ("idle minutes text", {"idle_lock_minutes": "10"}, "'idle_lock_minutes' must be"),
    ("idle minutes zero", {"idle_lock_minutes": 0}, "from 1 to 480, not 0"),
    ("idle minutes too many", {"idle_lock_minutes": 481}, "from 1 to 480, not 481"),
    ("idle minutes bool", {"idle_lock_minutes": True}, "'idle_lock_minutes' must be"),
    ("plain http", {"hub_url": "http://hub.example.org"}, "plain http://"),
    ("not a URL", {"hub_url": "vigil-hub.example.org"}, "'hub_url' must be a URL"),
    ("URL with password", {"hub_url": "https://a:b@hub.example.org"}, "user name or password"),
    ("key id short", {"content_key_id": "0123abcd"}, "16 hexadecimal digits"),
    ("key id not hex", {"content_key_id": "0123456789abcdeg"}, "16 hexadecimal digits"),
    ("update key", {"update_public_key": "bm90IGEga2V5"}, "32-byte Ed25519"),
    ("probe", {"vpn": {"probe": "intranet.example.org"}}, "'vpn.probe' must be host:port"),
    ("patterns", {"vpn": {"interface_patterns": "tun*"}}, "'vpn.interface_patterns'"),
    ("required text", {"vpn": {"required": "yes"}}, "'vpn.required' must be true or false"),
    ("plain http flag", {"allow_plain_http": 1}, "'allow_plain_http' must be true or false"),
    ("NaN", '{"idle_lock_minutes": NaN}', "NaN is not a valid JSON value"),
    ("CA bundle missing", {"ca_bundle": "/nonexistent/ca.pem"}, "does not exist"),
    ("CA bundle relative", {"ca_bundle": "ca.pem"}, "absolute path"),
]


@pytest.mark.parametrize(
    ("content", "problem"), [(c, p) for _, c, p in MALFORMED], ids=[i for i, _, _ in MALFORMED]
)
def test_malformed_policy_names_the_file_and_the_problem(
    tmp_path: Path, content: Any, problem: str
) -> None:
    path = write_policy(tmp_path, content)

    with pytest.raises(PolicyError) as raised:
        load_policy(path)

    assert str(path) in raised.value.message
    assert problem in raised.value.message


def test_policy_ca_bundle_must_be_a_readable_pem_file(tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("just some text\n")

    for bundle, problem in ((not_pem, "holds no PEM certificate"), (tmp_path, "is a folder")):
        with pytest.raises(PolicyError, match=problem):
            load_policy(write_policy(tmp_path, {"ca_bundle": str(bundle)}))


def test_policy_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_bytes(b'{"hub_url": "https://h\xe9.example"}')

    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(path)


def test_every_problem_in_a_policy_is_reported_at_once(tmp_path: Path) -> None:
    path = write_policy(tmp_path, {"idle_lock_minutes": 0, "colour": "red"})

    with pytest.raises(PolicyError) as raised:
        load_policy(path)

    assert "'idle_lock_minutes'" in raised.value.message
    assert "unknown setting 'colour'" in raised.value.message


def test_user_settings_round_trip(paths: AppPaths) -> None:
    settings = Settings.load(paths, Policy())
    device_id = settings.get("device_id")
    settings.set("hub_url", "https://vigil-hub.example.org")
    settings.set("sounds", False)
    settings.set("sync_interval_minutes", 10)
    settings.set("last_username", "amira")
    settings.save()

    again = Settings.load(paths, Policy())

    assert again.get("hub_url") == "https://vigil-hub.example.org"
    assert again.get("sounds") is False
    assert again.get("sync_interval_minutes") == 10
    assert again.get("last_username") == "amira"
    assert again.get("device_id") == device_id
    assert again.get("minor_alert_notifications") is True
    assert [p.name for p in paths.config_dir.iterdir()] == ["settings.json"]


def test_device_id_is_generated_once_and_kept(paths: AppPaths) -> None:
    first = Settings.load(paths, Policy()).get("device_id")

    assert isinstance(first, str) and len(first) == 36
    assert Settings.load(paths, Policy()).get("device_id") == first


def test_invalid_user_values_are_refused(paths: AppPaths) -> None:
    settings = Settings.load(paths, Policy())

    with pytest.raises(SettingsError, match="from 1 to 60"):
        settings.set("sync_interval_minutes", 0)
    with pytest.raises(SettingsError, match="plain http://"):
        settings.set("hub_url", "http://hub.example.org")
    with pytest.raises(SettingsError, match="no setting called"):
        settings.set("colour", "red")
    settings.set("hub_url", "http://localhost:8600")
    assert settings.get("hub_url") == "http://localhost:8600"


def test_corrupt_settings_file_is_set_aside_and_defaults_used(paths: AppPaths) -> None:
    paths.config_dir.mkdir(parents=True)
    damaged = b'{"sounds": false, "sync_interval'
    paths.settings_file.write_bytes(damaged)

    settings = Settings.load(paths, Policy())

    assert settings.get("sounds") is True
    assert len(settings.warnings) == 1
    assert "damaged" in settings.warnings[0]
    aside = [p for p in paths.config_dir.iterdir() if p.name.startswith("settings.json.corrupt-")]
    assert len(aside) == 1
    assert str(aside[0]) in settings.warnings[0]
    assert aside[0].read_bytes() == damaged
    settings.set("sounds", False)
    settings.save()
    assert Settings.load(paths, Policy()).get("sounds") is False


def test_one_bad_saved_value_is_dropped_and_the_rest_kept(paths: AppPaths) -> None:
    paths.config_dir.mkdir(parents=True)
    paths.settings_file.write_text(
        json.dumps({"sounds": False, "sync_interval_minutes": "often", "from_newer_vigil": 1})
    )

    settings = Settings.load(paths, Policy())
    settings.save()

    assert settings.get("sounds") is False
    assert settings.get("sync_interval_minutes") == 5
    assert any("sync_interval_minutes" in warning for warning in settings.warnings)
    # A key from a newer Vigil is kept, so going back and forth between versions loses nothing.
    assert json.loads(paths.settings_file.read_text())["from_newer_vigil"] == 1


def test_paths_follow_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_CONFIG_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "d"))

    paths = AppPaths.default()

    assert paths.settings_file == tmp_path / "c" / "settings.json"
    assert paths.cache_db == tmp_path / "d" / "cache.sqlite3"
    assert paths.outbox_db == tmp_path / "d" / "outbox.sqlite3"
