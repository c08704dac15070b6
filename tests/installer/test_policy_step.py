"""`vigil-policy check`: IT's policy is validated by the client's own rules, with the file named
in every error, before it goes into a package."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import trustme

from installer.policy import PolicyStepError, check_policy, inject, main

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


def test_check_warns_when_a_production_policy_pins_no_content_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, {"hub_url": "https://hub.example.org"})
    assert main(["check", str(path)]) == 0
    captured = capsys.readouterr()
    assert "valid" in captured.out
    assert "warning" in captured.err and "content_key_id" in captured.err

    pinned = write(tmp_path, {"hub_url": "https://hub.example.org", "content_key_id": "ab" * 8})
    local = tmp_path / "local.json"
    local.write_text(json.dumps({"hub_url": "http://127.0.0.1:8600"}))
    for quiet in (pinned, local):
        assert main(["check", str(quiet)]) == 0
        assert "warning" not in capsys.readouterr().err


def _tarball(tmp_path: Path) -> Path:
    top = tmp_path / "build" / "vigil-0.1.0"
    top.mkdir(parents=True)
    (top / "vigil").write_text("#!/bin/sh\n")
    package = tmp_path / "vigil-0.1.0-linux-x86_64.tar.gz"
    with tarfile.open(package, "w:gz") as archive:
        archive.add(top, arcname=top.name)
    return package


@pytest.mark.parametrize(
    "target",
    [
        "/etc/vigil/../../../../escaped.pem",
        "/etc/vigil/..",
        "/etc/vigil/./ca.pem",
        "/etc/vigil//ca.pem",
        "/etc/vigil/\u202e..",
    ],
)
def test_inject_refuses_a_ca_bundle_path_that_leaves_its_target(
    tmp_path: Path, target: str
) -> None:
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    policy = write(tmp_path, {"hub_url": "https://hub.example.org", "ca_bundle": target})
    before = sorted(p.name for p in tmp_path.parent.iterdir())

    if "\u202e" in target:
        # Odd but contained: the file lands inside the package, nowhere else.
        out = inject(policy, _tarball(tmp_path), tmp_path / "out.tar.gz", ca_bundle=ca)
        with tarfile.open(out) as archive:
            assert all(name.startswith("vigil-0.1.0") for name in archive.getnames())
        return
    with pytest.raises(PolicyStepError, match="ca_bundle"):
        inject(policy, _tarball(tmp_path), tmp_path / "out.tar.gz", ca_bundle=ca)
    assert not (tmp_path / "out.tar.gz").exists()
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before


def test_check_takes_a_list_of_hub_addresses_and_refuses_a_bad_entry_by_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = write(
        tmp_path, {"hub_urls": ["https://hub-a.example.org", "https://hub-b.example.org"]}
    )
    assert main(["check", str(listed)]) == 0
    captured = capsys.readouterr()
    assert "valid" in captured.out
    # The list's first address is production too: the content key warning still applies.
    assert "content_key_id" in captured.err

    twice = write(
        tmp_path, {"hub_urls": ["https://hub-a.example.org", "https://hub-a.example.org"]}
    )
    assert main(["check", str(twice)]) == 1
    assert "entry 2 ('https://hub-a.example.org') is the same address as entry 1" in (
        capsys.readouterr().err
    )
