"""One template: a small form for its placeholders, a live plain-text preview, length and Copy.

Filling and measuring are the core's (client.core.template_fill); this view only shows them.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from client.core.content import Placeholder, Template
from client.core.template_fill import FilledText, LengthReport, fill, form_fields, measure
from client.ui.bidi import without_bidi_controls
from client.ui.text import TITLE_SHOWN_MAX, plain_label, plain_tooltip, section_heading, shown

CHANNEL_NAMES = {
    "phone_script": "Phone script",
    "sms": "SMS",
    "email": "Email",
    "chat": "Chat",
    "portal_banner": "Portal banner",
}
_OVER_STYLE = "color: #8a1c14; font-weight: 600;"


def length_text(report: LengthReport, channel: str) -> str:
    """The counter's words, e.g. "132 / 160", "200 / 160 · 2 messages"."""
    if report.limit is None:
        return ""
    text = f"{report.length} / {report.limit}"
    if report.encoding == "UCS-2":
        text += " (special characters: 70 per message)"
    if channel == "sms" and report.segments > 1:
        text += f" · {report.segments} messages"
    elif report.over:
        text += " · too long"
    return text


class TemplateView(QWidget):
    """Shows one template for filling in and copying.

    Signals:
        copied(template_id): the filled text was put on the clipboard.
    """

    copied = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._template: Template | None = None
        self._fields: dict[str, QLineEdit] = {}
        self._confirming = False

        self.title = plain_label(name="Heading")
        self.title.setAccessibleName("Template title")
        self.meta = plain_label(name="Meta")
        self.form_host = QWidget()
        self.form = QFormLayout(self.form_host)
        self.form.setContentsMargins(0, 0, 0, 0)

        self.subject = plain_label()
        self.subject.setAccessibleName("Subject preview")
        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setAccessibleName("Preview")
        self.preview.setTabChangesFocus(True)

        self.counter = plain_label(name="Counter", wrap=False)
        self.counter.setAccessibleName("Length")
        self.warning = plain_label(name="Hint")
        self.warning.setAccessibleName("Unfilled placeholders")

        self.copy_subject_button = QPushButton("Copy subject")
        self.copy_subject_button.setAccessibleName("Copy the subject")
        self.copy_subject_button.clicked.connect(self._copy_subject)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setObjectName("Primary")
        self.copy_button.setAccessibleName("Copy the filled text")
        self.copy_button.clicked.connect(self._on_copy_clicked)

        buttons = QHBoxLayout()
        buttons.addWidget(self.counter)
        buttons.addStretch(1)
        buttons.addWidget(self.copy_subject_button)
        buttons.addWidget(self.copy_button)

        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.meta)
        layout.addWidget(self.form_host)
        layout.addWidget(section_heading("Preview"))
        layout.addWidget(self.subject)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.warning)
        layout.addLayout(buttons)
        self.clear()

    @property
    def template_id(self) -> str | None:
        """The template shown, or None."""
        return self._template.id if self._template else None

    @Slot()
    def clear(self) -> None:
        """Show nothing (no template chosen)."""
        self._template = None
        self._set_fields([])
        self.title.setText("No template open")
        for widget in (self.meta, self.subject, self.counter, self.warning):
            widget.clear()
        self.subject.setVisible(False)
        self.preview.clear()
        self.copy_button.setEnabled(False)
        self.copy_subject_button.setVisible(False)

    def show_template(self, template: Template) -> None:
        """Show `template` with an empty form."""
        self._template = template
        self.title.setText(shown(template.title, TITLE_SHOWN_MAX))
        approved = " ".join(p for p in (template.approved_by, template.approved_at) if p)
        channel = CHANNEL_NAMES.get(template.channel, template.channel)
        meta = f"{channel} · approved by {approved}" if approved else channel
        self.meta.setText(without_bidi_controls(meta))
        texts = [template.body] + ([template.subject] if template.subject else [])
        self._set_fields(form_fields(texts, template.placeholders))
        has_subject = template.channel == "email" and bool(template.subject)
        self.subject.setVisible(has_subject)
        self.copy_subject_button.setVisible(has_subject)
        self.copy_button.setEnabled(True)
        self._refresh()

    def field(self, name: str) -> QLineEdit:
        """The input for placeholder `name`."""
        return self._fields[name]

    def fields(self) -> dict[str, QLineEdit]:
        """The placeholder inputs, by name, in form order."""
        return dict(self._fields)

    def values(self) -> dict[str, str]:
        """What the agent typed, by placeholder name."""
        return {name: edit.text() for name, edit in self._fields.items()}

    def filled_body(self) -> FilledText:
        """The body with the current values filled in, without bidi controls."""
        if self._template is None:
            return FilledText("", ())
        filled = fill(self._template.body, self.values())
        return FilledText(without_bidi_controls(filled.text), filled.unfilled)

    def _set_fields(self, placeholders: Sequence[Placeholder]) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self._fields = {}
        for placeholder in placeholders:
            edit = QLineEdit()
            label_text = placeholder.name.replace("_", " ").capitalize()
            hint = placeholder.description or f"Fills {{{placeholder.name}}}"
            edit.setPlaceholderText(hint)
            edit.setToolTip(plain_tooltip(hint))
            edit.setAccessibleName(label_text)
            edit.setAccessibleDescription(hint)
            edit.textChanged.connect(self._refresh)
            label = plain_label(label_text, wrap=False)
            label.setBuddy(edit)
            self.form.addRow(label, edit)
            self._fields[placeholder.name] = edit
        self.form_host.setVisible(bool(placeholders))

    @Slot()
    def _refresh(self) -> None:
        self._confirming = False
        self.copy_button.setText("Copy")
        if self._template is None:
            return
        body = self.filled_body()
        self.preview.setPlainText(body.text)
        if self._template.subject:
            subject = fill(self._template.subject, self.values()).text
            self.subject.setText(f"Subject: {without_bidi_controls(subject)}")
        report = measure(body.text, self._template.channel)
        self.counter.setText(length_text(report, self._template.channel))
        self.counter.setVisible(report.limit is not None)
        self.counter.setStyleSheet(_OVER_STYLE if report.over else "")
        self.counter.setProperty("over", report.over)
        unfilled = self._unfilled()
        self.warning.setText(
            "Not filled in yet: " + ", ".join("{" + n + "}" for n in unfilled) if unfilled else ""
        )

    def _unfilled(self) -> tuple[str, ...]:
        assert self._template is not None
        names = dict.fromkeys(self.filled_body().unfilled)
        if self._template.subject and self._template.channel == "email":
            names.update(dict.fromkeys(fill(self._template.subject, self.values()).unfilled))
        return tuple(names)

    @Slot()
    def _on_copy_clicked(self) -> None:
        if self._template is None:
            return
        unfilled = self._unfilled()
        if unfilled and not self._confirming:
            # Copying with a visible {placeholder} would reach a patient: ask for a second press.
            self._confirming = True
            self.warning.setText(
                "Not filled in yet: "
                + ", ".join("{" + n + "}" for n in unfilled)
                + ". Fill them in, or press Copy anyway."
            )
            self.copy_button.setText("Copy anyway")
            return
        QGuiApplication.clipboard().setText(self.filled_body().text)
        self._confirming = False
        self.copy_button.setText("Copy")
        self.warning.setText(f"Copied: {shown(self._template.title, TITLE_SHOWN_MAX)}")
        self.copied.emit(self._template.id)

    @Slot()
    def _copy_subject(self) -> None:
        if self._template is not None and self._template.subject:
            subject = fill(self._template.subject, self.values()).text
            QGuiApplication.clipboard().setText(without_bidi_controls(subject))
            self.warning.setText("Copied the subject")
