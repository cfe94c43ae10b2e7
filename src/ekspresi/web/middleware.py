"""Pure ASGI middleware: request body limit, one log line per request, security headers.

They are plain ASGI (not ``BaseHTTPMiddleware``) so they see WebSocket connections too and
never buffer a response body.
"""

from __future__ import annotations

import logging
import time

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("ekspresi.web")

#: Room for the multipart envelope (boundaries, part headers) around an upload at the limit.
MULTIPART_SLACK = 64 * 1024


def too_large_message(limit_bytes: int) -> str:
    return (f"upload is larger than the server's limit of {limit_bytes / 1e6:g} MB "
            "(start the server with --max-upload-mb to change it)")


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once the streamed body passes the limit. It is an
    ``HTTPException`` so that FastAPI's body parsing re-raises it instead of turning it
    into a generic 400, and the exception middleware answers 413 with our message."""

    def __init__(self, limit_bytes: int):
        super().__init__(status_code=413, detail=too_large_message(limit_bytes))


class BodyLimitMiddleware:
    """Refuse request bodies above ``limit_bytes`` (+ multipart slack): at once when the
    ``Content-Length`` says so, and by counting streamed bytes when it is absent or lies
    (chunked uploads)."""

    def __init__(self, app: ASGIApp, limit_bytes: int):
        self.app = app
        self.limit_bytes = limit_bytes
        self.body_limit = limit_bytes + MULTIPART_SLACK

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.body_limit
            except ValueError:
                too_big = False
            if too_big:
                response = JSONResponse({"detail": too_large_message(self.limit_bytes)},
                                        status_code=413, headers={"Connection": "close"})
                await response(scope, receive, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.body_limit:
                    raise BodyTooLarge(self.limit_bytes)
            return message

        await self.app(scope, limited_receive, send)


class RequestLogMiddleware:
    """One line per request (method, path, status, milliseconds). WebSocket sessions are
    logged when they close, with their duration."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status: list[int] = []

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            elif message["type"] == "websocket.close" and not status:
                status.append(int(message.get("code", 1000)))
            await send(message)

        method = scope.get("method", "WS")
        try:
            await self.app(scope, receive, logged_send)
        except Exception:
            status.append(500)
            raise
        finally:
            ms = (time.perf_counter() - start) * 1000.0
            code = status[0] if status else (1000 if method == "WS" else 0)
            log.info("%s %s %d %.1fms", method, _log_path(scope), code, ms)


def _log_path(scope: Scope) -> str:
    """The path as the client sent it (still percent-encoded), so a ``%0a`` in a URL cannot
    forge a second log line; control characters are escaped if a server passes them raw."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else scope.get("path", "")
    path = path.split("?", 1)[0]
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in path)


class SecurityHeadersMiddleware:
    """Headers that cost nothing and close common holes: no MIME sniffing, no framing by
    other sites, no referrer leaks, and a Content-Security-Policy on HTML pages (except
    ``csp_exempt`` paths such as Swagger UI, whose page has an inline script)."""

    HEADERS = [(b"x-content-type-options", b"nosniff"),
               (b"x-frame-options", b"DENY"),
               (b"referrer-policy", b"no-referrer")]

    def __init__(self, app: ASGIApp, page_csp: str = "", csp_exempt: tuple[str, ...] = ()):
        self.app = app
        self.page_csp = page_csp.encode("latin-1")
        self.csp_exempt = csp_exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wants_csp = bool(self.page_csp) and scope.get("path") not in self.csp_exempt

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower(): v for k, v in headers}
                headers += [(k, v) for k, v in self.HEADERS if k not in names]
                if wants_csp and names.get(b"content-type", b"").startswith(b"text/html") \
                        and b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", self.page_csp))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
