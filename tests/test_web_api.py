"""HTTP API and pages of the web app, through FastAPI's TestClient, on a tiny real bundle."""

from __future__ import annotations

import io
import json
import logging

import numpy as np
import pytest
from PIL import Image
from web_support import face_jpeg, png_bytes

from ekspresi.web.app import create_app
from ekspresi.web.settings import WebSettings

fastapi_testclient = pytest.importorskip("fastapi.testclient")
TestClient = fastapi_testclient.TestClient

PAGES = {"/": "Facial expressions", "/image": "Image test", "/realtime": "Real-time",
         "/steps": "Step by step", "/about": "About ekspresi", "/experiments": "Experiments"}


def make_client(engine, **settings) -> TestClient:
    return TestClient(create_app(WebSettings(threads=1, **settings), engine=engine),
                      raise_server_exceptions=False)


def jpeg_bytes(array: np.ndarray, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=90, **save)
    return buf.getvalue()


def face_array() -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(face_jpeg())).convert("RGB"))


def analyze(client, data: bytes, name="x.jpg", **params):
    return client.post("/api/v1/analyze", params=params,
                       files={"file": (name, data, "application/octet-stream")})


# -- pages -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path,heading", PAGES.items())
def test_every_page_renders_with_nav_and_headers(client, path, heading):
    r = client.get(path, headers={"accept": "text/html"})
    assert r.status_code == 200
    assert heading in r.text
    for href in PAGES:
        assert f'href="{href}"' in r.text
    assert 'aria-current="page"' in r.text
    assert "tiny-test-model" in r.text  # footer names the model
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    # every asset is local: no CDN, no external URL in a src/href
    assert "src=\"http" not in r.text and "href=\"http" not in r.text


def test_static_assets_are_served(client):
    for path in ("/static/css/app.css", "/static/js/common.js", "/static/js/image.js",
                 "/static/js/realtime.js", "/static/js/steps.js", "/static/favicon.svg",
                 "/favicon.ico"):
        assert client.get(path).status_code == 200, path


def test_docs_work_offline(client):
    r = client.get("/docs")
    assert r.status_code == 200
    assert "/docs-static/swagger-ui-bundle.js" in r.text
    assert "cdn." not in r.text and "https://" not in r.text.split("<body>")[0]
    for asset in ("/docs-static/swagger-ui-bundle.js", "/docs-static/swagger-ui.css"):
        assert client.get(asset).status_code == 200


