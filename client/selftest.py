"""`vigil --self-test`: proves an installed or frozen build is whole, without a hub or a display.

It imports every client module, opens a cache and an outbox in a temporary folder, verifies a
signature made by the real `minisign` tool, and renders an alert pop-up on Qt's offscreen platform
with the bundled stylesheet and icons. Each step prints one line; the exit status is 0 only when
every step passed.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

# A key pair made with `minisign -G` for this check only (its secret key was thrown away), and a
# prehashed signature `minisign -S -t "vigil self-test vector"` made of _SIGNED_TEXT.
_PUBLIC_KEY = "RWRSX13gqVECE6BAvKZfw02DNzxFHCcwHHQ7Mbmlqv8aTtnNWGYLc6gK"
_SIGNED_TEXT = b"Vigil self-test: this text was signed by the minisign tool.\n"
_SIGNATURE = """\
untrusted comment: signature from minisign secret key
RURSX13gqVECE6Rw8iZQ991LWsiNE8EWaIZEhvV5UtM8J2EgZHP8yWo/JWCOrIMEObF8rYsZ9Q93F4GZpTy842UJ7mWlv430twg=
trusted comment: vigil self-test vector
k64ZOWDqQSW+z/7ZsKhmQgftroXuo6K0x1rSCpfNtaynZpFeT8fa+cBIthcn4YuInJP8X36/nyTAAdVhRQ3yBQ==
"""


def _import_everything() -> str:
    import client

    names = [
        info.name
        for info in pkgutil.walk_packages(client.__path__, prefix="client.")
        if info.name != __name__
    ]
    for name in names:
        importlib.import_module(name)
    if len(names) < 20:
        raise RuntimeError(f"only {len(names)} client modules were found; the build is incomplete")
    return f"{len(names)} modules imported"


def _cache(folder: Path) -> str:
    from client.core.cache import Cache
    from client.core.outbox import Outbox

    cache = Cache.open(folder / "cache.sqlite3")
    try:
        hits = cache.search("outage")
    finally:
        cache.close()
    outbox = Outbox.open(folder / "outbox.sqlite3")
    outbox.close()
    return f"cache and outbox opened, full-text search answered ({len(hits)} hits)"


def _signature() -> str:
    from client.core import minisign
    from client.core.errors import ReleaseSignatureError

    key = minisign.PublicKey.parse(_PUBLIC_KEY)
    signature = minisign.Signature.parse(_SIGNATURE, what="the self-test text")
    comment = minisign.verify(key, _SIGNED_TEXT, signature, what="the self-test text")
    try:
        minisign.verify(key, _SIGNED_TEXT + b"!", signature, what="the changed text")
    except ReleaseSignatureError:
        return f"minisign signature verified ({comment}); a changed text is refused"
    raise RuntimeError("a changed text passed signature verification")


def _popup() -> str:
    # Offscreen: the check needs no display, and must not flash a window on one.
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication

    from client.core.models import Alert
    from client.ui import resources
    from client.ui.alert_popup import AlertCard, AlertPopup

    qt_app = QApplication.instance() or QApplication([sys.argv[0]])
    if isinstance(qt_app, QApplication):
        qt_app.setStyleSheet(resources.stylesheet())
    icon = resources.app_icon()
    if icon.isNull():
        raise RuntimeError("the application icon did not load")
    alert = Alert(
        id="00000000-0000-4000-8000-000000000000",
        seq=1,
        severity="critical",
        title="Self-test alert",
        body="Rendering check.",
        playbook_id=None,
        template_ids=(),
        requires_ack=True,
        issued_at="2026-01-01T00:00:00Z",
        expires_at=None,
        issued_by="self-test",
    )
    popup = AlertPopup()
    popup.present(AlertCard(alert), sound=False)
    image = popup.grab().toImage()
    popup.hide()
    popup.deleteLater()
    if image.isNull() or image.width() < 50 or image.height() < 50:
        raise RuntimeError("the alert pop-up rendered empty")
    return f"alert pop-up rendered offscreen ({image.width()}x{image.height()})"


def run_self_test() -> int:
    """Run every step, printing one line each; 0 when all passed, 1 otherwise."""
    failures = 0
    with tempfile.TemporaryDirectory(prefix="vigil-self-test-") as folder:
        steps: list[tuple[str, Callable[[], str]]] = [
            ("imports", _import_everything),
            ("cache", lambda: _cache(Path(folder))),
            ("signature", _signature),
            ("pop-up", _popup),
        ]
        for name, step in steps:
            try:
                print(f"self-test {name}: ok, {step()}")
            except Exception as exc:
                failures += 1
                print(f"self-test {name}: FAILED, {type(exc).__name__}: {exc}")
                traceback.print_exc(file=sys.stderr)
    print("self-test: passed" if not failures else f"self-test: {failures} step(s) failed")
    return 0 if not failures else 1
