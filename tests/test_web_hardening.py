"""Issue 15, section 1 ("Hardening"): one test (at least) per item. Decoding with bounded
memory, every decoder failure turned into 415/422 (and BadInputError for CLI/data paths),
Host and cross-origin checks, bounded concurrency, slow clients, disconnects, sandboxed run
files, odd run metrics, headers on errors, case-insensitive media types, the saliency cap."""

from __future__ import annotations

import io
import json
import logging
import socket
import struct
import threading
import time
import tracemalloc

import numpy as np
import pytest
from PIL import Image
from web_support import LiveServer, face_jpeg, png_bytes

from ekspresi.errors import BadInputError
from ekspresi.imaging import MAX_PIXELS, NOT_AN_IMAGE, read_image
from ekspresi.web.app import create_app
from ekspresi.web.settings import WEB_MAX_PIXELS, WebSettings

fastapi_testclient = pytest.importorskip("fastapi.testclient")
TestClient = fastapi_testclient.TestClient


def make_client(engine, base_url: str = "http://testserver", **settings) -> TestClient:
    return TestClient(create_app(WebSettings(threads=1, **settings), engine=engine),
                      base_url=base_url, raise_server_exceptions=False)


def analyze(client, data: bytes, name: str = "x.jpg", path: str = "/api/v1/analyze",
            **headers):
    return client.post(path, files={"file": (name, data, "application/octet-stream")},
                       headers=headers)


def dds_flags_zero() -> bytes:
    """A DDS header whose pixel-format flags are 0: Pillow's DDS plugin raises
    NotImplementedError on it (the crash of the issue)."""
    header = struct.pack("<4s7I", b"DDS ", 124, 0x1007, 64, 64, 0, 0, 0) + b"\0" * 44
    header += struct.pack("<2I", 32, 0) + b"\0" * 40
    return header.ljust(128, b"\0") + b"\0" * 64 * 64 * 4


def png16(side: int) -> bytes:
    buf = io.BytesIO()
    ramp = (np.arange(side * side, dtype=np.uint32) % 65536).astype(np.uint16)
    Image.fromarray(ramp.reshape(side, side)).save(buf, format="PNG")
    return buf.getvalue()


# -- memory: integer conversions, a lower limit for the web ---------------------------------

def test_16_bit_decode_is_exact_and_allocates_no_float_copies():
    data = png16(1500)
    expected = np.round((np.arange(1500 * 1500) % 65536) / 65535 * 255).astype(np.uint8)
    tracemalloc.start()
    try:
        out = read_image(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.dtype == np.uint8 and np.array_equal(out.ravel(), expected)
    # numpy's allocations are traced: the float64 path took 8 bytes per pixel, several
    # times over (~90 MB here); the integer band conversion needs the 2.25 MB result plus
    # one band of a few MB.
    assert peak < 4 * out.nbytes + 12_000_000, peak


@pytest.mark.parametrize("mode, value, want", [("I", 70000, 255), ("I", 200, 200),
                                               ("I", -5, 0), ("F", 0.5, 128),
                                               ("F", 200.0, 200), ("F", float("nan"), 0)])
def test_32_bit_modes_are_scaled_like_before(mode, value, want):
    out = read_image(Image.new(mode, (3, 2), value))
    assert out.dtype == np.uint8 and out.shape == (2, 3) and int(out[0, 0]) == want


def test_exif_orientation_matches_pillow_for_all_eight_values():
    from PIL import ImageOps

    rgb = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "PNG", exif=exif)
        want = ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue())))
        got = read_image(buf.getvalue())
        assert np.array_equal(got, np.asarray(want)[:, :, ::-1]), orientation


def test_web_pixel_limit_is_below_the_cli_one_and_checked_first(web_engine):
    assert WebSettings().max_pixels == WEB_MAX_PIXELS < MAX_PIXELS
    c = make_client(web_engine)
    # 7000 x 7000 16-bit zeros: ~95 KB on the wire, 49 M pixels: refused from the header
    buf = io.BytesIO()
    Image.new("I;16", (7000, 7000)).save(buf, format="PNG", optimize=True)
    r = analyze(c, buf.getvalue(), name="big16.png")
    assert r.status_code == 422 and "49,000,000 pixels" in r.json()["detail"]