def test_openapi_schema_is_valid_and_documents_the_api(client):
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path in ("/api/v1/analyze", "/api/v1/model", "/healthz", "/api/v1/trace"):
        assert path in paths
    body = paths["/api/v1/analyze"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body and "image/*" in body
    responses = paths["/api/v1/analyze"]["post"]["responses"]
    assert {"200", "413", "415", "422", "503"} <= set(responses)
    assert not any(p == "/" or p.startswith("/static") for p in paths)
    # every $ref resolves
    text = json.dumps(spec)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        node = spec
        for key in ref.lstrip("#/").split("/"):
            node = node[key]


# -- API -------------------------------------------------------------------------------------

def test_healthz_and_model(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "model": "tiny-test-model"}
    info = client.get("/api/v1/model").json()
    assert info["loaded"] is True
    assert info["classes"] == ["angry", "disgust", "fear", "happy", "sad", "surprise",
                               "neutral"]
    assert info["input"]["size"] == 48
    assert info["metrics"]["test"]["accuracy"] == pytest.approx(0.656)
    assert info["detector"]


def _check_face(face: dict, width: int, height: int) -> None:
    x, y, w, h = face["box"]
    assert 0 <= x < width and 0 <= y < height and w > 20 and h > 20
    assert sum(face["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    assert face["label"] == max(face["scores"], key=face["scores"].get)
    assert face["confidence"] == pytest.approx(face["scores"][face["label"]])
    assert 0 < face["detection_score"] <= 1


def test_analyze_multipart_finds_the_face(client, web_engine):
    data = face_jpeg()
    r = analyze(client, data)
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == {"faces", "width", "height", "model", "elapsed_ms", "min_face_px",
                        "timings_ms"}
    assert out["model"] == "tiny-test-model" and out["elapsed_ms"] > 0
    assert set(out["timings_ms"]) == {"decode", "detect", "classify"}
    assert len(out["faces"]) == 1
    _check_face(out["faces"][0], out["width"], out["height"])
    # the Python API's ImageResult.to_dict(), plus what the server adds
    expected = web_engine.recognizer.analyze(data).to_dict()
    assert {k: v for k, v in out.items() if k not in ("model", "elapsed_ms", "timings_ms")} \
        == {k: v for k, v in expected.items() if k != "timings_ms"}


def test_api_and_cli_print_one_face_shape(client, capsys, tmp_path):
    """`predict --format json` and `/api/v1/analyze` give every face the same keys and
    values (the richer shape, with the eye-levelling rotation)."""
    from ekspresi.cli import main

    photo = tmp_path / "face.jpg"
    photo.write_bytes(face_jpeg())
    model = str(client.app.state.engine.bundle.path)
    assert main(["predict", str(photo), "--format", "json", "--model", model]) == 0
    cli = json.loads(capsys.readouterr().out)[0]
    api = analyze(client, face_jpeg()).json()
    assert cli["faces"] == api["faces"] and "rotation" in api["faces"][0]
    assert {k: cli[k] for k in ("width", "height", "min_face_px")} \
        == {k: api[k] for k in ("width", "height", "min_face_px")}


def test_analyze_raw_body_equals_multipart(client):
    data = face_jpeg()
    raw = client.post("/api/v1/analyze", content=data, headers={"content-type": "image/jpeg"})
    assert raw.status_code == 200
    assert raw.json()["faces"] == analyze(client, data).json()["faces"]


def test_analyze_preview_is_upright_display_image(client):
    out = analyze(client, face_jpeg(), preview="true").json()
    assert out["preview"].startswith("data:image/jpeg;base64,")
    assert out["preview_scale"] == 1.0  # a 512 px photo is shown at full size


def test_several_faces(client):
    face = face_array()
    both = np.concatenate([face, face[:, ::-1]], axis=1)
    out = analyze(client, jpeg_bytes(both)).json()
    assert len(out["faces"]) == 2
    xs = sorted(f["box"][0] for f in out["faces"])
    assert xs[0] < face.shape[1] <= xs[1]


def test_no_face(client):
    flat = np.full((200, 300, 3), 127, np.uint8)
    r = analyze(client, png_bytes(flat), name="flat.png")
    assert r.status_code == 200
    assert r.json()["faces"] == [] and r.json()["width"] == 300


def test_exif_rotated_photo_is_analysed_upright(client):
    face = np.ascontiguousarray(face_array()[:, 60:460])  # 512 high x 400 wide
    upright = analyze(client, jpeg_bytes(face)).json()["faces"][0]["box"]
    # stored on its side (turned 90 degrees counter-clockwise), with the EXIF tag that
    # tells viewers to turn it 90 degrees clockwise for display
    sideways = np.ascontiguousarray(np.rot90(face, k=1))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = analyze(client, jpeg_bytes(sideways, exif=exif), preview="true").json()
    assert (out["width"], out["height"]) == (400, 512)
    assert len(out["faces"]) == 1
    assert np.allclose(out["faces"][0]["box"], upright, atol=6)


@pytest.mark.parametrize("kind", ["gray", "rgba", "16bit", "tiny"])
def test_odd_images_are_handled(client, kind):
    face = face_array()
    if kind == "gray":
        data = png_bytes(np.asarray(Image.fromarray(face).convert("L")))
    elif kind == "rgba":
        data = png_bytes(np.dstack([face, np.full(face.shape[:2], 255, np.uint8)]))
    elif kind == "16bit":
        g = np.asarray(Image.fromarray(face).convert("L")).astype(np.uint16) * 257
        buf = io.BytesIO()
        Image.fromarray(g).save(buf, format="PNG")
        data = buf.getvalue()
    else:
        data = png_bytes(np.zeros((1, 1, 3), np.uint8))
    r = analyze(client, data, name=f"{kind}.png")
    assert r.status_code == 200, r.text
    faces = r.json()["faces"]
    if kind == "tiny":
        assert faces == []
    else:  # the best detection is the astronaut's face, wherever the colour went
        colour = analyze(client, face_jpeg()).json()["faces"][0]["box"]
        assert np.allclose(faces[0]["box"], colour, atol=12), (faces[0]["box"], colour)


def test_large_image_is_analysed_and_preview_downscaled(client):
    face = np.asarray(Image.fromarray(face_array()).resize((2400, 2400)))
    big = np.zeros((2400, 3200, 3), np.uint8)
    big[:, 400:2800] = face
    out = analyze(client, jpeg_bytes(big), preview="true").json()
    assert (out["width"], out["height"]) == (3200, 2400)
    assert out["preview_scale"] == pytest.approx(1280 / 3200)
    assert len(out["faces"]) >= 1
    x, y, w, _ = out["faces"][0]["box"]
    # the 512 px photo's face box, scaled by 2400/512 and shifted by 400 px
    small = analyze(client, face_jpeg()).json()["faces"][0]["box"]
    assert abs(x - (400 + small[0] * 2400 / 512)) < 60 and abs(w - small[2] * 2400 / 512) < 80


def test_trace_returns_every_stage(client):
    r = client.post("/api/v1/trace", files={"file": ("a.jpg", face_jpeg(), "image/jpeg")})
    assert r.status_code == 200, r.text
    out = r.json()
    assert [s["key"] for s in out["stages"]] == ["original", "gray", "detections"]
    det = out["stages"][2]
    assert det["candidates"] and any(c["accepted"] for c in det["candidates"])
    assert len(out["faces"]) == 1
    stages = {s["key"]: s for s in out["faces"][0]["stages"]}
    assert list(stages) == ["crop", "input", "probabilities", "saliency"]
    for key in ("crop", "input", "saliency"):
        assert stages[key]["image"].startswith("data:image/png;base64,")
    # the model input is shown as exact square pixels: 48 x 5 = 240
    import base64

    png = base64.b64decode(stages["input"]["image"].split(",", 1)[1])
    shown = np.asarray(Image.open(io.BytesIO(png)))
    assert shown.shape[:2] == (240, 240)
    assert np.array_equal(shown[::5, ::5], shown[2::5, 2::5])  # nearest-neighbour blocks
    assert sum(stages["probabilities"]["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    assert set(out["timings_ms"]) >= {"detect", "classify", "saliency"}


def test_trace_numbers_candidates_as_the_faces_and_explains_the_saliency_limit(client):
    """One numbering on the Step-by-step page (issue 22): accepted candidate k is face k
    (reading order, not score order); faces after the saliency limit say why they have no
    map instead of silently lacking one."""
    from infer_support import collage

    r = client.post("/api/v1/trace", files={"file": ("six.png", png_bytes(collage(6)),
                                                     "image/png")})
    assert r.status_code == 200, r.text
    out = r.json()
    limit = client.app.state.settings.trace_saliency_faces
    assert len(out["faces"]) == 6 > limit
    accepted = [c for c in out["stages"][2]["candidates"] if c["accepted"]]
    assert [c["number"] for c in accepted] == [1, 2, 3, 4, 5, 6]
    assert [c["box"] for c in accepted] == [f["box"] for f in out["faces"]]
    rejected = [c for c in out["stages"][2]["candidates"] if not c["accepted"]]
    assert all("number" not in c for c in rejected)
    assert out["stages"][2]["candidates"][:6] == accepted        # accepted ones first
    for i, face in enumerate(out["faces"]):
        keys = [s["key"] for s in face["stages"]]
        assert keys[-1] == ("saliency" if i < limit else "saliency_skipped")
    skipped = out["faces"][-1]["stages"][-1]
    assert skipped["params"] == {"max": limit} and f"first {limit} faces" in skipped["caption"]


# -- errors ----------------------------------------------------------------------------------

def test_non_image_is_415_with_message(client):
    r = analyze(client, b"%PDF-1.4 this is not an image", name="doc.pdf")
    assert r.status_code == 415
    assert "not an image" in r.json()["detail"] and "doc.pdf" in r.json()["detail"]
    r = client.post("/api/v1/analyze", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 415


def test_corrupt_and_empty_uploads_are_422(client):
    truncated = face_jpeg()[:300]
    r = analyze(client, truncated, name="cut.jpg")
    assert r.status_code == 422 and "cut.jpg" in r.json()["detail"]
    assert client.post("/api/v1/analyze", content=b"").status_code == 422
    r = client.post("/api/v1/analyze", files={"other": ("a.jpg", b"xx", "image/jpeg")})
    assert r.status_code == 422 and "'file'" in r.json()["detail"]


def test_decompression_bomb_is_refused(web_engine):
    c = make_client(web_engine, model=None, max_pixels=1_000_000)
    bomb = png_bytes(np.zeros((2000, 2000), np.uint8))  # 4 MP of zeros: a few KB on the wire
    assert len(bomb) < 20_000
    r = analyze(c, bomb, name="bomb.png")
    assert r.status_code == 422
    assert "decompression bomb" in r.json()["detail"]


def test_upload_limit_by_content_length_and_by_counting(web_engine):
    c = make_client(web_engine, max_upload_mb=0.2)
    big = b"\xff" * 300_000
    r = analyze(c, big, name="big.jpg")  # multipart with Content-Length
    assert r.status_code == 413 and "0.2 MB" in r.json()["detail"]

    def chunks():  # no Content-Length: chunked transfer, counted as it streams
        for _ in range(40):
            yield b"\x00" * 10_000

    r = c.post("/api/v1/analyze", content=chunks(), headers={"content-type": "image/png"})
    assert r.status_code == 413
    # a file just above the file limit but under the multipart slack is still refused
    r = analyze(c, b"\x00" * 200_500, name="edge.jpg")
    assert r.status_code == 413
    # and the same server still analyses a small image
    assert analyze(c, face_jpeg()).status_code == 200


def test_server_errors_do_not_leak_details(web_engine, monkeypatch):
    c = make_client(web_engine)

    def explode(*a, **k):
        raise RuntimeError("secret internal path /root/xyz")

    monkeypatch.setattr(web_engine.recognizer, "analyze", explode)
    r = analyze(c, face_jpeg())
    assert r.status_code == 500
    assert r.json() == {"detail": "internal server error"}
    assert "secret" not in r.text and "Traceback" not in r.text


def test_unknown_routes_are_404_json_for_api_html_for_pages(client):
    r = client.get("/api/v1/nothing")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")
    r = client.get("/no-such-page", headers={"accept": "text/html"})
    assert r.status_code == 404 and "404" in r.text and "<nav" in r.text


@pytest.mark.parametrize("path", [
    "/static/../pyproject.toml", "/static/%2e%2e/%2e%2e/pyproject.toml",
    "/static/..%2f..%2fapp.py", "/static//etc/passwd", "/about/..%2fmodel.onnx",
    "/about/model.json", "/docs-static/../core.py",
])
def test_no_path_traversal_through_static_routes(client, path):
    r = client.get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert "import" not in r.text and "root:" not in r.text


def test_cors_off_by_default_and_on_when_asked(web_engine):
    pre = {"origin": "http://evil.example", "access-control-request-method": "POST"}
    r = make_client(web_engine).options("/api/v1/analyze", headers=pre)
    assert "access-control-allow-origin" not in r.headers
    c = make_client(web_engine, cors_origins=("http://app.example",))
    r = c.options("/api/v1/analyze", headers={**pre, "origin": "http://app.example"})
    assert r.headers["access-control-allow-origin"] == "http://app.example"
    r = c.options("/api/v1/analyze", headers=pre)
    assert r.headers.get("access-control-allow-origin") != "http://evil.example"


def test_one_log_line_per_request(client, caplog):
    with caplog.at_level(logging.INFO, logger="ekspresi.web"):
        client.get("/healthz")
        analyze(client, b"not an image")
    lines = [r.getMessage() for r in caplog.records if r.name == "ekspresi.web"]
    assert len(lines) == 2
    assert lines[0].startswith("GET /healthz 200 ") and lines[0].endswith("ms")
    assert lines[1].startswith("POST /api/v1/analyze 415 ")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ekspresi.web"):
        client.get("/x%0aINFO%20forged")  # a newline in the URL must not forge a log line
    lines = [r.getMessage() for r in caplog.records if r.name == "ekspresi.web"]
    assert len(lines) == 1 and "\n" not in lines[0] and "%0a" in lines[0]


def test_concurrent_requests_share_the_session_safely(client):
    from concurrent.futures import ThreadPoolExecutor

    data = face_jpeg()
    face = face_array()
    other = jpeg_bytes(np.ascontiguousarray(face[:, ::-1]))
    expected = {data: analyze(client, data).json()["faces"],
                other: analyze(client, other).json()["faces"]}
    inputs = [data, other] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda d: (d, analyze(client, d)), inputs))
    for d, r in results:
        assert r.status_code == 200
        assert r.json()["faces"] == expected[d]


# -- WebSocket -------------------------------------------------------------------------------

def test_stream_answers_each_frame_and_survives_bad_ones(client):
    frame = face_jpeg()
    with client.websocket_connect("/api/v1/stream") as ws:
        ws.send_bytes(frame)
        first = json.loads(ws.receive_text())
        assert first["frame"] == 1 and len(first["faces"]) == 1
        _check_face(first["faces"][0], first["width"], first["height"])
        ws.send_bytes(b"garbage")
        bad = json.loads(ws.receive_text())
        assert bad["frame"] == 2 and "not an image" in bad["error"]
        ws.send_text("hello")
        assert "binary" in json.loads(ws.receive_text())["error"]
        ws.send_bytes(frame)
        again = json.loads(ws.receive_text())
        # the same picture again: the same face, its box carried by optical flow
        assert again["frame"] == 3 and again["faces"][0].pop("tracked") is True
        assert again["faces"] == first["faces"]


def test_stream_refuses_other_web_sites(web_engine):
    from starlette.websockets import WebSocketDisconnect

    c = make_client(web_engine)
    with pytest.raises(WebSocketDisconnect) as info:
        with c.websocket_connect("/api/v1/stream", headers={"origin": "http://evil.example"}):
            pass
    assert info.value.code == 1008
    with c.websocket_connect("/api/v1/stream", headers={"origin": "http://testserver"}) as ws:
        ws.send_bytes(face_jpeg())
        assert len(json.loads(ws.receive_text())["faces"]) == 1
    c = make_client(web_engine, cors_origins=("http://app.example",))
    with c.websocket_connect("/api/v1/stream", headers={"origin": "http://app.example"}) as ws:
        ws.send_bytes(face_jpeg())
        assert "faces" in json.loads(ws.receive_text())


def test_stream_closes_on_oversized_frame(web_engine):
    from starlette.websockets import WebSocketDisconnect

    c = make_client(web_engine, max_upload_mb=0.01)
    with c.websocket_connect("/api/v1/stream") as ws:
        ws.send_bytes(b"\x00" * 20_000)
        assert "limit" in json.loads(ws.receive_text())["error"]
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert info.value.code == 1009


# -- without a model -------------------------------------------------------------------------

def test_without_a_model_pages_explain_and_api_is_503(tmp_path):
    from ekspresi.web.engine import Engine

    settings = WebSettings(model=tmp_path / "missing")
    engine = Engine(settings)
    assert not engine.available and "not a model bundle" in engine.error
    c = TestClient(create_app(settings, engine=engine))
    page = c.get("/", headers={"accept": "text/html"})
    assert page.status_code == 200 and "No model loaded" in page.text
    assert c.get("/about").status_code == 200
    for r in (c.get("/healthz"), c.get("/api/v1/model"), analyze(c, face_jpeg())):
        assert r.status_code == 503 and "not a model bundle" in r.text
    with c.websocket_connect("/api/v1/stream") as ws:
        assert "no model loaded" in json.loads(ws.receive_text())["error"]


# -- model card ------------------------------------------------------------------------------

def test_model_card_shows_metadata_confusion_and_limitations(make_bundle, tmp_path):
    from ekspresi.web.engine import Engine

    bundle = make_bundle("dense", tmp_path / "b")
    png = png_bytes(np.full((20, 30, 3), 200, np.uint8))
    (bundle / "confusion_matrix.png").write_bytes(png)
    (bundle / "reliability.png").write_bytes(png)
    c = TestClient(create_app(WebSettings(model=bundle, threads=1),
                              engine=Engine(WebSettings(model=bundle, threads=1))))
    html = c.get("/about").text
    assert "synthetic (test fixture)" in html            # training record
    assert "65.6 %" in html and "61.0–70.0 %" in html     # accuracy and its interval
    assert 'id="per-class"' in html and 'id="confusion"' in html
    assert html.count("cm-cell") == 49
    assert "A random test model" in html                  # bundle's own limitation
    assert "FER2013" in html and "Goodfellow" in html and "CK+" in html
    # the picture of the confusion matrix repeats the translated table: not shown, but
    # still served; a plot the page cannot redraw is shown
    assert 'src="/about/confusion_matrix.png"' not in html
    assert 'src="/about/reliability.png"' in html
    r = c.get("/about/confusion_matrix.png")
    assert r.status_code == 200 and r.content == png


def test_model_card_without_metrics_says_so(make_bundle, tmp_path):
    from ekspresi.web.engine import Engine

    bundle = make_bundle("dense", tmp_path / "b", metrics=None)
    s = WebSettings(model=bundle, threads=1)
    html = TestClient(create_app(s, engine=Engine(s))).get("/about").text
    assert "records no test metrics" in html
    # the run's final_metrics.json copied in by `ekspresi export` is read when the bundle
    # records no metrics (an unreadable one leaves the card saying so)
    (bundle / "final_metrics.json").write_text("[1, 2]")
    html = TestClient(create_app(s, engine=Engine(s))).get("/about").text
    assert "records no test metrics" in html
    (bundle / "final_metrics.json").write_text(
        json.dumps({"splits": {"test": {"accuracy": 0.7123}}}))
    html = TestClient(create_app(s, engine=Engine(s))).get("/about").text
    assert "71.2 %" in html


# -- experiments -----------------------------------------------------------------------------

@pytest.fixture
def runs_dir(tmp_path):
    root = tmp_path / "runs"
    for name, acc in (("paper_p4_cnn", 0.61), ("ours_resnet", 0.70)):
        run = root / name
        run.mkdir(parents=True)
        (run / "final_metrics.json").write_text(json.dumps(
            {"splits": {"test": {"accuracy": acc, "macro_f1": acc - 0.05, "n_samples": 3589}}}))
        # `ekspresi evaluate` writes RUN/report/report.html; older runs have RUN/report.html
        report = run / ("report" if name == "ours_resnet" else ".")
        (report / "plots").mkdir(parents=True)
        (report / "report.html").write_text(f"<html><body><h1>Report {name}</h1>"
                                            "<img src='plots/cm.png'></body></html>")
        (report / "plots" / "cm.png").write_bytes(png_bytes(np.zeros((4, 4), np.uint8)))
        (run / "model.onnx").write_bytes(b"binary")
    (root / "broken").mkdir()
    (root / "broken" / "final_metrics.json").write_text("{not json")
    (root / "not_a_run").mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    (root / "ours_resnet" / "leak.txt").symlink_to(secret)
    return root


def test_experiments_lists_runs_and_serves_reports(web_engine, runs_dir):
    c = make_client(web_engine, runs_dir=runs_dir)
    html = c.get("/experiments").text
    assert "paper_p4_cnn" in html and "ours_resnet" in html and "not_a_run" not in html
    assert "0.7000" in html and "0.6100" in html          # headline table
    assert "final_metrics.json unreadable" in html
    assert 'href="/experiments/ours_resnet/report/report.html"' in html
    assert 'href="/experiments/paper_p4_cnn/report.html"' in html
    comparison = html[html.index('id="comparison"'):]    # compare_runs' table
    assert "test acc." in comparison and "70.00 %" in comparison and "61.00 %" in comparison
    r = c.get("/experiments/ours_resnet/report/report.html")
    assert r.status_code == 200 and "Report ours_resnet" in r.text
    assert "sandbox" in r.headers["content-security-policy"]
    assert c.get("/experiments/ours_resnet/report/plots/cm.png").status_code == 200
    assert c.get("/experiments/paper_p4_cnn/plots/cm.png").status_code == 200
    r = c.get("/experiments/ours_resnet/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"].endswith("/report/report.html")


@pytest.mark.parametrize("path", [
    "/experiments/ours_resnet/..%2fpaper_p4_cnn%2f..%2f..%2fsecret.txt",
    "/experiments/ours_resnet/..%2f..%2fsecret.txt",
    "/experiments/ours_resnet/%2e%2e/%2e%2e/secret.txt",
    "/experiments/..%2fsecret.txt/x",
    "/experiments/ours_resnet/leak.txt",          # symlink out of the run
    "/experiments/ours_resnet/model.onnx",        # type not served
    "/experiments/ours_resnet//etc/passwd",
    "/experiments/nope/report.html",
])
def test_experiments_refuse_traversal(web_engine, runs_dir, path):
    c = make_client(web_engine, runs_dir=runs_dir)
    r = c.get(path)
    assert r.status_code == 404, path
    assert "top secret" not in r.text and "root:" not in r.text


def test_experiments_without_runs_dir_explains(client):
    assert "--runs" in client.get("/experiments").text


# -- CLI -------------------------------------------------------------------------------------

def test_serve_command_is_registered_and_checks_its_arguments(tmp_path, capsys):
    from ekspresi.cli import main

    with pytest.raises(SystemExit) as info:
        main(["serve", "--help"])
    assert info.value.code == 0
    assert "--max-upload-mb" in capsys.readouterr().out
    assert main(["serve", "--model", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "not a model bundle" in err and "Traceback" not in err
    assert main(["serve", "--runs", str(tmp_path / "nope")]) == 2
    assert main(["serve", "--port", "0"]) == 2


def test_serve_reports_a_bad_model_before_a_taken_port(tmp_path, capsys):
    """The README's order (server on port 8000, then the tests): a wrong --model is
    reported as the model's problem, not as the port being in use."""
    import socket

    from ekspresi.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert main(["serve", "--model", str(tmp_path / "missing"), "--port", port]) == 2
        err = capsys.readouterr().err
        assert "not a model bundle" in err and "cannot listen" not in err
        assert main(["serve", "--port", port, "--model", "default"]) == 2  # the port, then
        assert "cannot listen" in capsys.readouterr().err
