"""uvicorn, configured against slow and idle clients.

uvicorn's ``timeout_keep_alive`` only covers the pause *between* requests, and any byte
received resets it, so a client trickling its request headers one byte per second (or
opening a connection and sending nothing) holds a connection forever. The protocol class
below adds the missing deadline: a connection must deliver a request's complete headers
within ``header_timeout`` seconds of connecting (or of the previous response), else it is
closed. Request *bodies* have their own deadline in the app
(:class:`ekspresi.web.middleware.UploadMiddleware`), and ``limit_concurrency`` bounds the
connections and tasks uvicorn serves at once (503 beyond).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn

log = logging.getLogger("ekspresi.web")

#: Seconds a client has to send a request's headers.
HEADER_TIMEOUT_S = 10.0
#: Seconds an idle keep-alive connection stays open (uvicorn's default, made explicit).
KEEP_ALIVE_S = 5
#: Connections + requests served at once; beyond, uvicorn answers 503.
MAX_CONNECTIONS = 64
#: Largest request head (request line + headers) h11 buffers, in bytes.
MAX_HEADER_BYTES = 16 * 1024
#: Bytes a connection may send while its request head is incomplete (httptools has no head
#: size limit of its own). Generous: the first read of an upload also holds body bytes.
MAX_HEAD_READ_BYTES = 1024 * 1024


def _base_protocol() -> type[asyncio.Protocol]:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    except ImportError:  # uvicorn without the [standard] extra
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol


_Base: Any = _base_protocol()


class HeaderDeadlineProtocol(_Base):
    """uvicorn's HTTP protocol (httptools, else h11) with a request-header deadline."""

    header_timeout: float = HEADER_TIMEOUT_S

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self._header_deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        super().connection_made(transport)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        if self._header_deadline is not None:  # still waiting for a complete request head
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_READ_BYTES:
                self._disarm_header_deadline()
                log.info("closed a connection whose request head passed %d bytes",
                         MAX_HEAD_READ_BYTES)
                self.send_400_response("Request header too large.")
                return
        super().data_received(data)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._head_bytes = 0
        self._header_deadline = self.loop.call_later(self.header_timeout,
                                                     self._header_deadline_passed)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_deadline_passed(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            log.info("closed a connection that sent no complete request headers in %g s",
                     self.header_timeout)
            self.transport.close()

    # httptools: called once the request line and headers are parsed (WebSocket upgrades
    # included, so an open socket is never cut).
    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    # h11: the request head arrives as one event inside handle_events.
    def handle_events(self) -> None:
        import h11

        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()  # the next request on this connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)


def protocol_class(header_timeout: float) -> type[asyncio.Protocol]:
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,),
                {"header_timeout": float(header_timeout)})


def uvicorn_config(app, *, host: str, port: int, ws_max_size: int,
                   header_timeout: float = HEADER_TIMEOUT_S,
                   max_connections: int = MAX_CONNECTIONS) -> uvicorn.Config:
    """The one uvicorn configuration of `ekspresi serve` (and of tests that need the
    real server's timeouts)."""
    return uvicorn.Config(app, host=host, port=port, access_log=False, log_level="warning",
                          http=protocol_class(header_timeout),
                          timeout_keep_alive=KEEP_ALIVE_S,
                          limit_concurrency=max_connections,
                          h11_max_incomplete_event_size=MAX_HEADER_BYTES,
                          ws_max_size=ws_max_size)