def test_web_refuses_extreme_strips_before_decoding(web_engine):
    # 96 x 65540 is only 6.3 M pixels, but BlazeFace letterboxes it into a 65540 px square
    # (12 GB): found by benchmarks/fuzz_api.py (a TIFF height field set to 0x0000ffff)
    buf = io.BytesIO()
    Image.new("L", (96, 65540)).save(buf, format="PNG", optimize=True)
    c = make_client(web_engine)
    r = analyze(c, buf.getvalue(), name="strip.png")
    assert r.status_code == 422 and "longer side" in r.json()["detail"]
    with c.websocket_connect("/api/v1/stream") as ws:
        ws.send_bytes(buf.getvalue())
        assert "longer side" in json.loads(ws.receive_text())["error"]


# -- decoder failures -----------------------------------------------------------------------

def test_dds_and_eps_are_not_opened_at_all():
    with pytest.raises(BadInputError) as err:
        read_image(dds_flags_zero(), name="x.dds")
    assert err.value.problem == NOT_AN_IMAGE
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(BadInputError) as err:  # never handed to Ghostscript
        read_image(eps, name="x.eps")
    assert err.value.problem == NOT_AN_IMAGE


@pytest.mark.parametrize("exc", [NotImplementedError("unsupported"), struct.error("short"),
                                 IndexError("list index"), ZeroDivisionError("div"),
                                 KeyError("tag"), RuntimeError("decoder")])
def test_any_decoder_exception_is_bad_input_and_422(exc, monkeypatch, web_engine):
    from PIL import ImageFile

    def broken_load(self):
        raise exc

    monkeypatch.setattr(ImageFile.ImageFile, "load", broken_load)
    with pytest.raises(BadInputError, match="corrupt or truncated") as err:
        read_image(png_bytes(np.zeros((8, 8), np.uint8)), name="odd.png")
    assert "odd.png" in str(err.value)
    c = make_client(web_engine)
    for path in ("/api/v1/analyze", "/api/v1/trace"):
        r = analyze(c, png_bytes(np.zeros((8, 8), np.uint8)), name="odd.png", path=path)
        assert r.status_code == 422 and "odd.png" in r.json()["detail"], (path, r.text)


def test_dds_upload_is_415_everywhere_and_the_stream_goes_on(web_engine):
    c = make_client(web_engine)
    for path in ("/api/v1/analyze", "/api/v1/trace"):
        r = analyze(c, dds_flags_zero(), name="x.dds", path=path)
        assert r.status_code == 415 and "x.dds" in r.json()["detail"]
    with c.websocket_connect("/api/v1/stream") as ws:
        ws.send_bytes(dds_flags_zero())
        assert "not an image" in json.loads(ws.receive_text())["error"]
        ws.send_bytes(face_jpeg())
        assert len(json.loads(ws.receive_text())["faces"]) == 1


