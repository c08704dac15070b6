"""An incremental parser for Server-Sent Events (the WHATWG "event stream interpretation").

Why not a library: the maintained candidates that work with requests were each read before
writing this, and none fits.
- sseclient-py (1.9): drops comment lines, so a heartbeat cannot be seen; at the end of the stream
  it yields the unfinished last event, which the spec says must be discarded; it keeps no last
  event ID across events and does not ignore ids containing NUL; no BOM handling.
- requests-sse (0.5): owns the connection (its own request, its own reconnect loop with
  `time.sleep` that doubles without a cap or jitter and cannot be woken when the network comes
  back or interrupted by stop), so it would bypass HubClient's token refresh, CA bundle and typed
  errors; it also drops comments and strips every leading space of a value, not only one.
- httpx-sse: built on httpx, a second HTTP stack next to the requests session the rest of the
  client uses (its own TLS and CA settings, its own error types).
The stream needs a parser that is fed whatever bytes arrived, that surfaces comments (the hub's
heartbeat), and that leaves reading, timeouts and reconnecting to AlertStream. That is about a
hundred lines with no dependency, so it lives here, tested against the spec's cases.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass

_BOM = "\ufeff"


@dataclass(frozen=True)
class SseEvent:
    """One dispatched event: its type ("message" when none was given), data and last event ID."""

    event: str
    data: str
    id: str


class SseParser:
    """Turns chunks of an event stream into events; chunks may split anywhere, even inside a CRLF.

    `on_comment` is called with the text of every comment line (without the colon), so a caller
    can treat a heartbeat as a sign of life. `retry` holds the last valid reconnection time the
    server asked for, in milliseconds.
    """

    def __init__(self, on_comment: Callable[[str], None] | None = None) -> None:
        self._on_comment = on_comment
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._at_start = True
        self._skip_lf = False
        self._data: list[str] = []
        self._event_type = ""
        self._last_id = ""
        self.retry: int | None = None

    @property
    def last_event_id(self) -> str:
        """The last event ID the stream set ("" until one is set)."""
        return self._last_id

    def feed_bytes(self, chunk: bytes) -> list[SseEvent]:
        """Decode a chunk of the raw stream (UTF-8; a split character waits for its rest)."""
        return self.feed(self._decoder.decode(chunk))

    def feed(self, chunk: str) -> list[SseEvent]:
        """Parse a chunk of text; returns the events completed by it, in order."""
        if self._at_start and chunk:
            self._at_start = False
            if chunk.startswith(_BOM):
                chunk = chunk[1:]
        if self._skip_lf and chunk:
            # The previous chunk ended in CR: a LF right after it belongs to the same line end.
            self._skip_lf = False
            if chunk.startswith("\n"):
                chunk = chunk[1:]
        text = self._pending + chunk
        events: list[SseEvent] = []
        start = 0
        length = len(text)
        while start < length:
            cr = text.find("\r", start)
            lf = text.find("\n", start)
            if cr == -1 and lf == -1:
                break
            if cr == -1 or (lf != -1 and lf < cr):
                line, start = text[start:lf], lf + 1
            elif cr + 1 < length:
                line = text[start:cr]
                start = cr + 2 if text[cr + 1] == "\n" else cr + 1
            else:
                line, start = text[start:cr], cr + 1
                self._skip_lf = True
            event = self._process_line(line)
            if event is not None:
                events.append(event)
        self._pending = text[start:]
        return events

    def _process_line(self, line: str) -> SseEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            if self._on_comment is not None:
                self._on_comment(line[1:].removeprefix(" "))
            return None
        field, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if field == "event":
            self._event_type = value
        elif field == "data":
            self._data.append(value)
        elif field == "id" and "\x00" not in value:
            self._last_id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        data, event_type = self._data, self._event_type
        self._data, self._event_type = [], ""
        if not data:
            return None
        return SseEvent(event=event_type or "message", data="\n".join(data), id=self._last_id)
