"""The library window: playbooks, templates and the alert history, searchable as you type.

It renders what its controller gives it (from the cache and the outbox) and emits what the agent
wants; it reads no file and calls no service. Untrusted text is plain text everywhere, except search
snippets, whose escaped rich text comes from client.ui.text.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QHideEvent,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPalette,
    QShortcut,
    QStandardItem,
    QStandardItemModel,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from client.core.content import Playbook, SearchHit, Template
from client.core.models import Alert
from client.ui.enter_button import EnterButton
from client.ui.idle_lock import LockScreen
from client.ui.playbook_view import PlaybookView
from client.ui.template_view import CHANNEL_NAMES, TemplateView
from client.ui.text import (
    BODY_SHOWN_MAX,
    DRILL_BANNER,
    LINK_SHOWN_MAX,
    RETRACTED_NOTICE,
    TITLE_SHOWN_MAX,
    UPDATE_TEXT_SHOWN_MAX,
    closing_note,
    elide,
    local_when,
    next_update_text,
    plain_label,
    plain_tooltip,
    safe_local_time,
    search_hit_html,
    shown,
    snippet_plain,
    update_heading,
)
from client.ui.view_models import AlertHistoryEntry

# Short enough that results follow a pause in typing within 100 ms (a query over 10,000 items
# takes a few ms), long enough that a fast typist does not search on every key.
SEARCH_DEBOUNCE_MS = 40

# Item data roles: the item's id, its kind ("playbook"/"template"), its prepared rich text.
ID_ROLE = Qt.ItemDataRole.UserRole
KIND_ROLE = Qt.ItemDataRole.UserRole + 1
HTML_ROLE = Qt.ItemDataRole.UserRole + 2

_KIND_NAMES = {"playbook": "Playbook", "template": "Template"}
_ACTION_NAMES = {
    "acknowledged": "Acknowledged",
    "escalated": "Escalated",
    "unable": "Unable to respond",
}
_BANNER_STYLE = (
    "background: #fff4d6; color: #5c3b00; border: 1px solid #e0b84f; border-radius: 4px;"
    " padding: 6px 10px; font-weight: 600;"
)


def ack_state_text(entry: AlertHistoryEntry) -> str:
    """The agent's answer in words, e.g. "Acknowledged · waiting to sync"."""
    if entry.ack_state == "unanswered" and entry.answered_on is not None:
        return f"Answered on {elide(shown(entry.answered_on, 100), 60)}"
    if entry.ack_state == "unanswered":
        return "Not answered yet" if entry.alert.requires_ack else "No answer needed"
    action = _ACTION_NAMES.get(entry.action or "", "Answered")
    if entry.ack_state == "pending":
        return f"{action} · waiting to sync"
    if entry.ack_state == "synced":
        return f"{action} · synced"
    return f"{action} · rejected by the hub: {entry.reason or 'no reason given'}"


def incident_status_text(entry: AlertHistoryEntry) -> str:
    """The alert's state in words for the history list, e.g. "DRILL · Open · Update 2 ·
    Updated"."""
    alert = entry.alert
    parts = ["DRILL"] if alert.drill else []
    parts.append({"open": "Open", "resolved": "Resolved", "retracted": "RETRACTED"}[alert.status])
    updates = sum(1 for update in alert.updates if update.kind == "update")
    if updates:
        parts.append(f"Update {updates}")
    if entry.updated_since_answer and not alert.is_closed:
        parts.append("Updated")
    return " · ".join(parts)


def updates_text(alert: Alert, now: datetime) -> str:
    """Every change to the alert, oldest first, as plain text: its heading, text and links."""
    blocks = []
    for update in alert.updates:
        lines = [update_heading(alert, update, now), shown(update.text, UPDATE_TEXT_SHOWN_MAX)]
        lines += [f"Link: {shown(link, LINK_SHOWN_MAX)}" for link in update.links]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