def test_predict_over_a_folder_keeps_the_good_files(tmp_path, tiny_bundle, capsys):
    from ekspresi.cli import main

    (tmp_path / "a_good.jpg").write_bytes(face_jpeg())
    (tmp_path / "b_bad.dds").write_bytes(dds_flags_zero())
    (tmp_path / "c_bad.png").write_bytes(dds_flags_zero())  # DDS bytes under a PNG name
    code = main(["predict", str(tmp_path), "--model", str(tiny_bundle), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    results = {r["file"].rsplit("/", 1)[-1]: r for r in json.loads(out)}
    assert len(results["a_good.jpg"]["faces"]) == 1
    assert "not an image" in results["c_bad.png"]["error"]


def test_data_inspect_skip_bad_survives_undecodable_files(tmp_path, monkeypatch, capsys):
    from ekspresi.cli import main
    from ekspresi.data.synthetic import write_class_folders

    root = write_class_folders(tmp_path / "d", {"happy": 3, "sad": 2})
    (root / "sad" / "weird.png").write_bytes(dds_flags_zero())
    assert main(["data", "inspect", "--skip-bad", str(root)]) == 0
    out = capsys.readouterr()
    assert "weird.png" in out.out + out.err


# -- Host header (DNS rebinding) ------------------------------------------------------------

def test_host_check_refuses_other_names_for_http_and_websocket(web_engine, tmp_path):
    from starlette.websockets import WebSocketDisconnect

    runs = tmp_path / "runs"
    (runs / "r1").mkdir(parents=True)
    (runs / "r1" / "train.log").write_text("secret log")
    (runs / "r1" / "final_metrics.json").write_text("{}")
    evil = make_client(web_engine, base_url="http://evil.example:8000", host="127.0.0.1",
                       runs_dir=runs)
    for path in ("/api/v1/model", "/", "/experiments/r1/train.log", "/healthz"):
        r = evil.get(path)
        assert r.status_code == 400 and "secret" not in r.text, path
        assert "--allowed-host" in r.json()["detail"]
        assert r.headers["x-content-type-options"] == "nosniff"
    r = analyze(evil, face_jpeg(), origin="http://evil.example:8000")
    assert r.status_code == 400
    with pytest.raises(WebSocketDisconnect) as info:
        with evil.websocket_connect("ws://evil.example:8000/api/v1/stream",
                                    headers={"origin": "http://evil.example:8000"}):
            pass
    assert info.value.code == 1008
    for url in ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"):
        ok = make_client(web_engine, base_url=url, host="127.0.0.1", runs_dir=runs)
        assert ok.get("/experiments/r1/train.log").text == "secret log", url
        ws_url = "ws" + url[4:] + "/api/v1/stream"
        with ok.websocket_connect(ws_url, headers={"origin": url}) as ws:
            ws.send_bytes(face_jpeg())
            assert "faces" in json.loads(ws.receive_text())


@pytest.mark.parametrize("bound, allowed, host, ok", [
    ("127.0.0.1", (), "localhost.:80", True),
    ("192.168.1.5", (), "192.168.1.5:8000", True),
    ("127.0.0.1", (), "192.168.1.5:8000", False),
    ("127.0.0.1", ("fer.lan",), "FER.lan:8000", True),
    ("127.0.0.1", ("fer.lan",), "evil.fer.lan", False),
    ("0.0.0.0", (), "10.0.0.7:8000", True),       # any IP literal: no rebinding without a name
    ("0.0.0.0", (), "evil.example:8000", False),
    ("::", (), "[fe80::1]:8000", True),
    ("127.0.0.1", ("*",), "evil.example", True),  # explicitly off
    ("127.0.0.1", (), "bad[host", False),
])
def test_host_names_the_server_answers_to(web_engine, bound, allowed, host, ok):
    c = make_client(web_engine, host=bound, allowed_hosts=allowed)
    r = c.get("/healthz", headers={"host": host})
    assert (r.status_code == 200) is ok, (bound, allowed, host, r.status_code)


def test_serve_passes_host_limits_and_timeouts_to_the_app_and_uvicorn(tmp_path, monkeypatch,
                                                                       tiny_bundle):
    import uvicorn

    from ekspresi.cli import main
    from ekspresi.web import app as app_module
    from ekspresi.web.serving import HeaderDeadlineProtocol

    seen = {}
    real_create = app_module.create_app

    def capture_create(settings, **kw):
        seen["settings"] = settings
        return real_create(settings, **kw)

    def fake_run(server, *a, **k):
        seen["config"] = server.config

    monkeypatch.setattr(app_module, "create_app", capture_create)
    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    assert main(["serve", "--model", str(tiny_bundle), "--host", "127.0.0.2",
                 "--allowed-host", "fer.lan", "--allowed-host", "[fe80::1]",
                 "--max-megapixels", "12", "--max-active", "3", "--max-queue", "5"]) == 0
    s = seen["settings"]
    assert s.host == "127.0.0.2" and s.max_pixels == 12_000_000
    assert (s.max_active, s.max_queue) == (3, 5)
    assert s.host_names() >= {"127.0.0.1", "localhost", "::1", "127.0.0.2", "fer.lan",
                              "fe80::1"}
    cfg = seen["config"]
    assert issubclass(cfg.http, HeaderDeadlineProtocol)
    assert cfg.limit_concurrency and cfg.timeout_keep_alive <= 5
    assert cfg.h11_max_incomplete_event_size <= 64 * 1024
    assert main(["serve", "--allowed-host", "http://x:80"]) == 2
    assert main(["serve", "--max-megapixels", "0"]) == 2


# -- cross-origin uploads -------------------------------------------------------------------

@pytest.mark.parametrize("headers, status", [
    ({}, 200),                                                      # curl, scripts
    ({"origin": "http://testserver", "sec-fetch-site": "same-origin"}, 200),
    ({"sec-fetch-site": "none"}, 200),                              # typed in / bookmarked
    ({"origin": "http://evil.example"}, 403),
    ({"origin": "null"}, 403),                                      # sandboxed frame
    ({"sec-fetch-site": "cross-site"}, 403),
    ({"origin": "http://testserver:3000", "sec-fetch-site": "same-site"}, 403),
    ({"origin": "http://app.example", "sec-fetch-site": "cross-site"}, 200),  # --cors-origin
])
def test_cross_origin_uploads_are_refused(web_engine, headers, status):
    c = make_client(web_engine, cors_origins=("http://app.example",))
    r = analyze(c, face_jpeg(), **headers)
    assert r.status_code == status, r.text
    if status == 403:
        assert "cross-origin" in r.json()["detail"]
    assert c.get("/api/v1/model", headers=headers).status_code == 200  # reads stay open


# -- bounded concurrency ---------------------------------------------------------------------

def _blocking_engine(web_engine, monkeypatch):
    started, release = threading.Event(), threading.Event()
    real = web_engine.recognizer.analyze

    def slow(*a, **k):
        started.set()
        assert release.wait(30)
        return real(*a, **k)

    monkeypatch.setattr(web_engine.recognizer, "analyze", slow)
    return started, release


def test_full_queue_gets_503_with_retry_after(web_engine, monkeypatch):
    started, release = _blocking_engine(web_engine, monkeypatch)
    app = create_app(WebSettings(threads=1, max_active=1, max_queue=0), engine=web_engine)
    with TestClient(app, raise_server_exceptions=False) as c:
        first: list = []
        t = threading.Thread(target=lambda: first.append(analyze(c, face_jpeg())))
        t.start()
        assert started.wait(30)
        busy = analyze(c, face_jpeg())
        assert busy.status_code == 503 and busy.headers["retry-after"].isdigit()
        assert "busy" in busy.json()["detail"]
        assert busy.headers["x-content-type-options"] == "nosniff"
        with c.websocket_connect("/api/v1/stream") as ws:  # frames share the same slots
            ws.send_bytes(face_jpeg())
            answer = json.loads(ws.receive_text())
            assert answer["busy"] is True and "busy" in answer["error"]
        release.set()
        t.join(30)
        assert first[0].status_code == 200
        assert analyze(c, face_jpeg()).status_code == 200  # slots were given back


def test_queued_upload_waits_then_gives_up(web_engine, monkeypatch):
    started, release = _blocking_engine(web_engine, monkeypatch)
    app = create_app(WebSettings(threads=1, max_active=1, max_queue=2, queue_timeout=0.3),
                     engine=web_engine)
    with TestClient(app, raise_server_exceptions=False) as c:
        t = threading.Thread(target=lambda: analyze(c, face_jpeg()))
        t.start()
        assert started.wait(30)
        r = analyze(c, face_jpeg())
        assert r.status_code == 503 and "waited" in r.json()["detail"]
        release.set()
        t.join(30)
        gate = app.state.upload_gate
        assert (gate.active, gate.admitted) == (0, 0)


def test_gate_hands_slots_over_in_order():
    import asyncio

    from ekspresi.web.middleware import Busy, UploadGate

    async def scenario():
        gate = UploadGate(max_active=1, max_queue=1, timeout=5)
        order = []

        async def job(name, hold):
            async with gate.slot():
                order.append(name)
                await asyncio.sleep(hold)

        first = asyncio.create_task(job("a", 0.05))
        await asyncio.sleep(0)
        second = asyncio.create_task(job("b", 0))
        await asyncio.sleep(0)
        with pytest.raises(Busy):  # one running + one queued: full
            async with gate.slot():
                pass
        await asyncio.gather(first, second)
        return order, gate.active, gate.admitted

    assert asyncio.run(scenario()) == (["a", "b"], 0, 0)


# -- slow clients, disconnects (real uvicorn) -------------------------------------------------

class Server(LiveServer):
    def connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port))
        s.settimeout(20)
        return s


