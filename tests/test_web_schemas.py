"""Every JSON endpoint and WebSocket message of the API validates against its pydantic
response model, and ``/openapi.json`` names those models."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from infer_support import photo_bgr

from ekspresi.web import schemas

pytest.importorskip("fastapi.testclient")


def jpeg() -> bytes:
    return cv2.imencode(".jpg", photo_bgr())[1].tobytes()


def upload(client, path: str, data: bytes, name: str = "a.jpg", **params):
    r = client.post(path, params=params, files={"file": (name, data, "application/octet-stream")})
    assert r.status_code == 200, r.text
    return r.json()


def clip_bytes(tmp_path) -> bytes:
    path = tmp_path / "c.avi"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    face = cv2.resize(photo_bgr()[10:250, 120:330], (150, 170))
    for i in range(4):
        frame = np.full((240, 320, 3), 100, np.uint8)
        frame[30:200, 40 + 4 * i:190 + 4 * i] = face
        vw.write(frame)
    vw.release()
    return path.read_bytes()


def test_every_json_endpoint_validates_against_its_model(client, tmp_path):
    answers = {
        schemas.HealthOut: client.get("/healthz").json(),
        schemas.ModelInfoOut: client.get("/api/v1/model").json(),
        schemas.AnalyzeOut: upload(client, "/api/v1/analyze", jpeg(), preview="true"),
        schemas.TraceOut: upload(client, "/api/v1/trace", jpeg()),
        schemas.VideoOut: upload(client, "/api/v1/video", clip_bytes(tmp_path), "c.avi"),
    }
    for model, answer in answers.items():
        model.model_validate(answer)   # extra keys are forbidden: the model is the whole shape
    assert answers[schemas.AnalyzeOut]["faces"][0]["number"] == 1
    assert answers[schemas.TraceOut]["faces"][0]["stages"]
    assert answers[schemas.VideoOut]["tracks"][0]["frames"] >= 1


def test_websocket_messages_validate_against_their_models(client):
    with client.websocket_connect("/api/v1/stream") as ws:
        ws.send_bytes(jpeg())
        schemas.StreamFrameOut.model_validate(json.loads(ws.receive_text()))
        ws.send_bytes(b"garbage")
        schemas.StreamErrorOut.model_validate(json.loads(ws.receive_text()))


def test_openapi_names_the_response_models(client):
    spec = client.get("/openapi.json").json()
    names = set(spec["components"]["schemas"])
    assert {"HealthOut", "ModelInfoOut", "AnalyzeOut", "TraceOut", "VideoOut", "FaceModel",
            "StreamFrameOut", "StreamErrorOut"} <= names
    ok = {path: spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]
          ["schema"]["$ref"].rsplit("/", 1)[-1]
          for path, method in (("/healthz", "get"), ("/api/v1/model", "get"),
                               ("/api/v1/analyze", "post"), ("/api/v1/trace", "post"),
                               ("/api/v1/video", "post"))}
    assert ok == {"/healthz": "HealthOut", "/api/v1/model": "ModelInfoOut",
                  "/api/v1/analyze": "AnalyzeOut", "/api/v1/trace": "TraceOut",
                  "/api/v1/video": "VideoOut"}
    text = json.dumps(spec)   # every $ref (the stream's models' too) resolves
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        node = spec
        for key in ref.lstrip("#/").split("/"):
            node = node[key]
