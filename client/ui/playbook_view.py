"""One playbook: summary, steps as a checklist, escalation path and phone tree.

All playbook text is untrusted and shown as plain text. Checklist progress belongs to the core
(kept per alert in the cache): the view shows the progress it is given and emits each toggle.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from client.core.content import Playbook, Template
from client.ui.text import (
    BODY_SHOWN_MAX,
    TITLE_SHOWN_MAX,
    plain_label,
    plain_tooltip,
    section_heading,
    shown,
)

_ID_ROLE = Qt.ItemDataRole.UserRole


class PlaybookView(QWidget):
    """Shows one playbook, with its checklist progress for the alert it was opened from.

    Signals:
        checklist_toggled(alert_id, playbook_id, step_index, done): the agent ticked a step;
            alert_id is "" when the playbook was opened outside any alert.
        template_opened(template_id): the agent opened one of the linked templates.
        phone_copied(name): a contact's number was put on the clipboard.
    """

    checklist_toggled = Signal(str, str, int, bool)
    template_opened = Signal(str)
    phone_copied = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._playbook: Playbook | None = None
        self._alert_id = ""

        self.title = plain_label(name="Heading")
        self.title.setAccessibleName("Playbook title")
        self.meta = plain_label(name="Meta")
        self.context = plain_label(name="Hint")
        self.summary = plain_label()
        self.summary.setAccessibleName("Summary")

        self.progress = plain_label(name="Meta")
        self.steps = QListWidget()
        self.steps.setObjectName("Checklist")
        self.steps.setAccessibleName("Steps checklist")
        self.steps.setAccessibleDescription("Space ticks or unticks the selected step")
        self.steps.setWordWrap(True)
        self.steps.setSpacing(2)
        self.steps.itemChanged.connect(self._on_step_changed)
        self.steps.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.steps.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        self.escalation = QTableWidget(0, 4)
        self.escalation.setAccessibleName("Escalation path")
        self.escalation.setHorizontalHeaderLabels(["Level", "Role", "Contact", "After"])
        self._setup_table(self.escalation)

        self.phone_tree = QTableWidget(0, 6)
        self.phone_tree.setAccessibleName("Phone tree")
        self.phone_tree.setHorizontalHeaderLabels(["Order", "Name", "Role", "Phone", "Notes", ""])
        self._setup_table(self.phone_tree)
        # The notes take the room left and wrap, so each row's "Copy number" stays in view.
        self.phone_tree.horizontalHeader().setStretchLastSection(False)
        self.phone_tree.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)

        self.templates = QListWidget()
        self.templates.setAccessibleName("Linked templates")
        self.templates.setAccessibleDescription("Enter opens the selected template")
        self.templates.itemActivated.connect(self._on_template_activated)
        self.templates.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.templates_heading = section_heading("Templates")

        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(self.title)
        layout.addWidget(self.meta)
        layout.addWidget(self.context)
        layout.addWidget(self.summary)
        layout.addWidget(section_heading("Steps"))
        layout.addWidget(self.progress)
        layout.addWidget(self.steps)
        layout.addWidget(section_heading("Escalation path"))
        layout.addWidget(self.escalation)
        layout.addWidget(section_heading("Phone tree (call in this order)"))
        layout.addWidget(self.phone_tree)
        layout.addWidget(self.templates_heading)
        layout.addWidget(self.templates)
        layout.addStretch(1)

        scroll = QScrollArea()
        scroll.setAccessibleName("Playbook page (Page Up and Page Down scroll it)")
        scroll.setWidgetResizable(True)
        scroll.setWidget(page)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.clear()

    @staticmethod
    def _setup_table(table: QTableWidget) -> None:
        # One scroll area for the whole page: the tables and lists inside are as tall as their
        # rows and never scroll on their own (nested scrolling hid the phone tree's buttons).
        table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setWordWrap(True)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)

    @property
    def playbook_id(self) -> str | None:
        """The playbook shown, or None."""
        return self._playbook.id if self._playbook else None

    @property
    def alert_id(self) -> str:
        """The alert whose progress is shown ("" outside any alert)."""
        return self._alert_id

    @Slot()
    def clear(self) -> None:
        """Show nothing (no playbook chosen)."""
        self._playbook = None
        self._alert_id = ""
        self.title.setText("No playbook open")
        for widget in (self.meta, self.context, self.summary, self.progress):
            widget.clear()
        self.steps.blockSignals(True)
        self.steps.clear()
        self.steps.blockSignals(False)
        self.escalation.setRowCount(0)
        self.phone_tree.setRowCount(0)
        self.templates.clear()
        self.templates_heading.setVisible(False)
        self.templates.setVisible(False)

    def show_playbook(
        self,
        playbook: Playbook,
        *,
        alert_id: str | None = None,
        alert_title: str | None = None,
        done_steps: Collection[int] = (),
        linked_templates: Sequence[Template] = (),
    ) -> None:
        """Show `playbook`, with `done_steps` ticked (progress for `alert_id`)."""
        self._playbook = playbook
        self._alert_id = alert_id or ""
        self.title.setText(shown(playbook.title, TITLE_SHOWN_MAX))
        meta = " · ".join(p for p in (playbook.category, playbook.severity) if p)
        self.meta.setText(shown(meta, TITLE_SHOWN_MAX))
        if alert_id:
            alert_name = shown(alert_title or alert_id, TITLE_SHOWN_MAX)
            self.context.setText(f"Checklist progress for the alert: {alert_name}")
        else:
            self.context.setText("Checklist progress here is not tied to an alert.")
        self.summary.setText(shown(playbook.summary, BODY_SHOWN_MAX))
        self._fill_steps(playbook.steps, done_steps)
        self._fill_escalation(playbook)
        self._fill_phone_tree(playbook)
        self.templates.clear()
        for template in linked_templates:
            item = QListWidgetItem(shown(template.title, TITLE_SHOWN_MAX))
            item.setData(_ID_ROLE, template.id)
            self.templates.addItem(item)
        self.templates_heading.setVisible(bool(linked_templates))
        self.templates.setVisible(bool(linked_templates))
        self._fit_heights()

    def step_done(self, index: int) -> bool:
        """Whether step `index` is ticked."""
        return self.steps.item(index).checkState() == Qt.CheckState.Checked

    def _fill_steps(self, steps: Sequence[str], done: Collection[int]) -> None:
        # Restoring progress must not look like the agent ticking steps.
        self.steps.blockSignals(True)
        self.steps.clear()
        for index, step in enumerate(steps):
            item = QListWidgetItem(f"{index + 1}. {shown(step, BODY_SHOWN_MAX)}")
            item.setFlags(
                Qt.ItemFlag.ItemIsEnabled
                | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemIsUserCheckable
            )
            item.setCheckState(Qt.CheckState.Checked if index in done else Qt.CheckState.Unchecked)
            self.steps.addItem(item)
        self.steps.blockSignals(False)
        if steps:
            self.steps.setCurrentRow(0)
        self._update_progress()

    def _fill_escalation(self, playbook: Playbook) -> None:
        self.escalation.setRowCount(len(playbook.escalation_path))
        for row, level in enumerate(playbook.escalation_path):
            after = "at once" if level.after_minutes <= 0 else f"after {level.after_minutes} min"
            for column, text in enumerate((str(level.level), level.role, level.contact, after)):
                self.escalation.setItem(row, column, QTableWidgetItem(shown(text, TITLE_SHOWN_MAX)))
        self.escalation.resizeRowsToContents()

    def _fill_phone_tree(self, playbook: Playbook) -> None:
        entries = sorted(playbook.phone_tree, key=lambda e: e.order)
        self.phone_tree.setRowCount(len(entries))
        for row, entry in enumerate(entries):
            cells = (str(entry.order), entry.name, entry.role, entry.phone, entry.notes)
            for column, text in enumerate(cells):
                self.phone_tree.setItem(row, column, QTableWidgetItem(shown(text, BODY_SHOWN_MAX)))
            button = QPushButton("Copy number")
            button.setAccessibleName(f"Copy the number of {shown(entry.name, TITLE_SHOWN_MAX)}")
            button.setToolTip(plain_tooltip(f"Copy {entry.phone}"))
            button.clicked.connect(
                lambda _=False, name=entry.name, phone=entry.phone: self._copy_phone(name, phone)
            )
            self.phone_tree.setCellWidget(row, 5, button)
        self.phone_tree.resizeRowsToContents()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Wrapped rows change height with the width: fit the tables again."""
        super().resizeEvent(event)
        self._fit_heights()

    def _fit_heights(self) -> None:
        for table in (self.escalation, self.phone_tree):
            table.resizeRowsToContents()
            rows = sum(table.rowHeight(row) for row in range(table.rowCount()))
            header = table.horizontalHeader().height() if table.rowCount() else 0
            table.setFixedHeight(rows + header + 2 * table.frameWidth() + 2)
        for view in (self.steps, self.templates):
            view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
            rows = sum(view.sizeHintForRow(row) + 2 * view.spacing() for row in range(view.count()))
            rows = max(rows, view.fontMetrics().lineSpacing())
            view.setFixedHeight(rows + 2 * view.frameWidth() + 2 * view.spacing() + 4)
            # Wrapped rows are measured once laid out: grow by what would still scroll.
            for _ in range(3):
                view.doItemsLayout()
                overflow = view.verticalScrollBar().maximum()
                if overflow <= 0:
                    break
                view.setFixedHeight(view.height() + overflow)

    def _copy_phone(self, name: str, phone: str) -> None:
        QGuiApplication.clipboard().setText(phone)
        self.phone_copied.emit(name)

    def _update_progress(self) -> None:
        total = self.steps.count()
        done = sum(self.step_done(i) for i in range(total))
        self.progress.setText(f"{done} of {total} steps done" if total else "No steps")

    @Slot(QListWidgetItem)
    def _on_step_changed(self, item: QListWidgetItem) -> None:
        if self._playbook is None:
            return
        index = self.steps.row(item)
        self._update_progress()
        done = item.checkState() == Qt.CheckState.Checked
        self.checklist_toggled.emit(self._alert_id, self._playbook.id, index, done)

    @Slot(QListWidgetItem)
    def _on_template_activated(self, item: QListWidgetItem) -> None:
        self.template_opened.emit(str(item.data(_ID_ROLE)))
