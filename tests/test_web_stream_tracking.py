"""The real-time WebSocket follows faces and smooths their probabilities, per connection:
one person keeps one ``track_id`` while moving, the smoothed ``scores`` change less from
frame to frame than the frame's own ``raw_scores`` (over the client's capture times, not
arrival times), ``?smoothing=0`` answers the raw scores, and two connections share
nothing. Frames are the face photo fixture on a textured background, made here."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from web_support import face_jpeg

from ekspresi.web.app import create_app
from ekspresi.web.settings import WebSettings

fastapi_testclient = pytest.importorskip("fastapi.testclient")


@pytest.fixture(scope="module")
def client(web_engine):
    app = create_app(WebSettings(threads=1), engine=web_engine)
    with fastapi_testclient.TestClient(app) as c:
        yield c


def _face() -> np.ndarray:
    img = Image.open(io.BytesIO(face_jpeg())).convert("RGB")
    return np.asarray(img.resize((150, 150)))


def frame_jpeg(x: int, variant: int = 0, size=(360, 240)) -> bytes:
    """The face at ``x`` px from the left on a checkerboard; ``variant`` 1 is the face
    with its contrast flattened (another answer from the model, same place)."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    bg = (((xx // 8 + yy // 8) % 2) * 40 + 80).astype(np.uint8)
    frame = np.repeat(bg[:, :, None], 3, axis=2)
    face = _face().astype(np.float32)
    if variant:
        face = (face - face.mean()) * 0.45 + face.mean() + 30
    frame[40:190, x:x + 150] = np.clip(face, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def send(ws, data: bytes, t: float | None = None) -> dict:
    if t is not None:
        ws.send_text(json.dumps({"time": t}))
    ws.send_bytes(data)
    out = json.loads(ws.receive_text())
    assert "error" not in out, out
    return out


def alternating(n: int = 12) -> list[bytes]:
    return [frame_jpeg(100, i % 2) for i in range(n)]


def jumps(faces: list[dict], key: str) -> float:
    """Mean L1 change of ``faces[i][key]`` from one frame to the next."""
    rows = [np.array(list(f[key].values())) for f in faces]
    return float(np.mean([np.abs(a - b).sum() for a, b in zip(rows, rows[1:])]))


def test_a_moving_face_keeps_one_track_id(client):
    with client.websocket_connect("/api/v1/stream") as ws:
        answers = [send(ws, frame_jpeg(40 + 4 * i), t=5.0 + i / 10) for i in range(12)]
    assert all(len(a["faces"]) == 1 for a in answers)
    assert {a["faces"][0]["track_id"] for a in answers} == {1}
    assert any(a["faces"][0].get("tracked") for a in answers)   # carried between detections
    xs = [a["faces"][0]["box"][0] for a in answers]
    assert xs[-1] - xs[0] >= 30                                   # the box moved with it
    assert [a["time"] for a in answers] == pytest.approx([i / 10 for i in range(12)])


def test_smoothed_scores_change_less_than_the_raw_ones(client):
    with client.websocket_connect("/api/v1/stream") as ws:
        faces = [send(ws, f, t=i / 10)["faces"][0] for i, f in enumerate(alternating())]
    assert {f["track_id"] for f in faces} == {1}
    assert all(f["smoothed"] for f in faces)
    raw, shown = jumps(faces, "raw_scores"), jumps(faces, "scores")
    assert raw > 0.02                            # the two pictures do get other answers
    assert shown < 0.5 * raw
    for f in faces:                              # label and confidence follow the shown scores
        assert f["label"] == max(f["scores"], key=f["scores"].get)
        assert f["confidence"] == pytest.approx(f["scores"][f["label"]])


def test_smoothing_runs_on_the_client_s_capture_times(client):
    # frames 10 s apart on the client's clock (20 time constants), though they arrive at
    # once: each answer is (nearly) the frame's own
    with client.websocket_connect("/api/v1/stream") as ws:
        faces = [send(ws, f, t=10.0 * i)["faces"][0] for i, f in enumerate(alternating(6))]
    for f in faces:
        assert f["scores"] == pytest.approx(f["raw_scores"], abs=1e-4)


def test_smoothing_off_answers_the_raw_scores(client):
    with client.websocket_connect("/api/v1/stream") as ws:
        on = [send(ws, f, t=i / 10) for i, f in enumerate(alternating(6))]
    with client.websocket_connect("/api/v1/stream?smoothing=0") as ws:
        off = [send(ws, f, t=i / 10) for i, f in enumerate(alternating(6))]
    assert {a["smoothing_s"] for a in on} == {0.5} and {a["smoothing_s"] for a in off} == {0}
    for a, b in zip(on, off):
        face = b["faces"][0]
        assert "smoothed" not in face and "raw_scores" not in face and face["track_id"] == 1
        assert face["scores"] == pytest.approx(a["faces"][0]["raw_scores"], abs=1e-5)
    assert jumps([a["faces"][0] for a in off], "scores") > 0.02


def test_two_connections_share_no_tracks_or_smoothing(client):
    frames = alternating(6)
    with client.websocket_connect("/api/v1/stream") as a, \
            client.websocket_connect("/api/v1/stream") as b:
        for i in range(5):
            send(a, frames[i % 2], t=i / 10)
        first = send(b, frames[1], t=100.0)       # b's first frame: no history from a
        face = first["faces"][0]
        assert first["frame"] == 1 and first["time"] == 0 and face["track_id"] == 1
        assert face["scores"] == pytest.approx(face["raw_scores"], abs=1e-6)
        # a goes on with its own history: its answer to the same picture is smoothed
        later = send(a, frames[1], t=0.5)["faces"][0]
        assert later["track_id"] == 1
        assert later["scores"] != pytest.approx(later["raw_scores"], abs=1e-3)


def test_bad_smoothing_and_time_messages_are_refused(client):
    from starlette.websockets import WebSocketDisconnect

    with client.websocket_connect("/api/v1/stream?smoothing=soon") as ws:
        assert "smoothing" in json.loads(ws.receive_text())["error"]
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert info.value.code == 1008
    with client.websocket_connect("/api/v1/stream") as ws:
        for text in ('{"time": "noon"}', '{"time": 1, "x": 2}', "[1]", '{"time": NaN}'):
            ws.send_text(text)
            assert "binary" in json.loads(ws.receive_text())["error"]
        assert len(send(ws, frame_jpeg(100))["faces"]) == 1   # the stream goes on