class RichTextDelegate(QStyledItemDelegate):
    """Paints an item's prepared (already escaped) rich text from HTML_ROLE."""

    def _document(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QTextDocument:
        document = QTextDocument()
        document.setDefaultFont(option.font)
        document.setDocumentMargin(4)
        document.setHtml(str(index.data(HTML_ROLE) or ""))
        width = option.rect.width()
        view = self.parent()
        if width <= 0 and isinstance(view, QAbstractItemView):
            # sizeHint gets no item rect: wrap at the view's width instead.
            width = view.viewport().width()
        document.setTextWidth(max(width, 200))
        return document

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        """Draw the item's background and focus as usual, then the rich text."""
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        document = self._document(opt, index)
        context = QAbstractTextDocumentLayout.PaintContext()
        if opt.state & QStyle.StateFlag.State_Selected:
            context.palette.setColor(
                QPalette.ColorRole.Text, opt.palette.color(QPalette.ColorRole.HighlightedText)
            )
        painter.save()
        painter.translate(opt.rect.topLeft())
        painter.setClipRect(opt.rect.translated(-opt.rect.topLeft()))
        document.documentLayout().draw(painter, context)
        painter.restore()

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        """The rich text's height at the view's width."""
        document = self._document(option, index)
        return QSize(int(document.idealWidth()), int(document.size().height()))


class LibraryWindow(QMainWindow):
    """Playbooks, templates and alert history from the local cache, with search as you type.

    Signals:
        search_requested(text): search the cache for `text` (after typing pauses).
        playbook_opened(playbook_id): show this playbook (call `show_playbook`).
        template_opened(template_id): show this template (call `show_template`).
        alert_opened(alert_id): the agent opened an alert from the history.
        alert_playbook_opened(alert_id, playbook_id): open an alert's playbook, with the
            checklist progress for that alert.
        sync_requested(): sync with the hub now.
        checklist_toggled(alert_id, playbook_id, step_index, done): store checklist progress.
        template_copied(template_id): a filled template went to the clipboard.
        about_requested(): Help > About Vigil.
    """

    search_requested = Signal(str)
    playbook_opened = Signal(str)
    template_opened = Signal(str)
    alert_opened = Signal(str)
    alert_playbook_opened = Signal(str, str)
    sync_requested = Signal()
    checklist_toggled = Signal(str, str, int, bool)
    template_copied = Signal(str)
    about_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Vigil library")
        self.setAccessibleName("Vigil library")
        self.resize(1000, 700)
        self._alerts: dict[str, AlertHistoryEntry] = {}
        self._detail_entry: AlertHistoryEntry | None = None
        self._original_shown_for: str | None = None
        self._locked = False

        self.offline_banner = plain_label(name="OfflineBanner")
        self.offline_banner.setStyleSheet(_BANNER_STYLE)
        self.offline_banner.setAccessibleName("Offline notice")
        self.offline_banner.setVisible(False)

        self.vpn_banner = plain_label(name="OfflineBanner")
        self.vpn_banner.setStyleSheet(_BANNER_STYLE)
        self.vpn_banner.setAccessibleName("VPN required notice")
        self.vpn_banner.setVisible(False)

        self.search_field = QLineEdit()
        self.search_field.setAccessibleName("Search playbooks and templates")
        self.search_field.setPlaceholderText("Search playbooks and templates (Ctrl+F)")
        self.search_field.setClearButtonEnabled(True)
        self.search_field.textChanged.connect(self._on_search_text_changed)
        self.search_field.installEventFilter(self)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(SEARCH_DEBOUNCE_MS)
        self._debounce.timeout.connect(self._emit_search)

        self.sync_button = QPushButton("Sync now")
        self.sync_button.setAccessibleName("Sync now")
        self.sync_button.setToolTip("Fetch the latest library and alerts from the hub (F5)")
        self.sync_button.clicked.connect(self.sync_requested)

        self.results_model = QStandardItemModel(self)
        self.results = QListView()
        self.results.setAccessibleName("Search results")
        self.results.setAccessibleDescription("Enter opens the selected result, Esc clears")
        self.results.setModel(self.results_model)
        self.results.setItemDelegate(RichTextDelegate(self.results))
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.results.setUniformItemSizes(False)
        self.results.setWordWrap(True)
        self.results.setResizeMode(QListView.ResizeMode.Adjust)
        self.results.activated.connect(self._open_result)
        self.results.installEventFilter(self)
        self.no_results = plain_label(name="Hint")
        self.no_results.setAccessibleName("Search result count")

        results_page = QWidget()
        results_layout = QVBoxLayout(results_page)
        results_layout.setContentsMargins(0, 0, 0, 0)
        results_layout.addWidget(self.no_results)
        results_layout.addWidget(self.results, 1)

        self.playbook_list = self._make_list("Playbooks")
        self.playbook_list.currentItemChanged.connect(self._on_playbook_selected)
        self.playbook_view = PlaybookView()
        self.playbook_view.checklist_toggled.connect(self.checklist_toggled)
        self.playbook_view.template_opened.connect(self.template_opened)
        self.playbook_view.phone_copied.connect(self._on_phone_copied)

        self.template_list = self._make_list("Templates")
        self.template_list.currentItemChanged.connect(self._on_template_selected)
        self.template_view = TemplateView()
        self.template_view.copied.connect(self._on_template_copied)

        self.alert_list = QTreeWidget()
        self.alert_list.setAccessibleName("Alert history")
        self.alert_list.setAccessibleDescription(
            "Enter or double-click opens the selected alert to answer it"
        )
        self.alert_list.setHeaderLabels(["Issued", "Severity", "Title", "Your answer", "Status"])
        self.alert_list.setRootIsDecorated(False)
        self.alert_list.setUniformRowHeights(True)
        header = self.alert_list.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.alert_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.alert_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.alert_list.itemActivated.connect(self._on_alert_activated)
        self.alert_list.currentItemChanged.connect(self._on_alert_selected)
        self.alert_drill = plain_label(DRILL_BANNER, name="DrillBanner")
        self.alert_drill.setAccessibleName(DRILL_BANNER)
        self.alert_closed = plain_label(name="ClosedNotice")
        self.alert_closed.setAccessibleName("Alert closed")
        self.alert_original_button = EnterButton("Show &original")
        self.alert_original_button.setCheckable(True)
        self.alert_original_button.setAccessibleName(
            "Show the original text of the retracted alert"
        )
        self.alert_original_button.toggled.connect(self._on_original_toggled)
        self.alert_next_update = plain_label(name="NextUpdate")
        self.alert_next_update.setAccessibleName("When the next update is due")
        self.alert_updates = plain_label()
        self.alert_updates.setAccessibleName("Updates to this alert")
        self.alert_title = plain_label(name="Heading")
        self.alert_title.setAccessibleName("Alert title")
        self.alert_meta = plain_label(name="Meta")
        self.alert_body = plain_label()
        self.alert_body.setAccessibleName("Alert text")
        self.alert_answer = plain_label(name="AckState")
        self.alert_answer.setAccessibleName("Your answer")
        self.alert_playbook_button = QPushButton("Open playbook")
        self.alert_playbook_button.setAccessibleName("Open this alert's playbook")
        self.alert_playbook_button.clicked.connect(self._open_alert_playbook)
        self.alert_answer_button = QPushButton("&Answer this alert…")
        self.alert_answer_button.setAccessibleName("Answer this alert: acknowledge or escalate")
        self.alert_answer_button.setToolTip("Open it in the alert window (Enter in the list)")
        self.alert_answer_button.clicked.connect(self._answer_selected_alert)
        alert_detail = QWidget()
        detail_layout = QVBoxLayout(alert_detail)
        for widget in (
            self.alert_drill,
            self.alert_closed,
            self.alert_original_button,
            self.alert_title,
            self.alert_meta,
            self.alert_next_update,
            self.alert_updates,
            self.alert_body,
            self.alert_answer,
        ):
            detail_layout.addWidget(widget)
        detail_buttons = QHBoxLayout()
        detail_buttons.addWidget(self.alert_answer_button)
        detail_buttons.addWidget(self.alert_playbook_button)
        detail_buttons.addStretch(1)
        detail_layout.addLayout(detail_buttons)
        detail_layout.addStretch(1)

        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Library sections")
        self.tabs.addTab(self._split(self.playbook_list, self.playbook_view), "&Playbooks")
        self.tabs.addTab(self._split(self.template_list, self.template_view), "&Templates")
        self.tabs.addTab(self._split(self.alert_list, alert_detail, vertical=True), "&Alerts")

        self.pages = QStackedWidget()
        self.pages.addWidget(self.tabs)
        self.pages.addWidget(results_page)
        self._results_page = results_page

        top = QHBoxLayout()
        top.addWidget(self.search_field, 1)
        top.addWidget(self.sync_button)
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.addWidget(self.offline_banner)
        layout.addWidget(self.vpn_banner)
        layout.addLayout(top)
        layout.addWidget(self.pages, 1)

        self.lock_screen = LockScreen()
        self.central = QStackedWidget()
        self.central.addWidget(content)
        self.central.addWidget(self.lock_screen)
        self._content = content
        self.setCentralWidget(self.central)

        self.status_line = plain_label(name="Meta", wrap=False)
        self.status_line.setAccessibleName("Sync status")
        self.statusBar().addPermanentWidget(self.status_line)

        help_menu = self.menuBar().addMenu("&Help")
        about = help_menu.addAction("&About Vigil")
        about.triggered.connect(self.about_requested)

        find = QShortcut(QKeySequence(QKeySequence.StandardKey.Find), self)
        find.activated.connect(self.focus_search)
        refresh = QShortcut(QKeySequence(QKeySequence.StandardKey.Refresh), self)
        refresh.activated.connect(self.sync_requested)
        self._show_alert_detail(None)

    @staticmethod
    def _make_list(name: str) -> QListWidget:
        widget = QListWidget()
        widget.setAccessibleName(name)
        widget.setMinimumWidth(220)
        widget.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        widget.setTextElideMode(Qt.TextElideMode.ElideRight)
        return widget

    @staticmethod
    def _split(first: QWidget, second: QWidget, *, vertical: bool = False) -> QSplitter:
        splitter = QSplitter(Qt.Orientation.Vertical if vertical else Qt.Orientation.Horizontal)
        splitter.addWidget(first)
        splitter.addWidget(second)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        return splitter

    # What the controller shows

    def set_playbooks(self, playbooks: Sequence[Playbook]) -> None:
        """List the cached playbooks (keeps the selection when it is still there)."""
        self._fill_list(self.playbook_list, [(p.id, p.title, p.category) for p in playbooks])

    def set_templates(self, templates: Sequence[Template]) -> None:
        """List the cached templates."""
        rows = [(t.id, t.title, CHANNEL_NAMES.get(t.channel, t.channel)) for t in templates]
        self._fill_list(self.template_list, rows)

    def _fill_list(self, widget: QListWidget, rows: Sequence[tuple[str, str, str]]) -> None:
        current = widget.currentItem()
        selected = current.data(ID_ROLE) if current is not None else None
        widget.blockSignals(True)
        widget.clear()
        for item_id, title, detail in rows:
            item = QListWidgetItem(elide(shown(title, TITLE_SHOWN_MAX), 120))
            item.setData(ID_ROLE, item_id)
            item.setToolTip(plain_tooltip(f"{title}\n{detail}" if detail else title))
            widget.addItem(item)
            if item_id == selected:
                widget.setCurrentItem(item)
        widget.blockSignals(False)

    def set_alerts(self, entries: Sequence[AlertHistoryEntry], now: datetime | None = None) -> None:
        """Show the alert history, newest first as given, each with its answer's state."""
        now = now or datetime.now(UTC)
        current = self.alert_list.currentItem()
        selected = current.data(0, ID_ROLE) if current is not None else None
        self._alerts = {entry.alert.id: entry for entry in entries}
        self.alert_list.blockSignals(True)
        self.alert_list.clear()
        for entry in entries:
            alert = entry.alert
            retracted = alert.status == "retracted"
            title = (
                RETRACTED_NOTICE if retracted else elide(shown(alert.title, TITLE_SHOWN_MAX), 120)
            )
            item = QTreeWidgetItem(
                [
                    safe_local_time(alert.issued_at, now) or shown(alert.issued_at, 40),
                    alert.severity.capitalize(),
                    title,
                    ack_state_text(entry),
                    incident_status_text(entry),
                ]
            )
            item.setData(0, ID_ROLE, alert.id)
            item.setToolTip(2, plain_tooltip(title if retracted else alert.title))
            item.setToolTip(4, plain_tooltip(incident_status_text(entry)))
            item.setToolTip(3, plain_tooltip(ack_state_text(entry)))
            self.alert_list.addTopLevelItem(item)
            if entry.alert.id == selected:
                self.alert_list.setCurrentItem(item)
        self.alert_list.blockSignals(False)
        # The title column takes the room left and elides; the view never opens scrolled right.
        self.alert_list.horizontalScrollBar().setValue(0)
        self._show_alert_detail(self._alerts.get(selected or ""))

    def show_results(self, hits: Sequence[SearchHit], query: str | None = None) -> None:
        """Show search results; ignored when `query` is no longer what the field says."""
        if query is not None and query != self.search_field.text().strip():
            return
        if not self.search_field.text().strip():
            return
        self.results_model.clear()
        for hit in hits:
            kind = _KIND_NAMES.get(hit.kind, hit.kind)
            accessible = f"{kind}: {hit.title}. {snippet_plain(hit.snippet)}"
            item = QStandardItem(shown(accessible, BODY_SHOWN_MAX))
            item.setData(search_hit_html(kind, hit.title, hit.snippet), HTML_ROLE)
            item.setData(hit.id, ID_ROLE)
            item.setData(hit.kind, KIND_ROLE)
            item.setEditable(False)
            self.results_model.appendRow(item)
        count = len(hits)
        self.no_results.setText(
            "No matches in the library" if not count else f"{count} match{'es' * (count != 1)}"
        )
        if count:
            self.results.setCurrentIndex(self.results_model.index(0, 0))
        self.pages.setCurrentWidget(self._results_page)

    def show_playbook(
        self,
        playbook: Playbook,
        *,
        alert_id: str | None = None,
        alert_title: str | None = None,
        done_steps: Collection[int] = (),
        linked_templates: Sequence[Template] = (),
    ) -> None:
        """Open `playbook` on the Playbooks tab with the checklist progress given."""
        self._select_in(self.playbook_list, playbook.id)
        self.playbook_view.show_playbook(
            playbook,
            alert_id=alert_id,
            alert_title=alert_title,
            done_steps=done_steps,
            linked_templates=linked_templates,
        )
        self.pages.setCurrentWidget(self.tabs)
        self.tabs.setCurrentIndex(0)

    def show_template(self, template: Template) -> None:
        """Open `template` on the Templates tab."""
        self._select_in(self.template_list, template.id)
        self.template_view.show_template(template)
        self.pages.setCurrentWidget(self.tabs)
        self.tabs.setCurrentIndex(1)

    def show_alerts(self) -> None:
        """Bring the Alerts tab forward."""
        self.pages.setCurrentWidget(self.tabs)
        self.tabs.setCurrentIndex(2)
        self.alert_list.setFocus()

    def set_offline(self, cached_at: datetime | None) -> None:
        """Say the library is the cached copy (from `cached_at`; None: never synced)."""
        if cached_at is None:
            text = "Offline: no library has been cached on this computer yet"
        else:
            text = f"Offline: showing the library as cached at {local_when(cached_at, _now())}"
        self.offline_banner.setText(text)
        self.offline_banner.setVisible(True)

    def set_online(self) -> None:
        """Hide the offline banner."""
        self.offline_banner.setVisible(False)

    @Slot(str)
    def set_vpn_block(self, banner: str | None) -> None:
        """Close the playbooks, templates and search with `banner` saying why (None: open them);
        the Alerts tab stays."""
        closed = banner is not None
        self.vpn_banner.setText(banner or "")
        self.vpn_banner.setVisible(closed)
        self.search_field.setEnabled(not closed)
        for index in (0, 1):
            self.tabs.setTabEnabled(index, not closed)
        if closed:
            self.search_field.clear()
            self.pages.setCurrentWidget(self.tabs)
            self.tabs.setCurrentIndex(2)

    @property
    def is_vpn_blocked(self) -> bool:
        """Whether the library is closed until the VPN is on."""
        return not self.search_field.isEnabled()

    def set_status(self, text: str) -> None:
        """The status line, e.g. "Last synced 10:42"."""
        self.status_line.setText(text)

    @Slot(bool)
    def set_locked(self, locked: bool) -> None:
        """Hide everything behind the lock screen (True) or bring it back (False)."""
        self._locked = locked
        self.lock_screen.reset()
        # The status bar can carry an alert's title: it hides with everything else.
        self.statusBar().setVisible(not locked)
        if locked:
            self.statusBar().clearMessage()
            self.central.setCurrentWidget(self.lock_screen)
            self.lock_screen.setFocus()
        else:
            self.central.setCurrentWidget(self._content)
            self.search_field.setFocus()

    @property
    def is_locked(self) -> bool:
        """Whether the lock screen is showing."""
        return self._locked

    # Keyboard

    @Slot()
    def focus_search(self) -> None:
        """Ctrl+F: put the cursor in the search field, text selected."""
        if self._locked:
            return
        self.search_field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_field.selectAll()

    def hideEvent(self, event: QHideEvent) -> None:
        # A search typed just before the window closed has no one to show its results to.
        self._debounce.stop()
        super().hideEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Arrow keys, Enter and Esc between the search field and the results."""
        if event.type() != QEvent.Type.KeyPress or not isinstance(event, QKeyEvent):
            return False
        key = event.key()
        if watched is self.search_field:
            return self._search_field_key(key)
        if watched is self.results:
            if key == Qt.Key.Key_Escape:
                self.clear_search()
                return True
            if key == Qt.Key.Key_Up and self.results.currentIndex().row() <= 0:
                self.search_field.setFocus()
                return True
        return False

    def _search_field_key(self, key: int) -> bool:
        if key == Qt.Key.Key_Escape and self.search_field.text():
            self.clear_search()
            return True
        if key == Qt.Key.Key_Down and self.results_model.rowCount():
            self.pages.setCurrentWidget(self._results_page)
            self.results.setFocus()
            if not self.results.currentIndex().isValid():
                self.results.setCurrentIndex(self.results_model.index(0, 0))
            return True
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.search_field.text().strip():
            if self._debounce.isActive():
                self._debounce.stop()
                self._emit_search()
            elif self.results_model.rowCount():
                index = self.results.currentIndex()
                self._open_result(index if index.isValid() else self.results_model.index(0, 0))
            return True
        return False

    @Slot()
    def clear_search(self) -> None:
        """Esc: empty the search and go back to browsing."""
        self.search_field.clear()
        self.search_field.setFocus()

    # Internal reactions

    @Slot(str)
    def _on_search_text_changed(self, text: str) -> None:
        if text.strip():
            self._debounce.start()
            return
        self._debounce.stop()
        self.results_model.clear()
        self.no_results.clear()
        self.pages.setCurrentWidget(self.tabs)

    @Slot()
    def _emit_search(self) -> None:
        text = self.search_field.text().strip()
        if text:
            self.search_requested.emit(text)

    @Slot(QModelIndex)
    def _open_result(self, index: QModelIndex) -> None:
        if not index.isValid():
            return
        item_id = str(index.data(ID_ROLE))
        if index.data(KIND_ROLE) == "playbook":
            self.playbook_opened.emit(item_id)
        else:
            self.template_opened.emit(item_id)

    @staticmethod
    def _select_in(widget: QListWidget, item_id: str) -> None:
        widget.blockSignals(True)
        for row in range(widget.count()):
            if widget.item(row).data(ID_ROLE) == item_id:
                widget.setCurrentRow(row)
                break
        widget.blockSignals(False)

    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_playbook_selected(self, current: QListWidgetItem | None, _: object) -> None:
        if current is not None:
            self.playbook_opened.emit(str(current.data(ID_ROLE)))

    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_template_selected(self, current: QListWidgetItem | None, _: object) -> None:
        if current is not None:
            self.template_opened.emit(str(current.data(ID_ROLE)))

    @Slot(QTreeWidgetItem, QTreeWidgetItem)
    def _on_alert_selected(self, current: QTreeWidgetItem | None, _: object) -> None:
        alert_id = current.data(0, ID_ROLE) if current is not None else ""
        self._show_alert_detail(self._alerts.get(str(alert_id)))

    @Slot(QTreeWidgetItem, int)
    def _on_alert_activated(self, item: QTreeWidgetItem, _: int) -> None:
        self.alert_opened.emit(str(item.data(0, ID_ROLE)))

    def _show_alert_detail(self, entry: AlertHistoryEntry | None) -> None:
        if entry is None or entry.alert.id != self._original_shown_for:
            # "Show original" is asked for one retracted alert at a time, never remembered.
            self._original_shown_for = None
            self.alert_original_button.blockSignals(True)
            self.alert_original_button.setChecked(False)
            self.alert_original_button.blockSignals(False)
        self._detail_entry = entry
        if entry is None:
            self.alert_title.setText("No alert selected")
            for label in (
                self.alert_meta,
                self.alert_body,
                self.alert_answer,
                self.alert_closed,
                self.alert_next_update,
                self.alert_updates,
            ):
                label.clear()
            for widget in (
                self.alert_drill,
                self.alert_closed,
                self.alert_original_button,
                self.alert_next_update,
                self.alert_updates,
                self.alert_playbook_button,
                self.alert_answer_button,
            ):
                widget.setVisible(False)
            self.alert_title.setAccessibleName("Alert title")
            return
        alert = entry.alert
        now = _now()
        when = safe_local_time(alert.issued_at, now) or shown(alert.issued_at, 40)
        by = f" by {shown(alert.issued_by, 100)}" if alert.issued_by else ""
        title = shown(alert.title, TITLE_SHOWN_MAX)
        drill = f"{DRILL_BANNER}. " if alert.drill else ""
        self.alert_drill.setVisible(alert.drill)
        note = shown(closing_note(alert), UPDATE_TEXT_SHOWN_MAX)
        closed = {
            "retracted": RETRACTED_NOTICE + (f"\n{note}" if note else ""),
            "resolved": "RESOLVED" + (f": {note}" if note else ""),
        }.get(alert.status, "")
        self.alert_closed.setText(closed)
        self.alert_closed.setAccessibleName(closed.replace("\n", ". ") or "Alert closed")
        self.alert_closed.setProperty("status", alert.status)
        self.alert_closed.style().unpolish(self.alert_closed)
        self.alert_closed.style().polish(self.alert_closed)
        self.alert_closed.setVisible(bool(closed))
        retracted = alert.status == "retracted"
        self.alert_original_button.setVisible(retracted)
        # A retraction replaces the content; the original stays one deliberate toggle away.
        content = not retracted or self.alert_original_button.isChecked()
        self.alert_title.setText(title if content else RETRACTED_NOTICE)
        self.alert_title.setAccessibleName(
            f"{drill}{alert.severity.capitalize()} alert: {title}"
            if content
            else f"{RETRACTED_NOTICE}. Retracted {alert.severity} alert"
        )
        self.alert_meta.setText(f"{alert.severity.capitalize()} · issued {when}{by}")
        self.alert_meta.setVisible(content)
        next_update = next_update_text(alert, now)
        self.alert_next_update.setText(next_update)
        self.alert_next_update.setVisible(bool(next_update))
        changes = updates_text(alert, now)
        self.alert_updates.setText(changes)
        self.alert_updates.setVisible(content and bool(changes))
        self.alert_body.setText(
            ("Original alert: " if alert.updates else "") + shown(alert.body, BODY_SHOWN_MAX)
        )
        self.alert_body.setVisible(content)
        self.alert_answer_button.setVisible(not retracted)
        self.alert_answer.setText(ack_state_text(entry))
        self.alert_answer.setProperty("state", entry.ack_state)
        self.alert_playbook_button.setVisible(content and alert.playbook_id is not None)

    @Slot(bool)
    def _on_original_toggled(self, checked: bool) -> None:
        entry = self._detail_entry
        self._original_shown_for = entry.alert.id if checked and entry is not None else None
        self.alert_original_button.setText("Hide &original" if checked else "Show &original")
        self._show_alert_detail(entry)

    @Slot()
    def _answer_selected_alert(self) -> None:
        current = self.alert_list.currentItem()
        if current is not None:
            self.alert_opened.emit(str(current.data(0, ID_ROLE)))

    @Slot()
    def _open_alert_playbook(self) -> None:
        current = self.alert_list.currentItem()
        entry = self._alerts.get(str(current.data(0, ID_ROLE))) if current else None
        if entry is not None and entry.alert.playbook_id:
            self.alert_playbook_opened.emit(entry.alert.id, entry.alert.playbook_id)

    @Slot(str)
    def _on_phone_copied(self, name: str) -> None:
        self.statusBar().showMessage(f"Copied the number of {name}", 5000)

    @Slot(str)
    def _on_template_copied(self, template_id: str) -> None:
        title = self.template_view.title.text()
        self.statusBar().showMessage(f"Copied: {title}", 5000)
        self.template_copied.emit(template_id)


def _now() -> datetime:
    return datetime.now(UTC)
