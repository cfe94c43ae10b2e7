"""Shared pieces of the web tests: face photos and a live uvicorn server in a thread (the
tiny bundle and the shared engine are the ``tiny_bundle`` and ``web_engine`` fixtures of
conftest.py). No tests here; imported by test_web_*.py and test_browser_*.py."""

from __future__ import annotations

import io
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def face_photo_path() -> Path | None:
    """A real photo with one frontal face, from the committed fixtures when present."""
    for pattern in ("photos/*.jpg", "photos/*.png", "web/*.jpg", "web/*.png"):
        found = sorted(FIXTURES.glob(pattern))
        if found:
            return found[0]
    return None


def face_jpeg() -> bytes:
    path = face_photo_path()
    if path is None:   # committed with the tests: missing means a broken checkout
        pytest.fail("no face photo fixture under tests/fixtures/photos")
    return path.read_bytes()


def png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving ``app`` on a free loopback port in a daemon thread, configured as
    `ekspresi serve` configures it (timeouts, connection limit)."""

    def __init__(self, app, header_timeout: float = 10.0):
        import uvicorn

        from ekspresi.web.serving import uvicorn_config

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn_config(app, host="127.0.0.1", port=self.port,
                                ws_max_size=16 * 1024 * 1024, header_timeout=header_timeout)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
