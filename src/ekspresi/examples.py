"""Example pictures and a clip shipped with the package, to try ekspresi on first run.

    from ekspresi import Recognizer, examples
    Recognizer().analyze(examples.path("group"))

All are public domain or made by us from public-domain photos (sources and licences:
``assets/examples/SOURCES.md``; made by ``scripts/make_examples.py``); none comes from a
research-only dataset. The web app's "Try an example" buttons serve the same files.
"""

from __future__ import annotations

from pathlib import Path

from ekspresi.errors import ConfigError

FOLDER = Path(__file__).resolve().parent / "assets" / "examples"
#: name -> (file, what it shows)
EXAMPLES: dict[str, tuple[str, str]] = {
    "group": ("group.jpg", "two portraits side by side and a small face cut at the hairline "
                           "and chin pinned on the wall: three faces"),
    "astronaut": ("astronaut.jpg", "Eileen Collins, NASA portrait: one smiling face"),
    "hopper": ("hopper.jpg", "Grace Hopper, US Navy portrait: one face"),
    "clip": ("clip.mp4", "a 4 s pan across the group picture (H.264, 640x360, 15 frames/s)"),
}
#: Which examples are pictures and which a video (the web pages offer the right kind).
IMAGES = ("group", "astronaut", "hopper")
VIDEOS = ("clip",)


def names() -> list[str]:
    return list(EXAMPLES)


def path(name: str = "group") -> Path:
    """The file of example ``name`` (``group``, ``astronaut``, ``hopper`` or ``clip``)."""
    if name not in EXAMPLES:
        raise ConfigError(f"no example named {name!r}; choose one of: {', '.join(EXAMPLES)}")
    return FOLDER / EXAMPLES[name][0]


__all__ = ["EXAMPLES", "IMAGES", "VIDEOS", "names", "path"]