def _closed_by_server(s: socket.socket, trickle: bytes = b"") -> bool:
    """True once the server closes ``s`` (while we trickle ``trickle`` byte by byte)."""
    try:
        for b in trickle:
            s.sendall(bytes([b]))
            time.sleep(0.05)
        return s.recv(100) == b""
    except OSError:  # reset or broken pipe: closed as well
        return True


def test_idle_and_trickling_connections_are_closed(web_engine):
    app = create_app(WebSettings(threads=1), engine=web_engine)
    with Server(app, header_timeout=0.5) as srv:
        idle = srv.connect()
        assert _closed_by_server(idle)
        slow = srv.connect()
        assert _closed_by_server(slow, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: "
                                       + b"a" * 400)
        # a normal client on a keep-alive connection is not affected
        ok = srv.connect()
        ok.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert ok.recv(100).startswith(b"HTTP/1.1 200")
        # nor is a WebSocket that stays open longer than the header deadline
        from websockets.sync.client import connect

        with connect(f"ws://127.0.0.1:{srv.port}/api/v1/stream") as ws:
            time.sleep(1.0)
            ws.send(face_jpeg())
            assert "faces" in json.loads(ws.recv(timeout=30))


def _read_all(s: socket.socket) -> bytes:
    got = b""
    try:
        while chunk := s.recv(65536):
            got += chunk
    except OSError:
        pass
    return got


