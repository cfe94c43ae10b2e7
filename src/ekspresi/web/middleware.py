"""Pure ASGI middleware: Host and cross-origin checks, uploads (size limit, read deadline,
bounded concurrency), one log line per request, security headers, and a last-resort error
guard.

They are plain ASGI (not ``BaseHTTPMiddleware``) so they see WebSocket connections too and
never buffer a response body. :func:`install` puts them on an app in the one order that
works: every refusal is logged and carries the security headers.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlparse

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ekspresi.web.settings import WebSettings, is_ip_literal

log = logging.getLogger("ekspresi.web")

#: Room for the multipart envelope (boundaries, part headers) around an upload at the limit.
MULTIPART_SLACK = 64 * 1024
#: Seconds a client told "busy" (503) should wait before trying again.
RETRY_AFTER_S = 2
#: Methods that change state or carry an upload: only these are checked for their origin
#: and go through the upload gate.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: scope key through which inner layers give the request log a note (e.g. a disconnect).
LOG_NOTE = "ekspresi.log_note"

ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


def too_large_message(limit_bytes: int) -> str:
    return (f"upload is larger than the server's limit of {limit_bytes / 1e6:g} MB "
            "(start the server with --max-upload-mb to change it)")


def _json(status: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


# -- Host header (DNS rebinding) ---------------------------------------------------------------

_HOST = re.compile(r"\[(?P<ipv6>[0-9A-Fa-f:.]+)\](?::\d*)?|(?P<name>[^:\[\]]*)(?::\d*)?")


def host_name(header: str) -> str | None:
    """The host part of a ``Host`` header, lower case, IPv6 without brackets; None when it
    is malformed."""
    m = _HOST.fullmatch(header.strip())
    if m is None:
        return None
    return (m["ipv6"] or m["name"] or "").lower().rstrip(".") or None


class HostCheckMiddleware:
    """Answer only to the host names the server was started for. A web page on
    ``evil.example`` whose DNS answer switches to 127.0.0.1 (DNS rebinding) is then
    same-origin with this server in the browser's eyes, but its requests still say
    ``Host: evil.example``: they get a 400 (HTTP) or a refused handshake (WebSocket)."""

    def __init__(self, app: ASGIApp, names: frozenset[str] | None, accept_ip: bool = False):
        self.app = app
        self.names = names
        self.accept_ip = accept_ip

    def allowed(self, header: str | None) -> bool:
        if self.names is None or header is None:  # HTTP/1.0 without Host: not a browser
            return True
        name = host_name(header)
        if name is None:
            return False
        return name in self.names or (self.accept_ip and is_ip_literal(name))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("host")
        if self.allowed(header):
            await self.app(scope, receive, send)
            return
        scope[LOG_NOTE] = "refused Host header"
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        shown = (header or "")[:100]
        await _json(400, f"this server does not answer to the host name in 'Host: {shown}' "
                         "(start it with --allowed-host NAME to add a name)",
                    Connection="close")(scope, receive, send)


# -- cross-origin uploads ----------------------------------------------------------------------

def same_origin(origin: str, host: str | None) -> bool:
    return bool(host) and urlparse(origin).netloc.lower() == (host or "").lower()


class CrossOriginGuard:
    """Refuse state-changing requests (uploads) sent by other web sites' pages. A form or
    ``fetch`` on any page can POST multipart to 127.0.0.1 without CORS (a "simple"
    request); browsers mark it with ``Sec-Fetch-Site`` and ``Origin``, which we check.
    Clients that are not browsers (curl, scripts) send neither and are served.
    ``cors_origins`` (``--cors-origin``) are allowed."""

    def __init__(self, app: ASGIApp, cors_origins: tuple[str, ...] = ()):
        self.app = app
        self.cors_origins = frozenset(cors_origins)

    def allowed(self, headers: Headers) -> bool:
        origin = headers.get("origin")
        if origin is not None and origin in self.cors_origins:
            return True
        site = headers.get("sec-fetch-site")
        if site is not None and site.lower() not in ("same-origin", "none"):
            return False
        return origin is None or same_origin(origin, headers.get("host"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS \
                or self.allowed(Headers(scope=scope)):
            await self.app(scope, receive, send)
            return
        scope[LOG_NOTE] = "cross-origin request refused"
        await _json(403, "cross-origin request refused: this server takes uploads from its "
                         "own pages only (start it with --cors-origin ORIGIN to allow a "
                         "site)")(scope, receive, send)


# -- uploads: size, deadline, concurrency ------------------------------------------------------

class Busy(Exception):
    """No analysis slot free and the queue is full (or the wait timed out)."""


class UploadGate:
    """At most ``max_active`` uploads are decoded and analysed at once (each may hold a
    decoded image of a few hundred MB), at most ``max_queue`` more wait for a slot, each at
    most ``timeout`` seconds; anything beyond is told to come back later (503).

    Thread-safe and not bound to one event loop (the test client runs each request on its
    own loop), hence plain counters and futures woken through their own loop."""

    def __init__(self, max_active: int, max_queue: int, timeout: float):
        if max_active < 1 or max_queue < 0:
            raise ValueError("max_active must be >= 1 and max_queue >= 0")
        self.max_active = max_active
        self.max_queue = max_queue
        self.timeout = timeout
        self.admitted = 0   # holding a ticket: reading their body, waiting or running
        self.active = 0     # holding a slot
        self._waiters: deque[_Waiter] = deque()
        self._lock = threading.Lock()

    def admit(self) -> bool:
        """Take a ticket (before the body is read, so waiting uploads are bounded too)."""
        with self._lock:
            if self.admitted >= self.max_active + self.max_queue:
                return False
            self.admitted += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.admitted -= 1

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.active < self.max_active and not self._waiters:
                self.active += 1
                return
            waiter = _Waiter(loop.create_future())
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), self.timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            with self._lock:
                if not waiter.granted:
                    self._waiters.remove(waiter)
            if waiter.granted:  # the slot arrived as we gave up: hand it on
                self.release()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise Busy(f"the server is busy (waited {self.timeout:g} s for a free slot)"
                       ) from None

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                # the slot passes straight to the first waiter: ``active`` stays the same
                waiter = self._waiters.popleft()
                waiter.granted = True
                waiter.future.get_loop().call_soon_threadsafe(_grant, waiter.future)
            else:
                self.active -= 1

    @asynccontextmanager
    async def slot(self):
        """Ticket and slot for one unit of work (a WebSocket frame); raises :class:`Busy`."""
        if not self.admit():
            raise Busy("the server is busy (too many images queued)")
        try:
            await self.acquire()
            try:
                yield
            finally:
                self.release()
        finally:
            self.leave()


class _Waiter:
    __slots__ = ("future", "granted")

    def __init__(self, future: asyncio.Future):
        self.future = future
        self.granted = False


def _grant(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


def busy_response(detail: str) -> JSONResponse:
    return _json(503, f"{detail}; try again shortly", **{"Retry-After": str(RETRY_AFTER_S)})


class UploadMiddleware:
    """Every request with a body (POST/PUT/...) is read here first, whole, before the app
    sees it:

    - above ``limit_bytes`` (+ multipart slack) it is refused with 413, at once when the
      ``Content-Length`` says so, else by counting streamed (chunked) bytes;
    - a body that does not arrive within ``body_timeout`` seconds (slow-loris uploads) gets
      408 and the connection is closed;
    - a client that disconnects mid-upload is logged as such (one line, no traceback);
    - then it waits for an analysis slot of ``gate`` (503 + ``Retry-After`` when the
      server is saturated), so decoding and inference run a bounded number at a time.
    """

    def __init__(self, app: ASGIApp, limit_bytes: int, body_timeout: float = 60.0,
                 gate: UploadGate | None = None):
        self.app = app
        self.limit_bytes = limit_bytes
        self.body_limit = limit_bytes + MULTIPART_SLACK
        self.body_timeout = body_timeout
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.body_limit:
            await _json(413, too_large_message(self.limit_bytes),
                        Connection="close")(scope, receive, send)
            return
        if self.gate is not None and not self.gate.admit():
            scope[LOG_NOTE] = "busy: queue full"
            await busy_response("the server is busy (too many images queued)")(
                scope, receive, send)
            return
        try:
            await self._handle(scope, receive, send)
        finally:
            if self.gate is not None:
                self.gate.leave()

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await self._read_body(scope, receive, send)
        if body is None:
            return
        if self.gate is not None:
            try:
                await self.gate.acquire()
            except Busy as exc:
                scope[LOG_NOTE] = "busy: queue timeout"
                await busy_response(str(exc))(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        try:
            await self.app(scope, replay, send)
        finally:
            if self.gate is not None:
                self.gate.release()

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None once the answer (or the lack of one) is settled."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                scope[LOG_NOTE] = "upload too slow"
                await _json(408, f"the upload did not arrive within {self.body_timeout:g} s",
                            Connection="close")(scope, receive, send)
                return None
            if message["type"] == "http.disconnect":
                scope[LOG_NOTE] = "client disconnected during the upload"
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.body_limit:
                await _json(413, too_large_message(self.limit_bytes),
                            Connection="close")(scope, receive, send)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


# -- last-resort error guard -------------------------------------------------------------------

class ErrorGuardMiddleware:
    """Unhandled exceptions end here instead of in Starlette's outermost error middleware,
    so the 500 goes out through :class:`SecurityHeadersMiddleware` like every other answer
    and is logged once (Starlette would also re-raise it to uvicorn for a second
    traceback). ``handler`` is the app's own 500 page/JSON. A client that disconnected is
    one log line, not an error; a failing WebSocket is closed with 1011, not dropped."""

    def __init__(self, app: ASGIApp, handler: ErrorHandler):
        self.app = app
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state = {"started": False, "closed": False}

        async def tracking_send(message: Message) -> None:
            kind = message["type"]
            if kind in ("http.response.start", "websocket.accept"):
                state["started"] = True
            elif kind == "websocket.close":
                state["closed"] = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            scope[LOG_NOTE] = "client disconnected"
        except Exception as exc:
            if scope["type"] == "websocket":
                log.error("unhandled error on WebSocket %s", scope.get("path"),
                          exc_info=(type(exc), exc, exc.__traceback__))
                if not state["closed"]:
                    try:
                        await send({"type": "websocket.close", "code": 1011})
                    except Exception:  # noqa: BLE001 - the peer is already gone
                        pass
                return
            if state["started"]:
                raise
            response = await self.handler(Request(scope, receive), exc)
            await response(scope, receive, send)


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
            note = scope.get(LOG_NOTE)
            # 499: the client went away before an answer (nginx's convention)
            code = status[0] if status else (1000 if method == "WS" else 499 if note else 0)
            log.info("%s %s %d %.1fms%s", method, _log_path(scope), code, ms,
                     f" ({note})" if note else "")


def _log_path(scope: Scope) -> str:
    """The path as the client sent it (still percent-encoded), so a ``%0a`` in a URL cannot
    forge a second log line; control characters are escaped if a server passes them raw."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else scope.get("path", "")
    path = path.split("?", 1)[0]
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in path)


