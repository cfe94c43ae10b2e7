"""The holes a second attack run on `ekspresi serve` found (issue 23), each reproduced:
video frames above the image limits, idle WebSockets locking HTTP out, temporary clips left
after SIGTERM, work going on after the client left, a symlinked run folder serving files
from elsewhere, API answers without ``Cache-Control: no-store``. (CSV formula injection is
in test_csv_safety.py.)"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np
import pytest
from infer_support import write_clip
from web_support import LiveServer, face_jpeg, free_port

fastapi_testclient = pytest.importorskip("fastapi.testclient")
from fastapi.testclient import TestClient  # noqa: E402

from ekspresi.web.app import create_app  # noqa: E402
from ekspresi.web.settings import WebSettings  # noqa: E402


def make_client(engine, **settings) -> TestClient:
    return TestClient(create_app(WebSettings(threads=1, **settings), engine=engine),
                      raise_server_exceptions=False)


def _post_video(client, path: Path, name: str | None = None, **query):
    return client.post("/api/v1/video", params=query,
                       files={"file": (name or path.name, path.read_bytes(), "video/x-msvideo")})


def _store_root(client) -> Path | None:
    store = getattr(client.app.state, "videos", None)
    return None if store is None else store.root


# -- 1: video frames get the image limits -------------------------------------------------------

def _black_clip(path: Path, width: int, height: int, frames: int = 1) -> Path:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (width, height))
    assert vw.isOpened()
    for _ in range(frames):
        vw.write(np.zeros((height, width, 3), np.uint8))
    vw.release()
    return path


def test_a_huge_video_frame_is_refused_from_the_header(web_engine, tmp_path):
    """One black 7000x7000 frame as MJPEG AVI (a few hundred KB): the same pixels as a JPEG
    get 422 from /api/v1/analyze, and now from /api/v1/video too, before any analysis."""
    path = _black_clip(tmp_path / "huge.avi", 7000, 7000)
    assert path.stat().st_size < 2_000_000
    c = make_client(web_engine)
    r = _post_video(c, path)
    assert r.status_code == 422, r.text
    assert "7000x7000" in r.json()["detail"] and "limit" in r.json()["detail"]
    root = _store_root(c)
    assert root is None or not any(root.iterdir())      # no temporary file left


def test_video_frames_above_the_pixel_or_side_limit_are_refused(web_engine, tmp_path):
    clip = write_clip(tmp_path / "c.avi", frames=3, fourcc="MJPG")     # 320x240
    c = make_client(web_engine, max_pixels=320 * 240 - 1)
    r = _post_video(c, clip)
    assert r.status_code == 422 and "320x240" in r.json()["detail"]
    assert not any(_store_root(c).iterdir())
    ok = make_client(web_engine, max_pixels=320 * 240)
    assert _post_video(ok, clip, every=3).status_code == 200
    wide = _black_clip(tmp_path / "wide.avi", 8200, 16)
    r = _post_video(make_client(web_engine), wide)
    assert r.status_code == 422 and "longer side" in r.json()["detail"]


# -- 2: idle WebSockets cannot lock HTTP out ----------------------------------------------------

def _healthz(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        return s.recv(100)


def test_idle_websockets_leave_http_answering(web_engine):
    """70 idle WebSockets (no Origin, nothing sent), more than uvicorn's 64 connections:
    /healthz still answers 200, because streams beyond ``max_streams`` are closed."""
    from websockets.sync.client import connect

    settings = WebSettings(threads=1)
    from ekspresi.web.serving import MAX_CONNECTIONS

    assert settings.max_streams < MAX_CONNECTIONS - 8
    app = create_app(settings, engine=web_engine)
    sockets = []
    with LiveServer(app) as srv, ExitStack() as stack:
        for _ in range(70):
            try:
                sockets.append(stack.enter_context(
                    connect(f"ws://127.0.0.1:{srv.port}/api/v1/stream", open_timeout=10)))
            except Exception:  # noqa: BLE001 - a refused handshake is a refusal too
                pass
        deadline = time.monotonic() + 20
        answer = _healthz(srv.port)
        while not answer.startswith(b"HTTP/1.1 200") and time.monotonic() < deadline:
            time.sleep(0.2)
            answer = _healthz(srv.port)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert app.state.streams == settings.max_streams
        closed = [ws for ws in sockets if ws.close_code is not None]
        assert closed and all(ws.close_code == 1013 for ws in closed)
        # the streams that are open still work
        live = next(ws for ws in sockets if ws.close_code is None)
        live.send(face_jpeg())
        assert "faces" in json.loads(live.recv(timeout=30))


def test_an_idle_websocket_is_closed(web_engine):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    app = create_app(WebSettings(threads=1, stream_idle_timeout=0.5), engine=web_engine)
    with LiveServer(app) as srv:
        with connect(f"ws://127.0.0.1:{srv.port}/api/v1/stream") as ws:
            ws.send(face_jpeg())                    # an active stream is not cut
            assert "faces" in json.loads(ws.recv(timeout=30))
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=20)                 # then nothing sent: closed
            assert ws.close_code == 1000 and "no frame" in (ws.close_reason or "")
        deadline = time.monotonic() + 10
        while app.state.streams and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.streams == 0


# -- 4: temporary clips go on SIGTERM ----------------------------------------------------------

def test_sigterm_removes_the_temporary_clips(tiny_bundle, tmp_path):
    """The real `ekspresi serve` in a subprocess: a clip is analysed (its folder holds the
    annotated clip), SIGTERM stops the server, and no ekspresi-videos-* folder is left."""
    import httpx

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    clip = write_clip(tmp_path / "c.avi", frames=4, fourcc="MJPG")
    port = free_port()
    env = dict(os.environ, TMPDIR=str(tmp), OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                           os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "ekspresi", "serve", "--model",
                             str(tiny_bundle), "--host", "127.0.0.1", "--port", str(port),
                             "--threads", "1"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            try:
                if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        r = httpx.post(url + "/api/v1/video?every=2", timeout=60,
                       files={"file": ("c.avi", clip.read_bytes(), "video/x-msvideo")})
        assert r.status_code == 200, r.text
        folders = list(tmp.glob("ekspresi-videos-*"))
        assert len(folders) == 1 and list(folders[0].glob("*/annotated.*"))
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not list(tmp.glob("ekspresi-videos-*"))


# -- 5: work stops when the client leaves -------------------------------------------------------

def test_video_analysis_stops_when_the_client_disconnects(web_engine, tmp_path, monkeypatch):
    import ekspresi.web.videos as videos

    frames = 150
    clip = _black_clip(tmp_path / "long.avi", 160, 120, frames=frames)
    seen = {"frames": 0, "outcome": None}
    done = threading.Event()
    real = videos.analyze_video

    def counting(recognizer, path, *, progress=None, **kw):
        def tick(n):
            seen["frames"] += n
            time.sleep(0.02)     # at least 3 s of work for the whole clip
            if progress is not None:
                progress(n)
        try:
            out = real(recognizer, path, progress=tick, **kw)
            seen["outcome"] = "finished"
            return out
        except Exception as exc:
            seen["outcome"] = type(exc).__name__
            raise
        finally:
            done.set()

    monkeypatch.setattr(videos, "analyze_video", counting)
    app = create_app(WebSettings(threads=1), engine=web_engine)
    with LiveServer(app) as srv:
        body = clip.read_bytes()
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
        s.sendall(b"POST /api/v1/video?every=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: video/x-msvideo\r\nContent-Length: %d\r\n\r\n" % len(body)
                  + body)
        deadline = time.monotonic() + 30
        while seen["frames"] < 5:
            assert time.monotonic() < deadline, "the analysis did not start"
            time.sleep(0.01)
        s.close()                                   # the client goes away
        assert done.wait(60)
    assert seen["outcome"] == "Cancelled"
    assert seen["frames"] < frames


# -- 6: run files stay inside --runs ------------------------------------------------------------

def test_a_symlinked_run_folder_outside_runs_is_not_served(web_engine, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "final_metrics.json").write_text(json.dumps({"splits": {"test": {}}}))
    (outside / "report.html").write_text("<html><body>secret</body></html>")
    (outside / "secret.txt").write_text("secret")
    runs = tmp_path / "runs"
    (runs / "real").mkdir(parents=True)
    (runs / "real" / "final_metrics.json").write_text(json.dumps({"splits": {"test": {}}}))
    (runs / "real" / "report.html").write_text("<html><body>mine</body></html>")
    (runs / "linked").symlink_to(outside, target_is_directory=True)
    c = make_client(web_engine, runs_dir=runs)
    assert c.get("/experiments/real/report.html").status_code == 200
    for path in ("/experiments/linked/report.html", "/experiments/linked/secret.txt",
                 "/experiments/linked/final_metrics.json", "/experiments/linked/"):
        assert c.get(path, follow_redirects=False).status_code == 404, path
    page = c.get("/experiments", headers={"accept": "text/html"}).text
    assert "real" in page and "linked" not in page


# -- 7: no caching of API answers ----------------------------------------------------------------

def test_api_answers_are_not_cached(web_engine, tmp_path):
    c = make_client(web_engine)
    answers = [c.get("/api/v1/model"),
               c.post("/api/v1/analyze?preview=true",
                      files={"file": ("f.jpg", face_jpeg(), "image/jpeg")}),
               c.post("/api/v1/analyze", content=b"not an image"),        # errors too
               c.get("/api/v1/video/nonexistent0/clip")]
    clip = write_clip(tmp_path / "c.avi", frames=2, fourcc="MJPG")
    video = _post_video(c, clip)
    answers += [video, c.get(video.json()["csv_url"]), c.get(video.json()["clip_url"])]
    for r in answers:
        assert r.headers.get("cache-control") == "no-store", (r.request.url, r.status_code)
    assert "no-store" not in c.get("/static/js/common.js").headers.get("cache-control", "")
