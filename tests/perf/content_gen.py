"""Generated playbooks and templates for the large-library benchmarks.

Each item is a variation on one of the demo items (resources/demo), so text, structure and lengths
are those of real content: steps, phone trees and scripts are recombined from the demo's own, and
titles get a region and a service so that searches find a realistic handful of hits.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

from hub.demo import demo_content_dir
from hub.storage.content import ContentChange

REGIONS = ("West", "East", "North", "South", "Central", "Pacific", "Mountain", "Gulf", "Lakes")
SERVICES = (
    "video visits",
    "pharmacy refills",
    "lab results",
    "patient portal",
    "scheduling",
    "e-prescribing",
    "billing",
    "nurse triage line",
    "behavioral health intake",
    "remote monitoring",
)
# Share of playbooks among the generated items (the demo has about one playbook to three templates).
PLAYBOOK_SHARE = 0.25


def _demo_items(kind_folder: str) -> list[dict[str, Any]]:
    folder = Path(demo_content_dir()) / kind_folder
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))]


class ContentGenerator:
    """Deterministic (seeded) generator of valid playbook and template data."""

    def __init__(self, seed: int = 7) -> None:
        self._rng = random.Random(seed)
        self._playbooks = _demo_items("playbooks")
        self._templates = _demo_items("templates")
        self._steps = [step for item in self._playbooks for step in item["data"]["steps"]]

    def items(self, count: int) -> list[ContentChange]:
        """`count` new items (ids gen-pb-00001..., gen-tpl-00001...)."""
        playbooks = round(count * PLAYBOOK_SHARE)
        changes = [
            ContentChange("playbook", f"gen-pb-{n:05d}", self.playbook(n)) for n in range(playbooks)
        ]
        changes += [
            ContentChange("template", f"gen-tpl-{n:05d}", self.template(n))
            for n in range(count - playbooks)
        ]
        return changes

    def playbook(self, n: int, revision: int = 0) -> dict[str, Any]:
        """One playbook's data, varied from a demo playbook."""
        rng = self._rng
        data = copy.deepcopy(self._playbooks[n % len(self._playbooks)]["data"])
        region, service = REGIONS[n % len(REGIONS)], SERVICES[(n // len(REGIONS)) % len(SERVICES)]
        data["title"] = f"{data['title']} ({service}, {region} region, #{n})"
        keep = rng.randint(max(1, len(data["steps"]) - 3), len(data["steps"]))
        data["steps"] = data["steps"][:keep] + rng.sample(self._steps, 2)
        data["tags"] = sorted({*data["tags"], region.lower(), service.split()[0]})
        if revision:
            data["summary"] = f"{data['summary']} Revised (revision {revision})."
        return data

    def template(self, n: int, revision: int = 0) -> dict[str, Any]:
        """One template's data, varied from a demo template."""
        data = copy.deepcopy(self._templates[n % len(self._templates)]["data"])
        region, service = REGIONS[n % len(REGIONS)], SERVICES[(n // len(REGIONS)) % len(SERVICES)]
        data["title"] = f"{data['title']} ({service}, {region} region, #{n})"
        data["tags"] = sorted({*data["tags"], region.lower(), service.split()[0]})
        if revision:
            data["body"] = f"{data['body']}\n(Revision {revision}.)"
        return data

    def revised(self, ids: list[str], revision: int) -> list[ContentChange]:
        """New versions of the generated items with these ids."""
        changes = []
        for item_id in ids:
            n = int(item_id.rsplit("-", 1)[1])
            if item_id.startswith("gen-pb-"):
                changes.append(ContentChange("playbook", item_id, self.playbook(n, revision)))
            else:
                changes.append(ContentChange("template", item_id, self.template(n, revision)))
        return changes
