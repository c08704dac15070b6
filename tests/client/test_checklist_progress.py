"""Checklist progress in the cache: per alert and playbook, kept across restarts."""

from pathlib import Path

from client.core.cache import Cache


def test_progress_is_kept_per_alert_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    cache = Cache.open(path)
    assert cache.checklist("alert-1", "pb-1") == set()
    cache.set_checklist_step("alert-1", "pb-1", 0, True)
    cache.set_checklist_step("alert-1", "pb-1", 3, True)
    cache.set_checklist_step("alert-2", "pb-1", 1, True)
    cache.set_checklist_step("alert-1", "pb-1", 3, False)
    cache.close()

    reopened = Cache.open(path)
    assert reopened.checklist("alert-1", "pb-1") == {0}
    assert reopened.checklist("alert-2", "pb-1") == {1}
    assert reopened.checklist("alert-1", "pb-2") == set()
    assert reopened.checklist("", "pb-1") == set()
    reopened.close()
