"""`vigil-policy check`: IT's policy is validated by the client's own rules, with the file named
in every error, before it goes into a package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from installer.policy import PolicyStepError, check_policy, main

CA_PATH = "/etc/vigil/ca.pem"


def write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"hub_url": "http://hub.example.org"}, "plain http://"),
        ({"idle_lock_minutes": 0}, "from 1 to 480, not 0"),
        ({"update_public_key": "bm90IGEga2V5"}, "'update_public_key' must be"),
        ({"content_key_id": "xyz"}, "16 hexadecimal digits"),
        ({"vpn": {"probe": "intranet"}}, "'vpn.probe' must be host:port"),
        ({"hub_urll": "https://hub.example.org"}, "unknown setting 'hub_urll'"),
        ('{"hub_url": ', "not valid JSON"),
        ({"ca_bundle": CA_PATH}, f"{CA_PATH} does not exist"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_file_and_the_problem(
    tmp_path: Path, content: object, expected: str
) -> None:
    path = write(tmp_path, content)
    with pytest.raises(PolicyStepError) as caught:
        check_policy(path)
    assert str(path) in str(caught.value) and expected in str(caught.value)


def test_the_ca_bundle_is_checked_from_its_local_copy(tmp_path: Path) -> None:
    path = write(tmp_path, {"hub_url": "https://hub.example.org", "ca_bundle": CA_PATH})
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("hello")
    with pytest.raises(PolicyStepError, match="holds no PEM certificate"):
        check_policy(path, bad)


def test_a_good_policy_passes_and_the_command_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, {"hub_url": "https://hub.example.org", "idle_lock_minutes": 10})
    assert main(["check", str(path)]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["check", str(tmp_path / "missing.json")]) == 1
    assert "does not exist" in capsys.readouterr().err
