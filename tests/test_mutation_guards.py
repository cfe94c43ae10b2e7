"""Tests that check the behaviour a mutation audit found unguarded (issue 23): the label
`ekspresi predict` writes is the most likely class in every format, and the int8 figures of
`ekspresi export --int8` are measured on the int8 graph. (Resume applying its checkpoint is
in test_train.py, beside the other resume tests and their fixtures.)"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from infer_support import FIXTURES, PHOTO, run_cli

from ekspresi.infer import output
from ekspresi.infer.results import FailedInput, ImageResult, VideoResult
from ekspresi.infer.types import Face

CLASSES = ("angry", "happy", "sad", "neutral")


def _face(scores: list[float], x: int, track: int | None = None) -> Face:
    return Face(box=(x, 10, 40, 40), detection_score=0.9,
                scores=dict(zip(CLASSES, scores)), number=None, track_id=track)


def _results() -> list:
    # the most likely class differs from the first, the last and the least likely one
    a = _face([0.1, 0.2, 0.6, 0.1], 0)
    b = _face([0.05, 0.7, 0.2, 0.05], 100)
    c = _face([0.3, 0.05, 0.25, 0.4], 200)
    image = ImageResult(faces=[a, b, c], width=320, height=240, file="=img.jpg")
    frames = [ImageResult(faces=[_face([0.2, 0.1, 0.1, 0.6], 10, track=1)], width=320,
                          height=240, frame=i, time=i / 10) for i in range(3)]
    video = VideoResult(frames=frames, frames_read=3, fps=10.0, width=320, height=240,
                        file="clip.avi")
    return [image, video, FailedInput("bad.jpg", "cannot decode")]


def _argmax(scores: dict[str, float]) -> str:
    return max(scores, key=scores.__getitem__)


def _check_csv(text: str) -> int:
    rows = list(csv.DictReader(io.StringIO(text)))
    checked = 0
    for row in rows:
        if not row["label"]:
            continue
        probs = {k[2:]: float(v) for k, v in row.items() if k.startswith("p_")}
        assert row["label"] == _argmax(probs), row
        assert float(row["confidence"]) == pytest.approx(max(probs.values()), abs=1e-6)
        checked += 1
    return checked


def _check_table(text: str) -> int:
    checked = 0
    for line in text.splitlines()[2:]:
        if "=" not in line.split("  ")[-1]:
            continue
        top = dict(kv.split("=") for kv in line.split()[-3:])
        top = {k: float(v) for k, v in top.items()}
        best = _argmax(top)
        cells = [c for c in line.split("  ") if c.strip()]
        label_cell = next(c.strip() for c in cells if c.strip().split(" ")[0] in CLASSES)
        assert label_cell.split(" ")[0] == best, line
        checked += 1
    return checked


def _check_json(text: str) -> int:
    checked = 0
    for doc in json.loads(text):
        for face in doc.get("faces", []) + [f for fr in doc.get("frames", [])
                                            for f in fr.get("faces", [])]:
            assert face["label"] == _argmax(face["scores"]), face
            assert face["confidence"] == pytest.approx(max(face["scores"].values()))
            checked += 1
    return checked


def test_output_formats_follow_the_scores():
    """Table, CSV and JSON: every face's label is the argmax of the scores printed with it."""
    results = _results()
    assert _check_csv(output.to_csv(results)) == 6      # 3 faces + 3 video frames
    assert _check_table(output.to_table(results)) == 4  # 3 faces + 1 track
    assert _check_json(output.to_json(results)) >= 3
    # the labels are the expected classes, not merely consistent with each other
    rows = list(csv.DictReader(io.StringIO(output.to_csv(results[:1]))))
    assert [r["label"] for r in rows] == ["sad", "happy", "neutral"]


def test_predict_labels_are_the_argmax(capsys, conv_bundle, tmp_path):
    """End to end through `ekspresi predict` on a real photo, in all three formats."""
    for fmt, check in (("json", _check_json), ("csv", _check_csv), ("table", _check_table)):
        code, out, _ = run_cli(capsys, "predict", PHOTO, "--model", conv_bundle,
                               "--format", fmt)
        assert code == 0, fmt
        assert check(out) >= 1, fmt


