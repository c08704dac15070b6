"""`vigil-hub content import DIR`: validate playbook and template files, then store them at once."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hub.storage.alerts import Severity
from hub.storage.content import ContentChange, ContentKind

if TYPE_CHECKING:
    from hub.signing import ContentSigner
    from hub.storage import Store

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_KIND_FOLDERS: tuple[tuple[ContentKind, str], ...] = (
    ("playbook", "playbooks"),
    ("template", "templates"),
)

Text = Field(min_length=1, max_length=20_000)
ShortText = Field(min_length=1, max_length=300)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class EscalationLevel(_Strict):
    """One rung of a playbook's escalation path."""

    level: int = Field(ge=1, le=20)
    role: str = ShortText
    contact: str = ShortText
    after_minutes: int = Field(ge=0, le=7 * 24 * 60)


class PhoneTreeEntry(_Strict):
    """One fallback contact, called in `order`."""

    order: int = Field(ge=1, le=100)
    name: str = ShortText
    role: str = ShortText
    phone: str = Field(min_length=3, max_length=40)
    notes: str | None = Field(default=None, max_length=1_000)


class PlaybookData(_Strict):
    """The `data` of a playbook (docs/protocol.md)."""

    title: str = ShortText
    category: str = ShortText
    severity: Severity
    summary: str = Text
    steps: list[str] = Field(min_length=1, max_length=100)
    escalation_path: list[EscalationLevel] = Field(default_factory=list, max_length=20)
    phone_tree: list[PhoneTreeEntry] = Field(default_factory=list, max_length=100)
    template_ids: list[str] = Field(default_factory=list, max_length=100)
    tags: list[str] = Field(default_factory=list, max_length=50)


class Placeholder(_Strict):
    """A `{name}` in a template body and what the agent fills in for it."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)
    description: str = ShortText


class TemplateData(_Strict):
    """The `data` of a template (docs/protocol.md)."""

    title: str = ShortText
    channel: Literal["phone_script", "sms", "email", "chat", "portal_banner"]
    subject: str | None = Field(default=None, max_length=300)
    body: str = Text
    placeholders: list[Placeholder] = Field(default_factory=list, max_length=50)
    approved_by: str = ShortText
    approved_at: date = Field(strict=False)
    locale: str = Field(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")
    tags: list[str] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _check_subject_and_placeholders(self) -> TemplateData:
        if self.channel == "email" and not self.subject:
            raise ValueError("an email template needs a subject")
        if self.channel != "email" and self.subject is not None:
            raise ValueError("only email templates have a subject; set it to null")
        used = set(_PLACEHOLDER.findall(self.body + (self.subject or "")))
        described = {placeholder.name for placeholder in self.placeholders}
        if used - described:
            raise ValueError(
                "placeholders used but not described: " + ", ".join(sorted(used - described))
            )
        return self


class _PlaybookFile(_Strict):
    id: str = Field(pattern=_ID_PATTERN)
    data: PlaybookData


class _TemplateFile(_Strict):
    id: str = Field(pattern=_ID_PATTERN)
    data: TemplateData


class ContentImportError(Exception):
    """A content folder or file that cannot be imported; nothing was stored."""


@dataclass
class ImportReport:
    """What an import did, as `kind/id` names."""

    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def import_content(store: Store, signer: ContentSigner, directory: Path) -> ImportReport:
    """Import DIR/playbooks/*.json and DIR/templates/*.json in one transaction."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ContentImportError(
            f"{directory} is not a folder; give the folder that holds playbooks/ and templates/."
        )
    if not any((directory / folder).is_dir() for _, folder in _KIND_FOLDERS):
        raise ContentImportError(
            f"{directory} has neither a playbooks/ nor a templates/ folder; nothing to import."
        )
    changes: list[ContentChange] = []
    seen: dict[tuple[str, str], Path] = {}
    for kind, folder in _KIND_FOLDERS:
        for path in sorted((directory / folder).glob("*.json")):
            item_id, data = _read_item(kind, path)
            earlier = seen.get((kind, item_id))
            if earlier is not None:
                raise ContentImportError(
                    f"{path} and {earlier} both define {kind} {item_id!r}; ids must be unique."
                )
            seen[(kind, item_id)] = path
            changes.append(ContentChange(kind, item_id, data))
    report = ImportReport()
    for change, changed in zip(changes, store.content.apply(changes, signer), strict=True):
        (report.changed if changed else report.unchanged).append(f"{change.kind}/{change.id}")
    return report


def _read_item(kind: ContentKind, path: Path) -> tuple[str, dict[str, Any]]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ContentImportError(f"{path} is not UTF-8 text: {exc.reason}.") from exc
    except json.JSONDecodeError as exc:
        raise ContentImportError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from exc
    model = _PlaybookFile if kind == "playbook" else _TemplateFile
    try:
        item = model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'the file'}: {error['msg']}"
            for error in exc.errors()[:5]
        )
        raise ContentImportError(f"{path} is not a valid {kind}: {problems}.") from exc
    return item.id, item.data.model_dump(mode="json")
