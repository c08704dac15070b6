"""Take the README's screenshots of the dispatcher console: a demo hub with an incident under
way, and Debian's headless Chromium (driven by Playwright) at 1280x800 and on a wall display."""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import requests
from playwright.sync_api import Page, ViewportSize, sync_playwright

from hub.alerts_service import AlertDraft, AlertUpdateDraft, Caller, publish_draft, update_alert
from hub.config import HubSettings
from hub.demo import DEMO_GROUP, DemoCredentials, load_demo
from hub.server import EmbeddedHub
from hub.storage.accounts import Role

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP: ViewportSize = {"width": 1280, "height": 800}
WALL: ViewportSize = {"width": 2560, "height": 1440}
PLAYBOOK = "pb-video-visit-outage"
# More West agents than the demo's two, so the board shows a realistic mix.
EXTRA_AGENTS = [
    ("priya", "Priya Natarajan", "+1 555 0102"),
    ("marcus", "Marcus Hale", "+1 555 0103"),
    ("lena", "Lena Ortiz", "+1 555 0104"),
    ("tom", "Tom Becker", "+1 555 0105"),
]
AGENT_PASSWORD = "screenshot agent password 7"


class Scene:
    """A demo hub with an open critical incident, a drill and a closed alert."""

    def __init__(self, data_dir: Path) -> None:
        self.settings = HubSettings(data_dir=data_dir)
        self.hub = EmbeddedHub(self.settings)
        self.credentials: DemoCredentials = load_demo(
            self.hub.store, self.hub.app.state.signer, self.settings
        )
        self.hub.start()
        self.secrets = {user.username: user.totp_secret for user in self.credentials.users}
        self.passwords = {user.username: user.password or "" for user in self.credentials.users}
        self.used_steps: dict[str, int] = {}

    def code(self, username: str) -> str:
        """A code for `username` the hub has not seen yet (the hub takes one step ahead)."""
        now = datetime.now(UTC).timestamp()
        step = max(int(now // 30), self.used_steps.get(username, 0) + 1)
        self.used_steps[username] = step
        return pyotp.TOTP(self.secrets[username]).at(step * 30)

    def add_agents(self) -> None:
        from hub import passwords, totp

        for username, display_name, phone in EXTRA_AGENTS:
            secret = totp.new_secret()
            role: Role = "agent"
            self.hub.store.accounts.create_user(
                username=username,
                display_name=display_name,
                role=role,
                password_hash=passwords.hash_password(AGENT_PASSWORD),
                totp_secret=secret,
            )
            self.secrets[username] = secret
            self.passwords[username] = AGENT_PASSWORD
            self.hub.store.groups.add_members(DEMO_GROUP, [username])
            self.hub.store.groups.set_contact(username, {"phone": phone, "fallback_email": None})

    def publish(self, title: str, body: str, **fields: Any) -> dict[str, Any]:
        playbook = self.hub.store.content.get("playbook", PLAYBOOK)
        data = playbook.data if playbook is not None else None
        templates = list(data.get("template_ids", [])) if data else []
        now = datetime.now(UTC)
        draft = AlertDraft.model_validate(
            {
                "severity": "critical",
                "title": title,
                "body": body,
                "playbook_id": PLAYBOOK,
                "template_ids": templates,
                "expires_at": now + timedelta(hours=4),
                **fields,
            }
        )
        published = publish_draft(
            self.hub.store, self.settings, draft, issued_by="dispatcher", caller=self.caller
        )
        assert published.alert is not None
        self.hub.broker.notify()
        return published.alert

    @property
    def caller(self) -> Caller:
        return Caller(username="dispatcher", actor="dispatcher", source="screenshots")

    def agent_token(self, username: str) -> str:
        login = requests.post(
            f"{self.hub.url}/v1/auth/login",
            json={
                "username": username,
                "password": self.passwords[username],
                "device_id": f"laptop-{username}",
                "device_name": f"{username.title()}'s laptop",
            },
            timeout=30,
        )
        login.raise_for_status()
        tokens = requests.post(
            f"{self.hub.url}/v1/auth/mfa",
            json={"mfa_token": login.json()["mfa_token"], "code": self.code(username)},
            timeout=10,
        )
        tokens.raise_for_status()
        return str(tokens.json()["access_token"])

    def reached(self, username: str, alert_id: str, *, shown: bool, action: str | None) -> None:
        headers = {"Authorization": f"Bearer {self.agent_token(username)}"}
        now = datetime.now(UTC).isoformat()
        receipt: dict[str, str] = {"alert_id": alert_id, "received_at": now}
        if shown:
            receipt["shown_at"] = now
        requests.post(
            f"{self.hub.url}/v1/receipts", json={"receipts": [receipt]}, headers=headers, timeout=10
        ).raise_for_status()
        if action is not None:
            ack = {
                "ack_id": str(uuid.uuid4()),
                "alert_id": alert_id,
                "action": action,
                "acted_at": now,
                "note": "Patients moved to phone visits" if action == "acknowledged" else "",
            }
            if action == "unable":
                ack["note"] = "On a call with a patient until 14:30"
            requests.post(
                f"{self.hub.url}/v1/acks", json={"acks": [ack]}, headers=headers, timeout=10
            ).raise_for_status()

    def stage(self) -> dict[str, Any]:
        self.add_agents()
        critical = self.publish(
            "Video visits down in the West region",
            "Patients in CA, OR, WA, NV and AZ cannot join video visits (vendor incident). "
            "Move every West video visit in the next 60 minutes to phone.",
            audience=[DEMO_GROUP],
            next_update_by=datetime.now(UTC) + timedelta(minutes=30),
        )
        self.publish(
            "Quarterly outage drill: video platform",
            "Exercise: walk through the video-outage playbook. Do not contact patients.",
            drill=True,
            severity="major",
        )
        self.reached("agent", critical["id"], shown=True, action="acknowledged")
        self.reached("priya", critical["id"], shown=True, action="acknowledged")
        self.reached("marcus", critical["id"], shown=True, action=None)
        self.reached("lena", critical["id"], shown=False, action=None)
        self.reached("tom", critical["id"], shown=True, action="unable")
        update_alert(
            self.hub.store,
            self.settings,
            critical["id"],
            AlertUpdateDraft.model_validate(
                {
                    "text": "Vendor confirms the fault; phone visits continue. ETA 30 minutes.",
                    "next_update_by": datetime.now(UTC) + timedelta(minutes=30),
                }
            ),
            self.caller,
        )
        self.hub.broker.notify()
        return critical

    def stop(self) -> None:
        self.hub.stop()


def sign_in(page: Page, scene: Scene, username: str) -> None:
    page.goto(f"{scene.hub.url}/console/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(scene.passwords[username])
    page.get_by_label("Password").press("Enter")
    page.get_by_label("Code", exact=True).fill(scene.code(username))
    page.get_by_label("Code", exact=True).press("Enter")
    page.wait_for_url(lambda url: "/sign-in" not in url)


def shoot(page: Page, path: str | None, out: Path, name: str, *, settle: str = "main") -> None:
    """Open `path` (or stay on the page as it is, for None) and photograph it once settled."""
    if path is not None:
        page.goto(page.url.split("/console")[0] + path)
    page.locator(settle).first.wait_for()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(out / name), full_page=False)
    print(f"console-screenshots: {out / name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", nargs="?", default="docs/screenshots", type=Path)
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vigil-console-shots-") as folder:
        scene = Scene(Path(folder) / "hub")
        try:
            critical = scene.stage()
            with sync_playwright() as driver:
                browser = driver.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                context = browser.new_context(viewport=LAPTOP, locale="en-GB", timezone_id="UTC")
                page = context.new_page()
                page.goto(f"{scene.hub.url}/console/sign-in")
                page.screenshot(path=str(out / "console-signin.png"))
                sign_in(page, scene, "dispatcher")
                shoot(page, "/console", out, "console-board.png")
                shoot(page, f"/console/incidents/{critical['id']}", out, "console-incident.png")
                page.goto(f"{scene.hub.url}/console/compose")
                page.get_by_label("Title", exact=True).fill(
                    "Phone lines degraded in the East region"
                )
                page.get_by_role("button", name="Preview").click()
                shoot(page, None, out, "console-compose.png")
                shoot(page, "/console/reports", out, "console-reports.png")
                page.locator("canvas").first.scroll_into_view_if_needed()
                shoot(page, None, out, "console-report-charts.png", settle="canvas")
                context.close()
                admin = browser.new_context(viewport=LAPTOP, locale="en-GB", timezone_id="UTC")
                page = admin.new_page()
                sign_in(page, scene, "admin")
                shoot(page, "/console/admin/users", out, "console-users.png")
                shoot(page, "/console/admin/audit", out, "console-audit.png")
                admin.close()
                wall = browser.new_context(viewport=WALL, locale="en-GB", timezone_id="UTC")
                page = wall.new_page()
                sign_in(page, scene, "dispatcher")
                shoot(page, "/console", out, "console-board-wall.png")
                wall.close()
                browser.close()
        finally:
            scene.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
