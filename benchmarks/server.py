"""Start a fresh `ekspresi serve` on a free loopback port for a benchmark (shared by the
scripts that measure a running server)."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(extra: list[str], timeout_s: float = 60) -> tuple[subprocess.Popen, str]:
    """``ekspresi serve --host 127.0.0.1 --port FREE *extra``, once /healthz answers 200."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "ekspresi", "serve", "--host", "127.0.0.1",
           "--port", str(port), *extra]
    # The server logs one line per request: into a file, never an unread pipe (a full pipe
    # blocked the server after ~1,200 requests and hung the 8 x 200 load run).
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise SystemExit(f"server exited: {log.read()[-4000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not become healthy within {timeout_s:g} s")