def test_endless_request_head_is_cut(web_engine, monkeypatch):
    """Our own head limit (serving.MAX_HEAD_READ_BYTES) cuts an endless request head with
    our 400, at that limit: a head below it is served, one above it is refused (h11's or
    anything else's limit would give another answer or none)."""
    from ekspresi.web import serving

    monkeypatch.setattr(serving, "MAX_HEAD_READ_BYTES", 200_000)
    app = create_app(WebSettings(threads=1), engine=web_engine)
    with Server(app, header_timeout=60) as srv:  # the deadline is not what closes it
        s = srv.connect()   # 150 kB of headers, then the end of the head: served
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                  + b"".join(b"X-Pad%d: " % i + b"a" * 15_000 + b"\r\n" for i in range(10))
                  + b"\r\n")
        assert _read_all(s).startswith(b"HTTP/1.1 200")
        s = srv.connect()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            for i in range(40):  # 2.6 MB of headers, never finished
                s.sendall(b"X-Pad%d: " % i + b"a" * 65_000 + b"\r\n")
        except OSError:
            pass
        answer = _read_all(s)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
        assert answer.endswith(b"Request header too large."), answer[-200:]


def test_slow_upload_gets_408(web_engine):
    app = create_app(WebSettings(threads=1, body_timeout=0.5), engine=web_engine)
    with Server(app) as srv:
        s = srv.connect()
        s.sendall(b"POST /api/v1/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: image/jpeg\r\nContent-Length: 5000\r\n\r\n" + b"x" * 100)
        answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive" in answer


