"""User-facing details of the web app and CLI that the issue "What users expect" asked for:
one emotion palette everywhere, the About page's labels and contrast, the Experiments page's
hints, the video page's API, and the CLI's messages. (Browser checks are in
test_browser_web.py.)"""

from __future__ import annotations

import re

import numpy as np
import pytest

from test_web_support import tiny_bundle, web_engine, write_tiny_bundle  # noqa: F401

from ekspresi.infer.annotate import COLOURS, PALETTE, contrast, draw_faces, ink
from ekspresi.infer.types import Face
from ekspresi.labels import CLASSES
from ekspresi.web.app import create_app
from ekspresi.web.settings import WebSettings

fastapi_testclient = pytest.importorskip("fastapi.testclient")
TestClient = fastapi_testclient.TestClient


@pytest.fixture(scope="module")
def client(web_engine, tiny_bundle):  # noqa: F811
    app = create_app(WebSettings(model=tiny_bundle, threads=1), engine=web_engine)
    with TestClient(app) as c:
        yield c


# -- one palette ---------------------------------------------------------------------------

def test_one_palette_for_cli_pictures_server_pictures_and_pages(client):
    from ekspresi.web import render

    assert set(CLASSES) <= set(PALETTE)
    assert render.EMOTION_BGR == COLOURS
    # every page carries the palette as CSS variables, text colour included
    head = client.get("/").text.split("</head>")[0]
    for name, colour in PALETTE.items():
        assert f"--{name}: {colour};" in head and f"--{name}-ink: {ink(colour)};" in head
        assert contrast(colour, ink(colour)) >= 4.5, name
    # the stylesheet and scripts no longer carry their own copy of the colours
    css = client.get("/static/css/app.css").text + client.get("/static/js/common.js").text
    assert not any(colour in css for colour in PALETTE.values())


def test_cli_annotation_draws_in_the_palette_colour():
    image = np.full((200, 200, 3), 255, np.uint8)
    face = Face(box=(50, 60, 80, 80), detection_score=0.9,
                scores=dict.fromkeys(CLASSES, 0.1) | {"sad": 0.4})
    out = draw_faces(image, [face], bars=False)
    assert tuple(int(v) for v in out[100, 50]) == COLOURS["sad"]   # the box's left edge
