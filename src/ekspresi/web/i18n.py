"""The web app's words in English and Indonesian (the five source systems were Indonesian).

Every text of every page, and every text the pages' scripts show, comes from one message
catalogue per language, ``messages/{lang}.json`` (flat ``key -> text``, ``{name}``
placeholders). The language is chosen by ``?lang=`` (remembered in a cookie), else the
cookie, else the browser's ``Accept-Language``, else English. A key missing from a catalogue
falls back to English, so a half-finished translation shows English rather than keys.
API error messages (``{"detail": ...}``) stay English: they are for programs and logs.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from fastapi import Request
from markupsafe import Markup

MESSAGES_DIR = Path(__file__).parent / "messages"
#: Language code -> its name in that language (the switcher shows these).
LANGUAGES = {"en": "English", "id": "Bahasa Indonesia"}
DEFAULT = "en"
COOKIE = "ekspresi_lang"


@functools.lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str]:
    """The messages of ``lang`` (English ones for keys it lacks)."""
    own = json.loads((MESSAGES_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    if lang == DEFAULT:
        return own
    return {**catalogue(DEFAULT), **own}


def _accept_language(header: str) -> str | None:
    """The best supported language of an ``Accept-Language`` header (q-values honoured)."""
    best: tuple[float, str] | None = None
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        code = tag.strip().lower().split("-")[0]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if code in LANGUAGES and q > 0 and (best is None or q > best[0]):
            best = (q - i * 1e-6, code)   # earlier wins among equals
    return best[1] if best else None


def choose_language(request: Request) -> str:
    for value in (request.query_params.get("lang"), request.cookies.get(COOKIE)):
        if value in LANGUAGES:
            return value
    return _accept_language(request.headers.get("accept-language", "")) or DEFAULT


def ordinal(n: int, lang: str) -> str:
    """``n`` as an ordinal word part: 1st, 2nd, 3rd, 4th, 11th, 22nd (English); ke-2
    (Indonesian). Messages take it as ``{nth}``."""
    if lang == "id":
        return f"ke-{n}"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class Translator:
    """``t(key, **params)`` for templates: the message with its placeholders filled in.
    Messages are trusted (they ship with the app) and may hold a little markup; the
    parameters are escaped."""

    def __init__(self, lang: str):
        self.lang = lang
        self.messages = catalogue(lang)

    def __call__(self, key: str, **params) -> Markup:
        text = self.messages.get(key)
        if text is None:
            return Markup.escape(key)
        return Markup(text).format(**params) if params else Markup(text)

    def ordinal(self, n: int) -> str:
        return ordinal(n, self.lang)

    def has(self, key: str) -> bool:
        return key in self.messages

    def script_messages(self) -> dict[str, str]:
        """The messages the pages' scripts use (``js.*`` and the emotion names)."""
        return {k: v for k, v in self.messages.items() if k.startswith(("js.", "emotion."))}
