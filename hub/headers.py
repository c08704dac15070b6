"""Security headers on every answer of the hub, whichever route or error produced it."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The hub serves JSON and an event stream only: nothing may be framed, sniffed, embedded by
# another origin, or loaded as a page's script or style.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# The dispatcher console's pages: scripts, styles, fonts and images from the hub itself only, no
# inline script or style (htmx and Chart.js are served from /console/static), data: images for
# the authenticator QR code shown once.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# Answers carry tokens, alerts and who acknowledged them: no cache on the way may keep one.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
HSTS = "max-age=63072000; includeSubDomains"


class SecurityHeaders:
    """ASGI middleware: the security headers (the console's own CSP on /console), no-store unless
    a route chose its own caching, and HSTS when the hub is reached over HTTPS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        path = scope.get("path", "")
        console = path == "/console" or path.startswith("/console/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if console:
                    headers["Content-Security-Policy"] = CONSOLE_CSP
                if "cache-control" not in headers:
                    headers.update(NO_STORE)
                if https:
                    headers["Strict-Transport-Security"] = HSTS
            await send(message)

        await self.app(scope, receive, send_with_headers)
