"""What `ekspresi serve` was asked for, in one object the app factory receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ekspresi.imaging import MAX_PIXELS


@dataclass(frozen=True)
class WebSettings:
    """``model=None`` means the bundled default model. ``cors_origins`` empty = CORS off
    (same-origin only), which is what a local demo server should be."""

    model: Path | None = None
    detector: str = "default"
    runs_dir: Path | None = None
    max_upload_mb: float = 10.0
    max_pixels: int = MAX_PIXELS
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    threads: int | None = None
    #: Longest side of the JPEG preview the image page draws on.
    preview_side: int = 1280

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)
