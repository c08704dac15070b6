"""Browser tests of the dispatcher console: a real hub on 127.0.0.1 and Debian's Chromium,
driven by Playwright (never a browser Playwright downloads)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    ViewportSize,
    sync_playwright,
)

from hub.server import EmbeddedHub
from hub.storage import Store
from hub.storage.accounts import Role
from tests.hubtools import create_user, next_code

CHROMIUM = Path(os.environ.get("VIGIL_TEST_CHROMIUM", "/usr/bin/chromium"))
AXE_CORE = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "axe-core" / "axe.min.js"
# The flags a headless Chromium needs on a closed machine: no background calls home, no GPU.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# The WCAG 2.2 levels A and AA, as axe-core tags its rules.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
LAPTOP: ViewportSize = {"width": 1280, "height": 800}
CONSOLE_PASSWORD = "console test password 42"
EXPECT_TIMEOUT_MS = 5000

# Hostile text for titles, names and notes: must show as these characters, never run.
HOSTILE_HTML = "<script>alert(1)</script><img src=x onerror=alert(2)>"


@dataclass(frozen=True)
class ConsoleUser:
    """A hub account the tests sign in with."""

    username: str
    password: str = field(repr=False)
    totp_secret: str = field(repr=False)
    role: Role


@dataclass
class ConsoleHub:
    """A running hub with an admin, two dispatchers and an agent."""

    hub: EmbeddedHub
    users: dict[str, ConsoleUser]

    @property
    def base_url(self) -> str:
        """The hub's address, e.g. http://127.0.0.1:51234."""
        return self.hub.url

    @property
    def store(self) -> Store:
        """The hub's store."""
        return self.hub.store

    def url(self, path: str) -> str:
        """An absolute address on this hub."""
        return self.hub.url + path


@pytest.fixture
def console_hub(start_hub: Callable[..., EmbeddedHub]) -> ConsoleHub:
    """A real hub on a free port with users ada (admin), dina and dora (dispatchers), avery."""
    hub = start_hub()
    users: dict[str, ConsoleUser] = {}
    people: list[tuple[str, Role, str]] = [
        ("ada", "admin", "Ada Admin"),
        ("dina", "dispatcher", "Dina Dispatcher"),
        ("dora", "dispatcher", "Dora Dispatcher"),
        ("avery", "agent", "Avery Agent"),
    ]
    for username, role, display_name in people:
        secret = create_user(hub.store, username, role, CONSOLE_PASSWORD, display_name)
        users[username] = ConsoleUser(username, CONSOLE_PASSWORD, secret, role)
    return ConsoleHub(hub=hub, users=users)


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    """Playwright's driver, once per test process."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless, once per test process (each xdist worker has its own)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the console's browser tests need Debian's chromium package "
            "(scripts/test installs it; or set VIGIL_TEST_CHROMIUM)."
        )
    chromium = playwright_driver.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()


@dataclass
class PageProblems:
    """What a page did that no console page may: a JS dialog, a script error, a CSP violation."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def console_message(self, message: ConsoleMessage) -> None:
        # Chromium logs CSP violations and uncaught errors at level "error". Failed loads the
        # test provoked itself (a 403 page, a refused post) are its own business.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)


@pytest.fixture
def page_problems() -> PageProblems:
    """The dialogs and errors of this test's pages (checked at teardown)."""
    return PageProblems()


@pytest.fixture
def page(browser: Browser, page_problems: PageProblems) -> Iterator[Page]:
    """A fresh browser context and page at 1280x800; any dialog or script error fails the test."""
    context = browser.new_context(viewport=LAPTOP, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    tab = context.new_page()
    tab.on("dialog", page_problems.dialog)
    tab.on("console", page_problems.console_message)
    tab.on("pageerror", lambda error: page_problems.errors.append(f"page error: {error}"))
    yield tab
    context.close()
    assert not page_problems.dialogs, f"a page opened a dialog: {page_problems.dialogs}"
    assert not page_problems.errors, f"a page logged errors: {page_problems.errors}"


def form_token(html: str) -> str:
    """The CSRF token of the first form in a console page's HTML."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "the page has no form with a csrf_token"
    return found.group(1)


def signed_in_session(
    console_hub: ConsoleHub, username: str, *, clock_time: float | None = None
) -> requests.Session:
    """A requests session signed in to the console as `username`, without a browser.

    For what a browser cannot do: many parallel posts, forged posts, exact headers. Pass the
    hub's ManualClock time as `clock_time` when the hub runs on one.
    """
    user = console_hub.users[username]
    http = requests.Session()
    page = http.get(console_hub.url("/console/sign-in"), timeout=10)
    answer = http.post(
        console_hub.url("/console/sign-in"),
        data={
            "username": user.username,
            "password": user.password,
            "csrf_token": form_token(page.text),
        },
        timeout=30,
    )
    assert answer.url.endswith("/console/sign-in/code"), answer.text
    answer = http.post(
        console_hub.url("/console/sign-in/code"),
        data={
            "code": next_code(user.totp_secret, clock_time),
            "csrf_token": form_token(answer.text),
        },
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303, answer.text
    return http


def sign_in(
    page: Page,
    console_hub: ConsoleHub,
    username: str,
    *,
    next_path: str = "",
    clock_time: float | None = None,
) -> None:
    """Sign `username` in through the console's own pages (password, then a fresh code)."""
    user = console_hub.users[username]
    target = "/console/sign-in" + (f"?next={next_path}" if next_path else "")
    page.goto(console_hub.url(target))
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code", exact=True).fill(next_code(user.totp_secret, clock_time))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/sign-in" not in url)


def assert_accessible(page: Page, context: str) -> None:
    """axe-core finds no WCAG 2.2 A or AA violation on the page as it is now."""
    if not AXE_CORE.exists():
        pytest.fail(f"{AXE_CORE} is missing: run scripts/bootstrap (it installs web/ with npm ci).")
    # Evaluated over the DevTools protocol, which the page's CSP does not govern: a <script>
    # tag with axe inline would be (rightly) refused by it.
    page.evaluate(AXE_CORE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS
    )
    violations = result["violations"]
    lines = [
        f"{violation['id']} ({violation['impact']}): {violation['help']}; "
        + json.dumps([node["target"] for node in violation["nodes"]][:5])
        for violation in violations
    ]
    assert not violations, f"{context}: {len(violations)} accessibility violations:\n" + "\n".join(
        lines
    )
