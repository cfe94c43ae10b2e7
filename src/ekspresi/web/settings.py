"""What `ekspresi serve` was asked for, in one object the app factory receives."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

#: The web server's pixel limit, below the CLI's :data:`ekspresi.imaging.MAX_PIXELS` (50 M):
#: a server decodes what strangers send, several at once. A 40-megapixel image peaks at a
#: few hundred MB while it is analysed (benchmarks/upload_memory.py).
WEB_MAX_PIXELS = 40_000_000
#: The web server's limit on an image's longer side. Face detection letterboxes the image
#: into a square of that side (BlazeFace), so a 96x65540 strip (6 M pixels) would need a
#: 12 GB square: the side, not only the pixel count, bounds memory and time.
WEB_MAX_SIDE = 8192
#: Host names a server bound to this machine always answers to.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Addresses that mean "every interface" when bound.
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class WebSettings:
    """``model=None`` means the bundled default model. ``cors_origins`` empty = CORS off
    (same-origin only), which is what a local demo server should be.

    ``host`` is the address the server is bound to; with it set, requests whose ``Host``
    header names anything but the loopback names, ``host`` itself and ``allowed_hosts``
    are refused (DNS rebinding). ``None`` (an app built for tests or embedded without a
    known address) checks no Host header; `ekspresi serve` always sets it."""

    model: Path | None = None
    detector: str = "default"
    runs_dir: Path | None = None
    max_upload_mb: float = 10.0
    max_pixels: int = WEB_MAX_PIXELS
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    threads: int | None = None
    #: Longest side of the JPEG preview the image page draws on.
    preview_side: int = 1280
    host: str | None = None
    allowed_hosts: tuple[str, ...] = field(default_factory=tuple)
    #: Uploads decoded and analysed at the same time; each may hold a few hundred MB.
    max_active: int = 2
    #: Uploads that may wait for a slot; beyond that the server answers 503 + Retry-After.
    max_queue: int = 16
    #: Seconds an upload may wait for a slot before it gets a 503.
    queue_timeout: float = 30.0
    #: Seconds a client has to send a whole request body (slow uploads get a 408).
    body_timeout: float = 60.0
    #: Faces of one image the step-by-step view computes occlusion saliency for.
    trace_saliency_faces: int = 4
    #: WebSockets of the real-time page open at once; beyond, new ones are closed (1013).
    #: Well below the connections uvicorn serves (``serving.MAX_CONNECTIONS``, 64), so
    #: streams can never hold every connection and lock HTTP out.
    max_streams: int = 32
    #: Seconds a WebSocket may stay without sending a frame before it is closed.
    stream_idle_timeout: float = 60.0

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)

    def host_names(self) -> frozenset[str] | None:
        """Host names (lower case, IPv6 without brackets) the server answers to, or None
        when the Host header is not checked (no bound host, or ``*`` allowed)."""
        if self.host is None or "*" in self.allowed_hosts:
            return None
        names = {*LOOPBACK_HOSTS, *(h.strip("[]").lower() for h in self.allowed_hosts)}
        if self.host not in WILDCARD_HOSTS:
            names.add(self.host.strip("[]").lower())
        return frozenset(names)

    @property
    def accepts_ip_hosts(self) -> bool:
        """Bound to every interface: any IP address may be in the Host header (DNS
        rebinding needs a host *name*, so IP literals are safe to accept)."""
        return self.host in WILDCARD_HOSTS


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def valid_host_name(name: str) -> bool:
    """A bare host name or address for ``--allowed-host`` (``*`` = any): no scheme, port,
    path or user part."""
    if name == "*":
        return True
    bare = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    if ":" in bare:
        return is_ip_literal(bare)
    return bool(bare) and not any(c in bare for c in "/@ \\[]?#")
