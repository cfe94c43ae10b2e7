"""English and Indonesian UI: one message catalogue per language, chosen by ?lang=, a cookie
or Accept-Language; every text of every page comes from the catalogue (checked by rendering
the pages in a pseudo-language whose every message is bracketed)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ekspresi.web import i18n
from ekspresi.web.app import create_app
from ekspresi.web.settings import WebSettings

fastapi_testclient = pytest.importorskip("fastapi.testclient")
TestClient = fastapi_testclient.TestClient

WEB = Path(i18n.__file__).parent
PLACEHOLDER = re.compile(r"\{(\w+)\}")
PAGES = ["/", "/image", "/realtime", "/video", "/steps", "/about", "/experiments", "/nowhere"]


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    run = root / "demo"
    run.mkdir()
    (run / "final_metrics.json").write_text(
        json.dumps({"splits": {"test": {"accuracy": 0.6, "n_samples": 10}}}))
    return root


@pytest.fixture(scope="module")
def client(web_engine, tiny_bundle, runs_dir):
    app = create_app(WebSettings(model=tiny_bundle, threads=1, runs_dir=runs_dir),
                     engine=web_engine)
    with TestClient(app) as c:
        yield c


@pytest.fixture(autouse=True)
def _no_language_cookie_left(request):
    """The module's client is shared: a language cookie a test sets is cleared after it,
    whether it passed or failed, so no other test runs in the wrong language."""
    yield
    if "client" in request.fixturenames:
        request.getfixturevalue("client").cookies.clear()


def test_catalogues_have_the_same_keys_and_placeholders():
    en, id_ = (json.loads((WEB / "messages" / f"{lang}.json").read_text())
               for lang in ("en", "id"))
    assert set(en) == set(id_)
    for key in en:
        assert set(PLACEHOLDER.findall(en[key])) == set(PLACEHOLDER.findall(id_[key])), key
        assert id_[key].strip(), key


def test_every_key_the_templates_and_scripts_use_exists():
    en = i18n.catalogue("en")
    used = set()
    for path in (WEB / "templates").glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", path.read_text()))
    for path in (WEB / "static" / "js").glob("*.js"):
        used |= set(re.findall(r"""E\.t\(\s*["']([\w.]+)["']""", path.read_text()))
        used |= set(re.findall(r"""["'](js\.[\w.]+)["']""", path.read_text()))
    from ekspresi.web.modelcard import GENERAL_LIMITATIONS, PLOT_TEXT, SUMMARY_LABELS

    used |= set(GENERAL_LIMITATIONS) | set(SUMMARY_LABELS.values())
    used |= {k for pair in PLOT_TEXT.values() for k in pair}
    assert len(used) > 150
    missing = sorted(k for k in used if k not in en and not k.endswith("."))
    assert not missing


def test_language_from_query_cookie_and_accept_language(client):
    r = client.get("/image?lang=id")
    assert "Uji gambar" in r.text and '<html lang="id">' in r.text
    assert r.headers["content-language"] == "id"
    assert "ekspresi_lang=id" in r.headers["set-cookie"]
    assert "Uji gambar" in client.get("/about").text          # the cookie remembers it
    client.cookies.clear()
    assert "Image test" in client.get("/").text
    hdr = {"accept-language": "id-ID,id;q=0.9,en;q=0.8"}
    assert "Beranda" in client.get("/", headers=hdr).text
    hdr = {"accept-language": "fr-FR, en;q=0.5, id;q=0.7"}
    assert "Beranda" in client.get("/", headers=hdr).text      # id is preferred over en
    assert "Home" in client.get("/", headers={"accept-language": "fr"}).text
    assert "Home" in client.get("/?lang=xx").text               # unknown: the default
    # the scripts get their messages in the same language
    page = client.get("/realtime?lang=id").text
    messages = json.loads(re.search(r'<script type="application/json" id="messages">(.*?)'
                                    r"</script>", page, re.S).group(1))
    assert messages["js.rt.off"] == "Kamera mati." and messages["emotion.happy"] == "senang"


class _Text(HTMLParser):
    """The visible text of a page, minus code, scripts, styles, bibliographic data and
    what the page marks as data (``translate="no"``: run names, a bundle's own record)."""
    SKIP = {"script", "style", "code", "template-skip"}

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        skip = (tag in self.SKIP or "citations" in cls or tag == "title"
                or dict(attrs).get("translate") == "no")
        if tag not in ("br", "img", "input", "meta", "link", "source"):
            self.stack.append("skip" if skip else tag)

    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if "skip" not in self.stack:
            self.parts.append(data)

    def handle_startendtag(self, tag, attrs):
        pass


#: Words a page may show that are data or names, not interface text.
ALLOWED = {"ekspresi", "API", "CSV", "JSON", "PNG", "ms", "px", "MB", "ONNX", "sha", "F1",
           "tiny", "test", "model", "demo", "bootstrap", "FER2013", "FER", "CK", "JAFFE",
           "KDEF", "HTTP", "blazeface", "haar", "retinaface"}


def test_every_page_text_comes_from_the_catalogue(client, monkeypatch):
    """Pseudo-localisation: a language whose every message is wrapped in ⟦…⟧. After taking
    out the bracketed text, only numbers, punctuation and data (model name, run names) may
    be left; an English word there is text that bypassed the catalogue."""
    en = i18n.catalogue("en")
    fake = {k: f"⟦{v}⟧" for k, v in en.items()}
    real = i18n.catalogue
    monkeypatch.setattr(i18n, "catalogue", lambda lang: fake if lang == "qps" else real(lang))
    monkeypatch.setitem(i18n.LANGUAGES, "qps", "Pseudo")
    for path in PAGES:
        html = client.get(path, params={"lang": "qps"}, headers={"accept": "text/html"}).text
        parser = _Text()
        parser.feed(html)
        text = " ".join(parser.parts)
        while True:
            inner = re.sub(r"⟦[^⟦⟧]*⟧", " ", text)
            if inner == text:
                break
            text = inner
        assert "⟦" not in text and "⟧" not in text, path
        words = set(re.findall(r"[A-Za-z][A-Za-z+]+", text))
        stray = sorted(w for w in words if w not in ALLOWED and w not in
                       {"Pseudo", "English", "Bahasa", "Indonesia"})
        assert not stray, f"{path}: text outside the catalogue: {stray}"


def test_video_frame_choices_use_real_ordinals(client):
    """"every 2th frame" was English no one writes: ordinals per language."""
    assert [i18n.ordinal(n, "en") for n in (1, 2, 3, 4, 5, 11, 12, 13, 15, 21, 22, 103)] == [
        "1st", "2nd", "3rd", "4th", "5th", "11th", "12th", "13th", "15th", "21st", "22nd",
        "103rd"]
    en = client.get("/video?lang=en").text
    assert "every 2nd frame" in en and "every 5th frame" in en and "th frame" not in \
        en.replace("5th frame", "").replace("15th frame", "")
    assert "setiap bingkai ke-2" in client.get("/video?lang=id").text