def _constant_graph(size: int, n_classes: int, winner: int) -> bytes:
    """An ONNX graph with the bundle's input and output that always answers ``winner``."""
    from bundles import _model
    from onnx import numpy_helper as nh
    from onnx.helper import make_node as node

    w = np.zeros((size * size, n_classes), np.float32)
    b = np.zeros(n_classes, np.float32)
    b[winner] = 5.0
    nodes = [node("Flatten", ["input"], ["flat"], axis=1),
             node("MatMul", ["flat", "W"], ["mm"]),
             node("Add", ["mm", "B"], ["logits"])]
    return _model(nodes, [nh.from_array(w, "W"), nh.from_array(b, "B")], size, n_classes)


def test_int8_figures_come_from_the_int8_graph(capsys, conv_bundle, tmp_path, monkeypatch):
    """Plant an 'int8' graph that disagrees with the float one: the reported int8 accuracy
    and agreement must be what that graph scores, not the float graph's figures."""
    import ekspresi.export.int8 as int8
    from ekspresi.export.package import load_dataset_faces
    from ekspresi.infer import Classifier
    from ekspresi.infer.bundle import load_bundle

    bundle = load_bundle(conv_bundle)
    data = FIXTURES / "datasets" / "fer2013"
    evalset = load_dataset_faces(str(data), bundle.classes, 48, "test")
    fp32 = Classifier(conv_bundle, threads=1).logits(evalset.faces).argmax(1)
    counts = np.bincount(fp32, minlength=len(bundle.classes))
    winner = int(np.argmin(counts))          # the class the float graph says least often
    planted = _constant_graph(48, len(bundle.classes), winner)

    def fake_quantize(src, dst, calibration, input_name):
        from pathlib import Path

        Path(dst).write_bytes(planted)
        return "planted constant graph"

    monkeypatch.setattr(int8, "quantize_int8", fake_quantize)
    code, _, err = run_cli(capsys, "export", conv_bundle, "--int8", "--data", data,
                           "-o", tmp_path / "q")
    assert code == 0, err
    q = load_bundle(tmp_path / "q").metadata["quantization"]
    assert q["method"] == "planted constant graph"
    want_fp32 = float((fp32 == evalset.labels).mean())
    want_int8 = float((evalset.labels == winner).mean())
    want_agree = float((fp32 == winner).mean())
    assert want_agree < 1.0                  # the planted graph does disagree
    assert q["fp32_accuracy"] == pytest.approx(want_fp32, abs=1e-5)
    assert q["int8_accuracy"] == pytest.approx(want_int8, abs=1e-5)
    assert q["prediction_agreement"] == pytest.approx(want_agree, abs=1e-5)
    assert q["accuracy_drop"] == pytest.approx(want_fp32 - want_int8, abs=1e-5)


def test_int8_headline_follows_the_runs_own_data_only(capsys, make_bundle, tmp_path):
    """`export --int8 --data` on the data source the model was trained on measures its own
    test split: the bundle's headline test accuracy becomes the int8 graph's, and the float
    one is kept as `fp32_accuracy`. On another data set the int8 figures only go into
    `quantization` and the headline test accuracy stays the model's own. Without
    `--calib-data`, calibration uses the train split of the `--data` set."""
    from ekspresi.infer.bundle import load_bundle

    own = str(FIXTURES / "datasets" / "fer2013")
    other = str(FIXTURES / "datasets" / "kdef")
    src = make_bundle("conv", training={"config": {"data": {"sources": [own]}}},
                      metrics={"splits": {"test": {"accuracy": 0.123, "n_samples": 99}}})

    code, _, err = run_cli(capsys, "export", src, "--int8", "--data", own,
                           "-o", tmp_path / "own")
    assert code == 0, err
    b = load_bundle(tmp_path / "own")
    q, test = b.metadata["quantization"], b.metrics["splits"]["test"]
    assert q["evaluation"]["faces"] == 7 and "test split" in q["evaluation"]["data"]
    assert own in q["calibration"]["data"] and "train split" in q["calibration"]["data"]
    assert test["accuracy"] == pytest.approx(q["int8_accuracy"], abs=1e-5)
    assert test["fp32_accuracy"] == pytest.approx(0.123)      # the run's own float figure
    assert test["n_samples"] == 7

    code, _, err = run_cli(capsys, "export", src, "--int8", "--data", other,
                           "-o", tmp_path / "other")
    assert code == 0, err
    b = load_bundle(tmp_path / "other")
    q, test = b.metadata["quantization"], b.metrics["splits"]["test"]
    assert q["evaluation"]["faces"] == 14 and other in q["evaluation"]["data"]
    assert other in q["calibration"]["data"]
    assert test["accuracy"] == pytest.approx(0.123) and test["n_samples"] == 99
    assert "fp32_accuracy" not in test