def test_disconnect_mid_upload_is_one_log_line(web_engine, caplog):
    app = create_app(WebSettings(threads=1), engine=web_engine)
    with caplog.at_level(logging.INFO):
        with Server(app) as srv:
            s = srv.connect()
            s.sendall(b"POST /api/v1/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: multipart/form-data; boundary=xyz\r\n"
                      b"Content-Length: 100000\r\n\r\n--xyz\r\nContent-Disposition: form-data;"
                      b" name=\"file\"; filename=\"a.jpg\"\r\n\r\n" + b"x" * 5000)
            time.sleep(0.2)
            s.close()
            deadline = time.monotonic() + 20
            while not any("disconnected" in r.getMessage() for r in caplog.records):
                assert time.monotonic() < deadline
                time.sleep(0.05)
    lines = [r for r in caplog.records if "/api/v1/analyze" in r.getMessage()]
    assert len(lines) == 1 and " 499 " in lines[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


# -- experiments: sandboxed files, odd metrics ------------------------------------------------

def test_run_files_are_sandboxed_and_odd_metrics_are_skipped(web_engine, tmp_path):
    runs = tmp_path / "runs"
    for name, metrics in (("good", {"splits": {"test": {"accuracy": 0.7}}}), ("listy", [1, 2]),
                          ("number", 3), ("text", "hi")):
        (runs / name).mkdir(parents=True)
        (runs / name / "final_metrics.json").write_text(json.dumps(metrics))
    svg = ("<svg xmlns='http://www.w3.org/2000/svg'><script>fetch('/api/v1/model')"
           "</script></svg>")
    (runs / "good" / "plot.svg").write_text(svg)
    (runs / "good" / "report.html").write_text("<html><body>report</body></html>")
    c = make_client(web_engine, runs_dir=runs)
    page = c.get("/experiments", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "good" in page.text and page.text.count("not an object") == 3
    r = c.get("/experiments/good/plot.svg")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "sandbox" in csp and "allow-scripts" not in csp
    assert "sandbox" in c.get("/experiments/good/report.html").headers[
        "content-security-policy"]


# -- headers on errors, media types, WebSocket failures, saliency cap -------------------------

def test_error_responses_carry_the_security_headers(web_engine, monkeypatch):
    c = make_client(web_engine)
    answers = {
        "404 json": c.get("/api/v1/nothing"),
        "404 html": c.get("/nothing", headers={"accept": "text/html"}),
        "413": analyze(make_client(web_engine, max_upload_mb=0.01), b"\0" * 100_000),
        "415": analyze(c, b"not an image"),
        "403": analyze(c, face_jpeg(), origin="http://evil.example"),
    }

    def explode(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(web_engine.recognizer, "analyze", explode)
    answers["500 json"] = analyze(c, face_jpeg())
    monkeypatch.setattr("ekspresi.web.pages.build_card", explode)
    answers["500 html"] = c.get("/about", headers={"accept": "text/html"})
    for what, r in answers.items():
        assert str(r.status_code) == what.split()[0], (what, r.status_code)
        assert r.headers.get("x-content-type-options") == "nosniff", what
        assert r.headers.get("x-frame-options") == "DENY", what
        assert r.headers.get("referrer-policy") == "no-referrer", what
        if r.headers["content-type"].startswith("text/html"):
            assert "script-src 'self'" in r.headers["content-security-policy"], what
    assert "boom" not in answers["500 json"].text


def test_unhandled_error_is_logged_once(web_engine, monkeypatch, caplog):
    def explode(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(web_engine.recognizer, "analyze", explode)
    with caplog.at_level(logging.INFO):
        r = analyze(make_client(web_engine), face_jpeg())
    assert r.status_code == 500
    assert len([rec for rec in caplog.records if rec.exc_info]) == 1


def test_content_type_is_matched_case_insensitively(web_engine):
    c = make_client(web_engine)
    boundary = "xYz123"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode() \
        + face_jpeg() + f"\r\n--{boundary}--\r\n".encode()
    r = c.post("/api/v1/analyze", content=body,
               headers={"content-type": f"Multipart/Form-Data; boundary={boundary}"})
    assert r.status_code == 200 and len(r.json()["faces"]) == 1
    page = c.get("/no-such-page", headers={"accept": "TEXT/HTML"})
    assert page.status_code == 404 and "<nav" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_page_csp_is_added_whatever_the_case_of_the_content_type():
    import asyncio

    from ekspresi.web.middleware import SecurityHeadersMiddleware

    async def page(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"Content-Type", b"Text/HTML; charset=utf-8")]})
        await send({"type": "http.response.body", "body": b"<p>hi</p>"})

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    app = SecurityHeadersMiddleware(page, page_csp="default-src 'self'")
    asyncio.run(app({"type": "http", "path": "/", "headers": []}, receive, send))
    assert (b"content-security-policy", b"default-src 'self'") in sent[0]["headers"]


def test_websocket_failure_closes_with_1011(web_engine, monkeypatch):
    from starlette.websockets import WebSocketDisconnect

    def explode(*a, **k):
        raise RuntimeError("boom")

    # the classifier, which every frame reaches whether its faces were detected or tracked
    monkeypatch.setattr(web_engine.recognizer.classifier, "predict_proba", explode)
    c = make_client(web_engine)
    with c.websocket_connect("/api/v1/stream") as ws:
        ws.send_bytes(face_jpeg())
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
    assert info.value.code == 1011


def test_trace_caps_the_faces_it_computes_saliency_for(web_engine):
    face = np.asarray(Image.open(io.BytesIO(face_jpeg())).convert("RGB"))
    two = np.concatenate([face, face[:, ::-1]], axis=1)
    buf = io.BytesIO()
    Image.fromarray(two).save(buf, format="JPEG", quality=90)
    c = make_client(web_engine, trace_saliency_faces=1)
    out = analyze(c, buf.getvalue(), path="/api/v1/trace").json()
    assert len(out["faces"]) == 2
    with_saliency = [any(s["key"] == "saliency" for s in f["stages"]) for f in out["faces"]]
    assert with_saliency == [True, False]
