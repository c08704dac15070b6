"""Two approvals of one held request that carries an Idempotency-Key: the second is refused.

The held request keeps its publish's key so a retry of that publish finds the approved alert;
an approval racing the first one carries the same key and must not be answered that alert as if
it had approved it (the audit would record two approvals and two publishes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.clock import SystemClock
from hub.storage import Store
from hub.storage.alerts import ApprovalDecided, PublishKey


def test_a_second_approval_with_the_requests_key_is_refused(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "hub.db", SystemClock())
    try:
        key = PublishKey("form-key", "hash-of-the-draft")
        draft = {"severity": "critical", "title": "Fire", "body": "Evacuate."}
        held, _ = store.alerts.request_approval(draft, "dina", key)

        def approve(by: str) -> tuple[str, bool]:
            alert, created = store.alerts.publish(
                severity="critical",
                title="Fire",
                body="Evacuate.",
                playbook_id=None,
                template_ids=[],
                requires_ack=True,
                expires_at=None,
                issued_by="dina",
                publish_key=key,
                approved_by=by,
                approval_id=held.id,
            )
            return alert.id, created

        alert_id, created = approve("dora")
        assert created
        with pytest.raises(ApprovalDecided):
            approve("dan")
        approval = store.alerts.approval(held.id)
        assert approval is not None
        assert (approval.status, approval.decided_by, approval.alert_id) == (
            "approved",
            "dora",
            alert_id,
        )
        # A retry of the held publish itself still finds the approved alert.
        assert store.alerts.first_published("dina", key) is not None
    finally:
        store.close()