def _run_with_test_split(make_bundle, run, **bundle_fields):
    """A run folder: its bundle, and predictions_test.npz naming FER2013 fixture test faces."""
    from ekspresi.labels import CLASSES as ALL

    make_bundle("conv", out=run / "bundle", **bundle_fields)
    files = sorted((FIXTURES / "datasets" / "fer2013" / "test").rglob("PrivateTest_*"))
    labels = [ALL.index(f.parent.name) for f in files]
    np.savez(run / "predictions_test.npz", labels=np.array(labels),
             probabilities=np.full((len(files), len(ALL)), 1 / len(ALL)),
             classes=np.array(ALL), paths=np.array([str(f) for f in files]))
    return run


def test_int8_of_a_run_calibrates_on_its_training_source_or_asks_for_one(capsys, make_bundle,
                                                                        tmp_path):
    """`export RUN --int8` without --data measures the run's own test split and calibrates
    on the train split of the source the run was trained on; a run that names no source
    is told to pass --calib-data, and is quantised once it does."""
    from ekspresi.infer.bundle import load_bundle

    fer = str(FIXTURES / "datasets" / "fer2013")
    run = _run_with_test_split(make_bundle, tmp_path / "run",
                               training={"config": {"data": {"sources": [fer]}}},
                               metrics={"splits": {"test": {"accuracy": 0.123}}})
    code, _, err = run_cli(capsys, "export", run, "--int8", "-o", tmp_path / "q")
    assert code == 0, err
    b = load_bundle(tmp_path / "q")
    q, test = b.metadata["quantization"], b.metrics["splits"]["test"]
    assert fer in q["calibration"]["data"] and "train split" in q["calibration"]["data"]
    assert "predictions_test.npz" in q["evaluation"]["data"] and q["evaluation"]["faces"] == 7
    assert test["accuracy"] == pytest.approx(q["int8_accuracy"], abs=1e-5)
    assert test["fp32_accuracy"] == pytest.approx(0.123)

    bare = _run_with_test_split(make_bundle, tmp_path / "bare")
    code, _, err = run_cli(capsys, "export", bare, "--int8", "-o", tmp_path / "b")
    assert code == 2 and "pass --calib-data DATASET" in err and "calibrate" in err
    assert not (tmp_path / "b" / "model.onnx").exists()
    code, _, err = run_cli(capsys, "export", bare, "--int8", "--calib-data", fer,
                           "-o", tmp_path / "b")
    assert code == 0, err
    q = load_bundle(tmp_path / "b").metadata["quantization"]
    assert fer in q["calibration"]["data"] and "predictions_test.npz" in q["evaluation"]["data"]


