"""The real front door for tests: deploy/nginx/vigil-hub.conf run by Debian's nginx as this user,
in front of `vigil-hub serve` processes (tests/hub_processes.py) sharing one data dir, with a
test CA from trustme."""

from __future__ import annotations

import contextlib
import getpass
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme

from tests.hub_processes import REPO, START_TIMEOUT, STOP_TIMEOUT, HubServer, add_signed_in_users
from tests.hubtools import wait_until

CONFIG = REPO / "deploy" / "nginx" / "vigil-hub.conf"
# Debian puts nginx in /usr/sbin, which a non-root user's PATH often lacks.
NGINX = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
SERVER_NAME = "vigil-hub.example.org"
HTTP_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class TlsFiles:
    """A test CA and the front door's certificate (for the server name and 127.0.0.1)."""

    ca: Path
    chain: Path
    key: Path

    @classmethod
    def create(cls, folder: Path) -> TlsFiles:
        """Issue them into `folder`, the key readable by its owner only."""
        folder.mkdir(parents=True, exist_ok=True)
        authority = trustme.CA()
        cert = authority.issue_cert(SERVER_NAME, "127.0.0.1")
        files = cls(ca=folder / "ca.pem", chain=folder / "fullchain.pem", key=folder / "key.pem")
        authority.cert_pem.write_to_path(str(files.ca))
        files.chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        files.key.touch(mode=0o600)
        cert.private_key_pem.write_to_path(str(files.key))
        return files

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting the test CA only, with every check on."""
        return ssl.create_default_context(cafile=str(self.ca))


def render_config(
    source: str, *, hubs: list[int], https_port: int, http_port: int, tls: TlsFiles
) -> str:
    """The real configuration with only its addresses, ports and certificate paths changed.

    Every replaced text must be in the file exactly once, so that a change to the file cannot
    leave a production address silently in force here.
    """
    replacements = {
        "server 127.0.0.1:8601 ": f"server 127.0.0.1:{hubs[0]} ",
        "server 127.0.0.1:8602 ": f"server 127.0.0.1:{hubs[1]} ",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;": "",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "listen [::]:443 ssl;": "",
        "/etc/ssl/vigil-hub/fullchain.pem": str(tls.chain),
        "/etc/ssl/vigil-hub/privkey.pem": str(tls.key),
        # The tests' many streams come from one loopback address: an office behind one NAT.
        "192.0.2.10 1;": "127.0.0.1 1;",
    }
    rendered = source
    for old, new in replacements.items():
        count = rendered.count(old)
        assert count == 1, f"{old!r} is in the nginx configuration {count} times, not once"
        rendered = rendered.replace(old, new)
    return rendered


def _main_config(root: Path, site: Path) -> str:
    # What Debian's /etc/nginx/nginx.conf puts around a site, with every path inside `root`.
    user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {root / 'temp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}worker_processes 1;
pid {root / "nginx.pid"};
error_log {root / "error.log"} warn;
daemon off;
events {{
    # Debian's 768 is too few: each alert stream holds two (laptop and hub); deployment.md says
    # to raise it so, and these tests hold 200 streams and their acks.
    worker_connections 4096;
}}
http {{
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    access_log {root / "access.log"};
    gzip on;
{temp}
    include {site};
}}
"""


class NginxProxy:
    """nginx with the rendered configuration, in the foreground, as this user."""

    def __init__(self, root: Path, hubs: list[int], tls: TlsFiles) -> None:
        if NGINX is None:
            raise RuntimeError("nginx is not installed; scripts/bootstrap installs it (as root)")
        self.root = root
        self.tls = tls
        self.https_port = free_port()
        self.http_port = free_port()
        (root / "temp").mkdir(parents=True, exist_ok=True)
        site = root / "vigil-hub.conf"
        site.write_text(
            render_config(
                CONFIG.read_text(),
                hubs=hubs,
                https_port=self.https_port,
                http_port=self.http_port,
                tls=tls,
            )
        )
        main = root / "nginx.conf"
        main.write_text(_main_config(root, site))
        command = [NGINX, "-p", str(root), "-c", str(main), "-e", str(root / "error.log")]
        subprocess.run([*command, "-t", "-q"], check=True, capture_output=True, timeout=30)
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        wait_until(self._listening, timeout=START_TIMEOUT, interval=0.05)

    def _listening(self) -> bool:
        assert self._process.poll() is None, f"nginx ended: {self.error_log()}"
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.https_port), timeout=1),
        ):
            return True
        return False

    @property
    def url(self) -> str:
        """The front door's https:// base URL."""
        return f"https://127.0.0.1:{self.https_port}"

    def error_log(self) -> str:
        """What nginx logged, for failure messages."""
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop at once (SIGTERM) and reap it."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(STOP_TIMEOUT)


