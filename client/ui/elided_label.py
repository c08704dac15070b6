"""A plain-text label that wraps anywhere it must and ends its last line with "…", the whole
text on hover: a long title without spaces is never clipped mid-letter."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent, QTextLayout, QTextOption
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from client.ui.text import plain_tooltip


class ElidedLabel(QLabel):
    """Shows up to `max_lines` lines of its text; what does not fit ends in an ellipsis."""

    def __init__(self, max_lines: int = 2, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self._elided = False
        self._max_lines = max_lines
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(False)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def full_text(self) -> str:
        """The whole text, as set."""
        return self._full

    def set_full_text(self, text: str) -> None:
        """Set the text; it is laid out again for the label's width."""
        self._full = text
        self._relayout()

    def is_elided(self) -> bool:
        """Whether part of the text is hidden behind the ellipsis."""
        return self._elided

    def minimumSizeHint(self) -> QSize:
        """Any width; one line high."""
        return QSize(10, self.fontMetrics().lineSpacing())

    def sizeHint(self) -> QSize:
        """As high as the lines now shown."""
        lines = max(1, self.text().count("\n") + 1)
        return QSize(200, lines * self.fontMetrics().lineSpacing() + 4)

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Lay the text out again for the new width."""
        super().resizeEvent(event)
        self._relayout()

    def _relayout(self) -> None:
        width = max(self.contentsRect().width(), 40)
        metrics = self.fontMetrics()
        text = " ".join(self._full.split())
        layout = QTextLayout(text, self.font())
        option = QTextOption()
        option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        layout.setTextOption(option)
        lines: list[str] = []
        self._elided = False
        layout.beginLayout()
        while len(lines) < self._max_lines:
            line = layout.createLine()
            if not line.isValid():
                break
            line.setLineWidth(width)
            start, length = line.textStart(), line.textLength()
            if len(lines) == self._max_lines - 1:
                rest = text[start:]
                last = metrics.elidedText(rest, Qt.TextElideMode.ElideRight, width)
                self._elided = last != rest
                lines.append(last)
                break
            lines.append(text[start : start + length].rstrip())
        layout.endLayout()
        shown = "\n".join(lines)
        if shown != self.text():
            self.setText(shown)
            self.updateGeometry()
        self.setToolTip(plain_tooltip(self._full) if self.is_elided() else "")