#: Paths whose answers are never cached (``Cache-Control: no-store``).
API_PREFIX = "/api/"


class SecurityHeadersMiddleware:
    """Headers that cost nothing and close common holes: no MIME sniffing, no framing by
    other sites, no referrer leaks, a Content-Security-Policy on HTML pages (except
    ``csp_exempt`` paths such as Swagger UI, whose page has an inline script), and
    ``Cache-Control: no-store`` on every ``/api/`` answer (they carry face previews, clips
    and results that no browser or proxy cache should keep)."""

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
        api = str(scope.get("path", "")).startswith(API_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower(): v for k, v in headers}
                headers += [(k, v) for k, v in self.HEADERS if k not in names]
                if wants_csp and names.get(b"content-type", b"").lower().startswith(b"text/html") \
                        and b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", self.page_csp))
                if api:   # replaces any other caching policy a route set
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app, settings: WebSettings, *, page_csp: str, csp_exempt: tuple[str, ...],
            error_handler: ErrorHandler) -> UploadGate:
    """Add the middleware stack to ``app`` (a Starlette/FastAPI app) and return the upload
    gate, which the WebSocket shares for its frames (``app.state.upload_gate``).

    Outermost first: request log (sees every refusal), security headers (on every answer,
    errors included), error guard, Host check, cross-origin guard, CORS (when asked), then
    the upload reader/gate next to the routes."""
    from fastapi.middleware.cors import CORSMiddleware

    gate = UploadGate(settings.max_active, settings.max_queue, settings.queue_timeout)
    app.state.upload_gate = gate
    # add_middleware puts each new one outside the previous ones: innermost first here.
    app.add_middleware(UploadMiddleware, limit_bytes=settings.max_upload_bytes,
                       body_timeout=settings.body_timeout, gate=gate)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["*"])
    app.add_middleware(CrossOriginGuard, cors_origins=settings.cors_origins)
    app.add_middleware(HostCheckMiddleware, names=settings.host_names(),
                       accept_ip=settings.accepts_ip_hosts)
    app.add_middleware(ErrorGuardMiddleware, handler=error_handler)
    app.add_middleware(SecurityHeadersMiddleware, page_csp=page_csp, csp_exempt=csp_exempt)
    app.add_middleware(RequestLogMiddleware)
    return gate
