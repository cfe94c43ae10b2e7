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
