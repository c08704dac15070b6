"""`vigil-hub serve --demo`: the demo playbooks and templates, two demo agents in the West region
group with their call-out contacts, and a demo dispatcher."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hub import passwords, totp
from hub.content_import import ImportReport, import_content
from hub.password_policy import check_new_password
from hub.storage.accounts import UsernameTaken
from hub.storage.groups import GroupExists

if TYPE_CHECKING:
    from hub.config import HubSettings
    from hub.signing import ContentSigner
    from hub.storage import Store
    from hub.storage.accounts import Role

# Fixed so the demo can be signed into from its printed instructions; never used outside it.
DEMO_USERS: tuple[tuple[str, Role, str, str], ...] = (
    ("agent", "agent", "Demo Agent", "vigil-demo-agent"),
    ("sam", "agent", "Sam Rivera", "vigil-demo-rivera"),
    ("dispatcher", "dispatcher", "Demo Dispatcher", "vigil-demo-dispatcher"),
    # For the console's admin pages (users, groups, audit trail).
    ("admin", "admin", "Demo Admin", "vigil-demo-admin"),
)
DEMO_GROUP = "West"
DEMO_GROUP_DESCRIPTION = "Agents serving patients in CA, OR, WA, NV and AZ"
# The agents' phone-tree entries and paging-gateway addresses (reserved example domain).
DEMO_CONTACTS: dict[str, dict[str, str | None]] = {
    "agent": {"phone": "+1 555 0100", "fallback_email": "agent@pager.example"},
    "sam": {"phone": "+1 555 0101", "fallback_email": "sam@pager.example"},
}


class DemoContentMissing(FileNotFoundError):
    """The demo content folder was not shipped with this installation."""


@dataclass(frozen=True)
class DemoUser:
    """A demo account and how to sign in with it; secrets stay out of repr."""

    username: str
    role: str
    password: str | None = field(repr=False)
    totp_secret: str = field(repr=False)
    otpauth_uri: str = field(repr=False)
    created: bool


@dataclass(frozen=True)
class DemoCredentials:
    """What `serve --demo` prints: the demo users and what the content import did."""

    users: list[DemoUser]
    content: ImportReport

    def summary(self) -> str:
        """Sign-in instructions for a terminal."""
        lines = [
            f"Demo content: {len(self.content.changed)} items added or updated, "
            f"{len(self.content.unchanged)} already current.",
            "Demo accounts (add the TOTP secret to an authenticator app, or scan the URI):",
        ]
        for user in self.users:
            password = user.password or "(changed since the demo made it; not shown)"
            lines += [
                f"  {user.username} ({user.role}){'' if user.created else ', already present'}",
                f"    password:    {password}",
                f"    TOTP secret: {user.totp_secret}",
                f"    URI:         {user.otpauth_uri}",
            ]
        return "\n".join(lines)


def demo_content_dir() -> Path:
    """The demo folder: next to the package when installed, at the repository root otherwise."""
    package_dir = Path(__file__).resolve().parent
    candidates = [
        package_dir / "resources" / "demo",
        package_dir.parent / "resources" / "demo",
        Path(sys.prefix) / "share" / "vigil" / "resources" / "demo",
    ]
    for candidate in candidates:
        if (candidate / "playbooks").is_dir() or (candidate / "templates").is_dir():
            return candidate
    raise DemoContentMissing(
        "The demo content is not installed; looked in "
        + ", ".join(str(candidate) for candidate in candidates)
        + ". Run the demo from a checkout of the Vigil repository."
    )


def load_demo(
    store: Store, signer: ContentSigner, settings: HubSettings, directory: Path | None = None
) -> DemoCredentials:
    """Import the demo content and create the demo users that are missing; safe to run again."""
    report = import_content(store, signer, directory or demo_content_dir())
    users = [
        _ensure_user(store, username, role, display_name, password)
        for username, role, display_name, password in DEMO_USERS
    ]
    _ensure_group(store)
    return DemoCredentials(users=users, content=report)


def _ensure_group(store: Store) -> None:
    # Only what is missing is added: an admin's later changes to the demo group stay.
    with contextlib.suppress(GroupExists):
        store.groups.create(DEMO_GROUP, "region", DEMO_GROUP_DESCRIPTION)
        store.groups.add_members(DEMO_GROUP, list(DEMO_CONTACTS))
        for username, contact in DEMO_CONTACTS.items():
            store.groups.set_contact(username, contact)


def _ensure_user(
    store: Store, username: str, role: Role, display_name: str, password: str
) -> DemoUser:
    created = False
    record = store.accounts.find_user(username=username)
    if record is None:
        try:
            record = store.accounts.create_user(
                username=username,
                display_name=display_name,
                role=role,
                password_hash=passwords.hash_password(
                    check_new_password(password, username=username)
                ),
                totp_secret=totp.new_secret(),
            )
            created = True
        except UsernameTaken:
            # Another hub process made it a moment ago: use that one.
            record = store.accounts.find_user(username=username)
            assert record is not None
    # The stored password may have been changed since the demo made the user: then it is unknown.
    known = created or passwords.verify_password(record.password_hash, password)
    return DemoUser(
        username=record.username,
        role=record.role,
        password=password if known else None,
        totp_secret=record.totp_secret,
        otpauth_uri=totp.provisioning_uri(record.totp_secret, record.username),
        created=created,
    )
