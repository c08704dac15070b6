"""What the board and incident page read from the store: counts, row order, timeline, and text
made safe to show. No browser: a real store in a temporary folder."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.clock import ManualClock
from hub.config import HubSettings
from hub.console import incident_view
from hub.console.incident_view import coarse_age, shown_text, tel_href
from hub.console.pages import templates
from hub.storage import Store
from hub.storage.alerts import NewAck
from hub.storage.delivery import NewReceipt

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
DAY_MS = 86_400_000
ACK_ID = "0b8f4a52-4d8e-4a57-9d1a-3f3b5b0e7c11"


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_shown_text_keeps_every_readable_character_and_drops_every_control(text: str) -> None:
    shown = shown_text(text)
    assert not any(char in BIDI for char in shown)
    assert all(char in "\n\t" or unicodedata.category(char) not in ("Cc", "Cs") for char in shown)
    # Nothing readable is lost or reordered: the shown text is the input without the controls.
    kept = iter(text)
    assert all(char in kept for char in shown)
    assert len(shown) == sum(
        1
        for char in text
        if char in "\n\t" or not (char in BIDI or unicodedata.category(char) in ("Cc", "Cs"))
    )


@pytest.mark.parametrize(
    ("phone", "href"),
    [
        ("+1 (555) 010-0222", "tel:+15550100222"),
        ("555 0199", "tel:5550199"),
        (" +44 20 7946 0000", "tel:+442079460000"),
        ("ext. none", None),
        ("", None),
        (None, None),
        ("javascript:alert(1)//555", "tel:1555"),
    ],
)
def test_a_tel_link_holds_only_digits_and_a_leading_plus(
    phone: str | None, href: str | None
) -> None:
    assert tel_href(phone) == href


@pytest.mark.parametrize(
    ("seconds", "age"),
    [
        (-5.0, "under a minute ago"),
        (59.9, "under a minute ago"),
        (60.0, "1 min ago"),
        (7_199.0, "119 min ago"),
        (7_200.0, "2 h 00 min ago"),
        (172_800.0, "2 days ago"),
        (1e12, "11574074 days ago"),
    ],
)
def test_the_boards_ages_change_once_a_minute_at_most(seconds: float, age: str) -> None:
    assert coarse_age(seconds) == age


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Store, HubSettings]]:
    clock = ManualClock(1_800_000_000.0)
    opened = Store.open(tmp_path / "hub.sqlite3", clock)
    yield opened, HubSettings(data_dir=tmp_path, clock=clock)
    opened.close()


def _agent(store: Store, username: str) -> None:
    store.accounts.create_user(
        username=username,
        display_name=username.title(),
        role="agent",
        password_hash="not-a-hash",
        totp_secret="JBSWY3DPEHPK3PXP",
    )


def test_counts_rows_and_timeline_follow_receipts_and_answers(
    store: tuple[Store, HubSettings],
) -> None:
    hub, settings = store
    for name in ("alex", "blair", "casey", "sam"):
        _agent(hub, name)
    hub.groups.create("West", "region")
    hub.groups.add_members("West", ["alex", "blair", "casey", "sam"])
    hub.groups.set_contact("sam", {"phone": "+1 555 0100"})
    alert, _ = hub.alerts.publish(
        severity="critical",
        title="Video \u202edown",
        body="Use phones.",
        playbook_id=None,
        template_ids=[],
        requires_ack=True,
        expires_at=None,
        issued_by="dora",
        audience=["West"],
    )
    now_ms = round(settings.clock.now() * 1000)
    for name, shown in (("alex", True), ("blair", False), ("casey", True)):
        [result] = hub.delivery.record_receipts(
            name,
            (f"{name}-1", f"{name} laptop"),
            [NewReceipt(alert.id, now_ms + 10, now_ms + 20 if shown else None)],
            clock_skew_ms=DAY_MS,
            sees_all=False,
        )
        assert result.status == "accepted"
    hub.alerts.record_acks(
        "alex",
        [NewAck(ACK_ID, alert.id, "acknowledged", "ok", now_ms + 30)],
        clock_skew_ms=DAY_MS,
        device=("alex-1", "alex laptop"),
    )
    assert isinstance(settings.clock, ManualClock)
    settings.clock.advance(60)
    hub.alerts.change(alert.id, kind="update", text="Phones work", by="dora")

    page = incident_view.incident_page(hub, settings, alert.id)
    assert page is not None
    view = page.view
    assert view.title == "Video down"
    assert (
        view.counts.targeted,
        view.counts.delivered,
        view.counts.shown,
        view.counts.acknowledged,
        view.counts.silent,
    ) == (4, 3, 2, 1, 1)
    assert [row.username for row in view.agents] == ["sam", "blair", "casey", "alex"]
    assert view.agents[0].waiting and view.agents[0].tel == "tel:+15550100"
    assert not view.agents[1].waiting
    assert view.agents[3].answer_device == "alex laptop" and view.agents[3].note == "ok"
    assert view.updates == 1

    kinds = [entry.kind for entry in page.timeline]
    assert kinds[0] == "published" and kinds[-1] == "update"
    assert sorted(kinds) == sorted(
        [
            "published",
            "received",
            "received",
            "received",
            "shown",
            "shown",
            "acknowledged",
            "update",
        ]
    )
    assert incident_view.incident_page(hub, settings, str(uuid.uuid4())) is None

    board = incident_view.board(hub, settings)
    assert [item.id for item in board.live] == [alert.id] and board.drills == ()
    assert board.summary() == (
        "Video down: 3 of 4 delivered, 2 shown, 1 acknowledged, 0 escalated, 0 unable, 1 silent."
    )


def test_the_board_renders_the_same_while_only_seconds_pass(
    store: tuple[Store, HubSettings],
) -> None:
    hub, settings = store
    clock = settings.clock
    assert isinstance(clock, ManualClock)
    _agent(hub, "alex")
    hub.alerts.publish(
        severity="critical",
        title="Video down",
        body="Use phones.",
        playbook_id=None,
        template_ids=[],
        requires_ack=True,
        expires_at=None,
        issued_by="dora",
        next_update_by=clock.now() + 600,
    )

    def rendered() -> str:
        context = {"board": incident_view.board(hub, settings), "now": clock.now()}
        return templates.get_template("board_incidents.html").render(context)

    # An open board is sent again whenever this HTML changes: the table would be swapped (and
    # a keyboard user's focus in it lost) every couple of seconds if ages counted seconds.
    clock.advance(65)
    first = rendered()
    clock.advance(50)
    assert rendered() == first
    clock.advance(10)
    assert rendered() != first and "Published 2 min ago" in rendered()
