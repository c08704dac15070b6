"""The About window: version and build, the IT policy in force, the hub, and the bundled
libraries' licences, as plain text that can be selected and copied for a support ticket."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHeaderView,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from client.core.about import AboutFacts
from client.ui.text import plain_label, section_heading


class AboutWindow(QDialog):
    """Shows one AboutFacts; Close or Esc closes it."""

    def __init__(self, facts: AboutFacts, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Vigil")
        self.setAccessibleName("About Vigil")
        self.setMinimumSize(640, 460)
        heading = plain_label("Vigil", name="Heading")
        heading.setAccessibleName("Vigil, crisis alerts for support agents")
        self.facts: dict[str, str] = {
            "Version": facts.version,
            "Build": facts.build,
            "Runs on": facts.python,
            "IT policy in force": facts.policy_file,
            "Hub": facts.hub,
        }
        form = QFormLayout()
        self.fields: dict[str, object] = {}
        for name, value in self.facts.items():
            label = plain_label(value)
            label.setAccessibleName(f"{name}: {value}")
            form.addRow(f"{name}:", label)
            self.fields[name] = label
        self.licences = QTreeWidget()
        self.licences.setAccessibleName("Bundled libraries and their licences")
        self.licences.setHeaderLabels(["Library", "Version", "Licence"])
        self.licences.setRootIsDecorated(False)
        self.licences.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.licences.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        for licence in facts.licences:
            self.licences.addTopLevelItem(
                QTreeWidgetItem([licence.name, licence.version, licence.licence])
            )
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        close = buttons.button(QDialogButtonBox.StandardButton.Close)
        if close is not None:
            close.setAccessibleName("Close About Vigil")
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addLayout(form)
        layout.addWidget(section_heading("Libraries bundled with Vigil"))
        layout.addWidget(self.licences, 1)
        layout.addWidget(buttons)
