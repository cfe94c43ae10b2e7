"""The web app's model switch: every model shipped in the package can be chosen by
``?model=`` on the API and the pages (remembered in a cookie the pages' own API calls
carry), the WebSocket takes it too, and nothing but those names can be chosen."""

from __future__ import annotations

import json

import pytest
from web_support import face_jpeg

from ekspresi.infer import resolve
from ekspresi.web.app import create_app
from ekspresi.web.engine import MODEL_COOKIE, Engine
from ekspresi.web.settings import WebSettings

TestClient = pytest.importorskip("fastapi.testclient").TestClient
ACCURATE = ("happy", "sad", "surprise")     # other classes: every answer shows which ran


@pytest.fixture()
def shipped(tmp_path, make_bundle, monkeypatch):
    """A package whose assets/models holds ``default`` (7 classes) and ``accurate``."""
    root = tmp_path / "models"
    make_bundle("dense", out=root / "default", name="shipped-default")
    make_bundle("dense", out=root / "accurate", name="shipped-accurate", classes=ACCURATE)
    monkeypatch.setattr(resolve, "BUNDLED_MODELS_DIR", root)
    return root


@pytest.fixture()
def client(shipped):
    settings = WebSettings(threads=1)
    with TestClient(create_app(settings, engine=Engine(settings))) as c:
        yield c


def analyze(client, **params):
    return client.post("/api/v1/analyze", params=params,
                       files={"file": ("face.jpg", face_jpeg(), "image/jpeg")})


def test_the_api_lists_and_uses_each_shipped_model(client):
    listed = client.get("/api/v1/models").json()
    assert [(m["choice"], m["name"], m["served"]) for m in listed] == [
        ("default", "shipped-default", True), ("accurate", "shipped-accurate", False)]
    assert [m["loaded"] for m in listed] == [True, False]     # loaded on first use only

    plain = analyze(client).json()
    assert plain["model"] == "shipped-default" and len(plain["faces"][0]["scores"]) == 7
    chosen = analyze(client, model="accurate").json()
    assert chosen["model"] == "shipped-accurate"
    assert set(chosen["faces"][0]["scores"]) == set(ACCURATE)
    assert client.get("/api/v1/model", params={"model": "accurate"}).json()["classes"] == \
        list(ACCURATE)
    assert client.get("/api/v1/models").json()[1]["loaded"] is True


@pytest.mark.parametrize("name", ["fast", "../default", "/etc", "accurate/model.onnx"])
def test_only_offered_names_can_be_chosen(client, name):
    r = analyze(client, model=name)
    assert r.status_code == 422
    assert "default, accurate" in r.json()["detail"]


def test_a_page_remembers_the_choice_for_its_api_calls(client):
    page = client.get("/about", params={"model": "accurate"})
    assert page.status_code == 200 and "shipped-accurate" in page.text
    assert page.cookies.get(MODEL_COOKIE) == "accurate"
    # the footer's switch marks the choice and links the other
    assert "<strong translate=\"no\">accurate</strong>" in page.text
    assert "href=\"?model=default\"" in page.text
    # the page's fetch() calls carry the cookie: same model without ?model=
    assert analyze(client).json()["model"] == "shipped-accurate"
    assert "shipped-accurate" in client.get("/image").text
    # an explicit ?model= wins over the cookie
    assert analyze(client, model="default").json()["model"] == "shipped-default"


def test_a_stale_cookie_falls_back_to_the_served_model(client):
    client.cookies.set(MODEL_COOKIE, "retired")
    assert analyze(client).json()["model"] == "shipped-default"
    page = client.get("/about", params={"model": "retired"})
    assert page.status_code == 200 and "shipped-default" in page.text
    assert page.cookies.get(MODEL_COOKIE) is None


def test_the_realtime_stream_takes_the_choice(client):
    with client.websocket_connect("/api/v1/stream?model=accurate") as ws:
        ws.send_bytes(face_jpeg())
        answer = json.loads(ws.receive_text())
    assert set(answer["faces"][0]["scores"]) == set(ACCURATE)
    with client.websocket_connect("/api/v1/stream?model=nope") as ws:
        assert "not offered" in json.loads(ws.receive_text())["error"]


def test_a_folder_given_to_serve_is_served_beside_the_shipped_ones(shipped, make_bundle,
                                                                   tmp_path):
    own = make_bundle("dense", out=tmp_path / "mine", name="my-model")
    settings = WebSettings(model=own, threads=1)
    with TestClient(create_app(settings, engine=Engine(settings))) as c:
        listed = [(m["choice"], m["served"]) for m in c.get("/api/v1/models").json()]
        assert listed == [("served", True), ("default", False), ("accurate", False)]
        assert analyze(c).json()["model"] == "my-model"
        assert analyze(c, model="default").json()["model"] == "shipped-default"
