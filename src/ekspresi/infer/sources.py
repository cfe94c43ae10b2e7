"""The inputs of a batch of predictions: files and folders expanded in a stable order.

Shared by the local ``ekspresi predict`` and the Ray engine (:mod:`ekspresi.distributed`),
so both see the same sources in the same order.
"""

from __future__ import annotations

from pathlib import Path

#: What a folder of inputs is searched for besides videos (decoding safety: imaging.py).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp",
                              ".gif", ".pgm", ".ppm", ".pbm", ".jfif"})


def expand_paths(paths: list[str], recursive: bool) -> list[tuple[Path, str | None]]:
    """Inputs in a stable order, with an error message for paths that do not exist or
    folders without any image/video (those are failures, not silently skipped)."""
    from ekspresi.infer.video import VIDEO_EXTENSIONS

    known = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
    out: list[tuple[Path, str | None]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files = sorted(f for f in (p.rglob("*") if recursive else p.iterdir())
                           if f.is_file() and f.suffix.lower() in known
                           and not f.name.startswith("."))
            if not files:
                out.append((p, "folder has no images or videos"
                               + ("" if recursive else " (use --recursive for sub-folders)")))
            out.extend((f, None) for f in files)
        elif p.is_file():
            out.append((p, None))
        else:
            out.append((p, "no such file or folder"))
    return out