def test_output_contract_of_each_format(tmp_path):
    """What scripts read from `predict` output, exactly: the CSV columns, faces numbered
    from 1 when the detector did not number them, one row with the error for a failed
    file, one empty-face row for a file without faces, the no-face sentence with the real
    size limit, a video track's mean label, JSON indented by 2, timelines by extension."""
    results = _results()
    rows = list(csv.reader(io.StringIO(output.to_csv(results))))
    assert rows[0] == ["file", "frame", "time", "face", "track_id", "x", "y", "w", "h",
                       "label", "confidence", "detection_score", "p_angry", "p_happy",
                       "p_sad", "p_neutral", "error"]
    image_rows = [r for r in rows[1:] if r[0] == "'=img.jpg"]
    assert [r[3] for r in image_rows] == ["1", "2", "3"]          # numbered from 1
    assert [r[5:9] for r in image_rows][1] == ["100", "10", "40", "40"]
    assert {r[4] for r in image_rows} == {""}                  # no track outside videos
    assert {r[11] for r in image_rows} == {"0.900000"}          # detection score
    assert {r[16] for r in image_rows} == {""}                  # no error
    video_rows = [r for r in rows[1:] if r[0] == "clip.avi"]
    assert [(r[1], r[2], r[4]) for r in video_rows] == [("0", "0.0", "1"), ("1", "0.1", "1"),
                                                        ("2", "0.2", "1")]
    assert rows[-1] == ["bad.jpg"] + [""] * 15 + ["cannot decode"]
    numbered = ImageResult(faces=[Face(box=(0, 0, 9, 9), detection_score=1.0,
                                       scores={"happy": 1.0}, number=7)], width=9, height=9)
    assert list(csv.reader(io.StringIO(output.to_csv([numbered]))))[1][3] == "7"
    # a face without one of the columns' classes scores 0 for it
    mixed = list(csv.reader(io.StringIO(output.to_csv([results[0], numbered]))))
    assert mixed[-1][12:16] == ["0.000000", "1.000000", "0.000000", "0.000000"]

    empty = ImageResult(faces=[], width=320, height=240, file="none.jpg", min_face_px=24)
    assert output.no_face_text(empty) == ("no face found (faces smaller than about 24 px are "
                                          "not detected in this 320x240 image)")
    assert output.no_face_text(ImageResult(faces=[], width=5, height=5)) == "no face found"
    table = output.to_table(results + [empty])
    by_file = {line.split()[0]: line.split(None, 2)[1:] for line in table.splitlines()[2:]
               if line.strip() and not line.startswith(" ")}
    assert by_file["none.jpg"] == ["-", output.no_face_text(empty)]
    assert by_file["bad.jpg"][0] == "-" and by_file["bad.jpg"][1].split() == ["ERROR", "cannot",
                                                                              "decode"]
    assert "neutral (mean of 3 frames)" in table and "clip.avi [3/3 frames]" in table
    assert table.splitlines()[1].startswith("----")
    no_face_row = list(csv.reader(io.StringIO(output.to_csv([empty]))))[1]
    assert no_face_row[0] == "none.jpg" and set(no_face_row[1:]) == {""}
    unnamed = ImageResult(faces=[], width=5, height=5)      # an array, not a file
    assert set(list(csv.reader(io.StringIO(output.to_csv([unnamed]))))[1]) == {""}
    unnamed = ImageResult(faces=[_face([0.1, 0.2, 0.6, 0.1], 0)], width=50, height=50)
    assert list(csv.reader(io.StringIO(output.to_csv([unnamed]))))[1][0] == ""
    assert output.to_table([unnamed]).splitlines()[0].split() == \
        ["file", "face", "box", "(x,y,w,h)", "label", "conf", "top-3"]

    text = output.to_json(results)
    assert text.endswith("]\n") and text.startswith('[\n  {\n    "')
    assert json.loads(text)[2] == {"file": "bad.jpg", "error": "cannot decode"} \
        or json.loads(text)[2]["error"] == "cannot decode"
    output.write_timeline(tmp_path / "t" / "a.json", results)
    output.write_timeline(tmp_path / "t" / "a.CSV", results)
    assert [d["file"] for d in json.loads((tmp_path / "t" / "a.json").read_text())] == \
        ["clip.avi"]
    lines = (tmp_path / "t" / "a.CSV").read_text().splitlines()
    assert lines[0].startswith("file,frame,time") and len(lines) == 4


def test_upload_endpoints_document_a_required_image_body(client):
    """The OpenAPI description of the upload endpoints (web/uploads.py's UPLOAD_OPENAPI):
    a required body, multipart with a `file` field or the raw image."""
    spec = client.get("/openapi.json").json()
    for path in ("/api/v1/analyze", "/api/v1/trace"):
        body = spec["paths"][path]["post"]["requestBody"]
        assert body["required"] is True and "`file` field" in body["description"]
        assert set(body["content"]) == {"multipart/form-data", "image/*",
                                        "application/octet-stream"}
        form = body["content"]["multipart/form-data"]["schema"]
        assert form["required"] == ["file"] and form["properties"]["file"]["format"] == "binary"
