"""Fallback configuration: URLs, secret files and `vigil-hub serve` flags refused at start."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hub import cli
from hub.config import FallbackConfigError, FallbackSettings, HubSettings, SmtpCredentials
from hub.notifiers import channels_from_settings
from hub.notifiers.secret_file import read_smtp_credentials, read_webhook_secret

SENDER = "vigil@hospital.example.org"
SECRET = "0123456789abcdef0123456789abcdef"
PROCESS_TIMEOUT = 60


def _secret_file(tmp_path: Path, text: str, mode: int = 0o600, name: str = "secret") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_a_hub_has_no_fallback_channel_unless_told() -> None:
    settings = HubSettings(data_dir=Path("unused"))
    assert settings.fallback == FallbackSettings()
    assert settings.fallback.channel_names == []
    assert settings.fallback.fallback_after_seconds == 120


@pytest.mark.parametrize(
    ("url", "port", "security"),
    [
        ("smtp://127.0.0.1", 25, "plain"),
        ("smtp://localhost:2525", 2525, "plain"),
        ("smtp://[::1]:25", 25, "plain"),
        ("smtp+starttls://mail.example.org", 587, "starttls"),
        ("SMTPS://mail.example.org", 465, "tls"),
        ("smtps://mail.example.org:2465/", 2465, "tls"),
    ],
)
def test_smtp_urls_that_are_accepted(url: str, port: int, security: str) -> None:
    endpoint = FallbackSettings(smtp_url=url, smtp_from=SENDER).smtp_endpoint
    assert endpoint is not None
    assert (endpoint.port, endpoint.security) == (port, security)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"smtp_url": "smtp://mail.example.org"}, "--smtp-url: plain smtp:// to mail.example.org"),
        ({"smtp_url": "smtp://10.0.0.5:25"}, "--smtp-url: plain smtp:// to 10.0.0.5"),
        ({"smtp_url": "http://mail.example.org"}, "--smtp-url: 'http://mail.example.org' must"),
        ({"smtp_url": ""}, "--smtp-url: '' must start with"),
        ({"smtp_url": "smtps://"}, "--smtp-url: 'smtps://' names no host"),
        ({"smtp_url": "smtps://mail.example.org:99999"}, "has a port that is not 1 to 65535"),
        ({"smtp_url": "smtps://mail.example.org:0"}, "has a port that is not 1 to 65535"),
        ({"smtp_url": "smtps://mail.example.org/x?y"}, "must be only scheme://host[:port]"),
        ({"smtp_url": "smtps://u:hunter2@mail.example.org"}, "holds a user name or password"),
        ({"smtp_from": None}, "--smtp-url needs --smtp-from"),
        ({"smtp_url": "smtps://mail.example.org\r\nx"}, "--smtp-url: 'smtps://mail.example.org\\r"),
        ({"smtp_url": "smtps://bücher.example"}, "write an international host name in its xn--"),
        ({"smtp_from": "a@b\r\nBcc: c@d"}, "--smtp-from: "),
        ({"smtp_from": "\u202evigil@example.org"}, "--smtp-from: "),
        ({"smtp_from": "no-at-sign"}, "--smtp-from: "),
        ({"webhook_url": "http://pager.example.org", "webhook_secret": b"s" * 32}, "https://"),
        ({"webhook_url": "ftp://pager.example.org", "webhook_secret": b"s" * 32}, "https://"),
        ({"webhook_url": "https://pager.example.org"}, "--webhook-url needs --webhook-secret"),
        (
            {"webhook_url": "https://p.example.org/a b\u202e", "webhook_secret": b"s" * 32},
            "--webhook-url: 'https://p.example.org/a b\\u202e' holds spaces",
        ),
        ({"fallback_after_seconds": 9.9}, "--fallback-after-seconds: 9.9 is out of range"),
        ({"fallback_after_seconds": 86401}, "--fallback-after-seconds: 86401"),
        ({"fallback_after_seconds": -1}, "--fallback-after-seconds"),
        ({"fallback_after_seconds": float("nan")}, "--fallback-after-seconds: nan"),
    ],
)
def test_bad_settings_are_refused_naming_the_flag(changes: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"smtp_url": "smtps://mail.example.org", "smtp_from": SENDER}
    values.update(changes)
    with pytest.raises(FallbackConfigError) as raised:
        FallbackSettings(**values)  # type: ignore[arg-type]
    assert message in str(raised.value)
    assert "hunter2" not in str(raised.value)
    assert str(raised.value).isprintable()


def test_options_without_their_url_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FallbackConfigError, match="--smtp-from needs --smtp-url"):
        FallbackSettings(smtp_from=SENDER)
    with pytest.raises(FallbackConfigError, match="--webhook-secret-file needs --webhook-url"):
        FallbackSettings(webhook_secret=b"s" * 32)
    with pytest.raises(FallbackConfigError, match="--webhook-ca-file needs --webhook-url"):
        FallbackSettings(webhook_ca_file=tmp_path)


def test_secrets_never_show_in_a_repr() -> None:
    settings = FallbackSettings(
        smtp_url="smtps://mail.example.org",
        smtp_from=SENDER,
        smtp_credentials=SmtpCredentials("relay", "pw-in-no-repr"),
        webhook_url="https://pager.example.org",
        webhook_secret=SECRET.encode(),
    )
    text = repr(settings) + repr(settings.smtp_credentials) + repr(HubSettings(Path("d")))
    assert "pw-in-no-repr" not in text and SECRET not in repr(settings)


def test_credentials_and_secret_files_are_read_from_owner_only_files(tmp_path: Path) -> None:
    credentials = read_smtp_credentials(_secret_file(tmp_path, "relay:pa:ss word \n", name="c"))
    assert credentials == SmtpCredentials("relay", "pa:ss word ")
    assert read_webhook_secret(_secret_file(tmp_path, SECRET + "\r\n")) == SECRET.encode()


@pytest.mark.parametrize(
    ("text", "mode", "message"),
    [
        ("relay:pw", 0o644, "is readable by group or others (mode 0644); run `chmod 600"),
        ("relay:pw", 0o640, "(mode 0640)"),
        ("relay:pw", 0o604, "(mode 0604)"),
        ("", 0o600, "is empty"),
        ("\n", 0o600, "is empty"),
        ("relay-without-password", 0o600, "must hold one line, username:password"),
        (":pw", 0o600, "must hold one line, username:password"),
        ("relay:", 0o600, "must hold one line, username:password"),
        ("x" * 5000, 0o600, "is over 4096 bytes"),
    ],
)
def test_bad_credentials_files_are_refused_without_quoting_them(
    tmp_path: Path, text: str, mode: int, message: str
) -> None:
    path = _secret_file(tmp_path, text, mode)
    with pytest.raises(FallbackConfigError) as raised:
        read_smtp_credentials(path)
    assert str(raised.value).startswith(f"--smtp-credentials-file: {path} ")
    assert message in str(raised.value)
    assert "pw" not in str(raised.value).replace(str(path), "")


def test_bad_webhook_secret_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FallbackConfigError, match="holds 5 characters; use at least 32"):
        read_webhook_secret(_secret_file(tmp_path, "short"))
    with pytest.raises(FallbackConfigError, match=r"cannot read .*: No such file"):
        read_webhook_secret(tmp_path / "missing")
    with pytest.raises(FallbackConfigError, match="is not a file"):
        read_webhook_secret(tmp_path)
    (tmp_path / "binary").write_bytes(b"\xff" * 40)
    (tmp_path / "binary").chmod(0o600)
    with pytest.raises(FallbackConfigError, match="is not UTF-8 text"):
        read_webhook_secret(tmp_path / "binary")


def test_a_ca_file_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    junk = _secret_file(tmp_path, "<html>not a certificate</html>", 0o644)
    settings = FallbackSettings(
        smtp_url="smtps://m.example.org", smtp_from=SENDER, smtp_ca_file=junk
    )
    with pytest.raises(FallbackConfigError, match="--smtp-ca-file: cannot load"):
        channels_from_settings(settings)
    settings = FallbackSettings(
        webhook_url="https://p.example.org",
        webhook_secret=SECRET.encode(),
        webhook_ca_file=tmp_path / "missing.pem",
    )
    with pytest.raises(FallbackConfigError, match="--webhook-ca-file: cannot load"):
        channels_from_settings(settings)


def _bad_flag_cases(tmp_path: Path) -> list[tuple[tuple[str, ...], str]]:
    open_file = _secret_file(tmp_path, "relay:hunter2-secret", 0o644, name="open")
    private = _secret_file(tmp_path, "relay:pw", name="private")
    secret = _secret_file(tmp_path, SECRET, name="webhook-secret")
    return [
        (("--smtp-url", "smtp://mail.example.org", "--smtp-from", SENDER), "--smtp-url: plain"),
        (("--smtp-url", "gopher://x", "--smtp-from", SENDER), "--smtp-url: 'gopher://x' must"),
        (
            ("--smtp-url", "smtps://m.example.org", "--smtp-from", SENDER,
             "--smtp-credentials-file", str(open_file)),
            f"--smtp-credentials-file: {open_file} is readable by group or others",
        ),
        (
            ("--webhook-url", "https://p.example.org", "--webhook-secret-file",
             str(tmp_path / "missing")),
            "--webhook-secret-file: cannot read",
        ),
        (("--smtp-credentials-file", str(private)), "--smtp-credentials-file needs --smtp-url"),
        (("--fallback-after-seconds", "5"), "--fallback-after-seconds: 5.0 is out of range"),
        (
            ("--webhook-url", "https://p.example.org", "--webhook-secret-file", str(secret),
             "--webhook-ca-file", str(private)),
            f"--webhook-ca-file: cannot load {private} as PEM certificates",
        ),
    ]  # fmt: skip


def test_serve_refuses_bad_fallback_flags_with_one_line_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for flags, message in _bad_flag_cases(tmp_path):
        data = tmp_path / "hub-data"
        status = cli.main(["serve", "--port", "0", "--data", str(data), *flags])
        out, err = capsys.readouterr()
        assert status == 1, (flags, err)
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"vigil-hub: {message}"), lines
        assert "hunter2" not in err and "Vigil hub on" not in out
        assert not data.exists()


@pytest.mark.slow
def test_the_vigil_hub_process_exits_1_on_a_bad_fallback_flag(tmp_path: Path) -> None:
    for flags, message in _bad_flag_cases(tmp_path)[:3:2]:
        data = tmp_path / "hub-data"
        result = subprocess.run(
            [sys.executable, "-m", "hub", "serve", "--port", "0", "--data", str(data), *flags],
            capture_output=True,
            text=True,
            timeout=PROCESS_TIMEOUT,
            check=False,
        )
        assert result.returncode == 1, result
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"vigil-hub: {message}"), lines
        assert "Traceback" not in result.stderr and "hunter2" not in result.stderr
        assert result.stdout == "" and not data.exists()


@pytest.mark.slow
def test_serve_starts_with_both_channels_and_says_so(tmp_path: Path) -> None:
    credentials = _secret_file(tmp_path, "relay:pw-not-printed", name="credentials")
    secret = _secret_file(tmp_path, SECRET, name="webhook-secret")
    flags = [
        "--smtp-url", "smtp://127.0.0.1:2525", "--smtp-from", SENDER,
        "--smtp-credentials-file", str(credentials),
        "--webhook-url", "https://pager.example.org/hook", "--webhook-secret-file", str(secret),
        "--fallback-after-seconds", "30",
    ]  # fmt: skip
    command = [sys.executable, "-m", "hub", "serve", "--port", "0", "--data", str(tmp_path / "d")]
    with subprocess.Popen(
        [*command, *flags, "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_read_lines, args=(process, lines), daemon=True).start()
        try:
            seen: list[str] = []
            while not any(line.startswith("Fallback channels:") for line in seen):
                seen.append(lines.get(timeout=PROCESS_TIMEOUT))
        finally:
            process.terminate()
            try:
                process.wait(timeout=PROCESS_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=PROCESS_TIMEOUT)
    assert seen[-1] == "Fallback channels: smtp, webhook\n"
    assert not any("pw-not-printed" in line or SECRET in line for line in seen)


def _read_lines(process: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line)