@dataclass
class Answer:
    """One HTTP answer from the front door."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


def call(
    proxy: NginxProxy,
    method: str,
    path: str,
    *,
    body: object = None,
    raw_body: bytes | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    source: str = "127.0.0.1",
    context: ssl.SSLContext | None = None,
) -> Answer:
    """One request over TLS to the front door, from the loopback address `source`."""
    connection = http.client.HTTPSConnection(
        "127.0.0.1",
        proxy.https_port,
        timeout=HTTP_TIMEOUT,
        context=context or proxy.tls.client_context(),
        source_address=(source, 0),
    )
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    payload = raw_body
    if body is not None:
        payload = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=payload, headers=sent)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


@dataclass
class FrontDoor:
    """nginx, the two hub processes behind it and their shared data dir and database."""

    proxy: NginxProxy
    hubs: list[HubServer]
    data_dir: Path
    database: Path | str
    dispatcher: str
    agents: dict[str, str]


def open_front_door(root: Path, agents: list[str], database_url: str | None = None) -> FrontDoor:
    """Two hub processes on one data dir and database (its SQLite file unless a PostgreSQL URL
    is given), users signed in, nginx in front; stop with close()."""
    data_dir = root / "hub-data"
    database: Path | str = data_dir / "hub.sqlite3" if database_url is None else database_url
    tls = TlsFiles.create(root / "tls")
    hubs = [HubServer(data_dir, root / "hub-a.log", database_url=database_url)]
    try:
        tokens = add_signed_in_users(
            data_dir, ["dispatcher1"], role="dispatcher", database_url=database_url
        )
        agent_tokens = add_signed_in_users(data_dir, agents, database_url=database_url)
        hubs.append(HubServer(data_dir, root / "hub-b.log", database_url=database_url))
        proxy = NginxProxy(root / "nginx", [hub.port for hub in hubs], tls)
    except BaseException:
        for hub in hubs:
            hub.stop()
        raise
    return FrontDoor(proxy, hubs, data_dir, database, tokens["dispatcher1"], agent_tokens)


def close_front_door(door: FrontDoor) -> None:
    """Stop nginx and the hubs still running."""
    door.proxy.stop()
    for hub in door.hubs:
        hub.stop()


def publish(door: FrontDoor, title: str) -> dict[str, Any]:
    """Publish through the front door as a dispatcher tool should: one Idempotency-Key, retried
    until a hub process answers (a 503 from nginx while one is dying)."""
    key = str(uuid.uuid4())
    body = {"severity": "critical", "title": title, "body": "Move today's visits to phone."}
    last: Answer | str = "no attempt"
    for _ in range(50):
        try:
            answer = call(
                door.proxy,
                "POST",
                "/v1/alerts",
                body=body,
                token=door.dispatcher,
                headers={"Idempotency-Key": key},
            )
        except OSError as exc:
            last = repr(exc)
        else:
            if answer.status in (200, 201):
                alert: dict[str, Any] = answer.json()
                return alert
            last = answer
        time.sleep(0.1)
    raise AssertionError(f"publishing {title!r} never succeeded: {last}")


def acks_of(door: FrontDoor, alert_id: str) -> list[dict[str, Any]]:
    """The acks the hub holds for an alert, as a dispatcher reads them through the front door."""
    answer = call(door.proxy, "GET", f"/v1/alerts/{alert_id}/acks", token=door.dispatcher)
    assert answer.status == 200, answer.body
    acks: list[dict[str, Any]] = answer.json()["acks"]
    return acks
