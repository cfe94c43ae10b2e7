"""`ekspresi predict` / `webcam` / `benchmark`: outputs, exit codes, videos."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from infer_support import (
    PHOTO,
    collage,
    in_face_region,
    no_face_image,
    run_cli,
    write_clip,
)

from ekspresi.labels import CLASSES


@pytest.fixture()
def inputs(tmp_path):
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    (d / "face.jpg").write_bytes(PHOTO.read_bytes())
    cv2.imwrite(str(d / "noface.png"), no_face_image())
    cv2.imwrite(str(d / "sub" / "group.png"), collage(4))
    (d / "corrupt.jpg").write_bytes(PHOTO.read_bytes()[:400])
    (d / "notes.txt").write_text("not an image, and not looked at in folders")
    return d


def test_json_output_and_exit_code_with_a_corrupt_file(capsys, conv_bundle, inputs):
    code, out, err = run_cli(capsys, "predict", inputs / "face.jpg", inputs / "corrupt.jpg",
                             inputs / "noface.png", inputs / "sub" / "group.png",
                             "--model", conv_bundle, "--format", "json")
    assert code == 1
    assert "corrupt.jpg" in err and "1 of 4 input(s) failed" in err
    res = json.loads(out)
    assert [Path(r["file"]).name for r in res] == ["face.jpg", "corrupt.jpg", "noface.png",
                                                   "group.png"]
    face = res[0]["faces"]
    assert len(face) == 1 and in_face_region(face[0]["box"])
    assert set(face[0]["scores"]) == set(CLASSES)
    assert face[0]["label"] == max(face[0]["scores"], key=face[0]["scores"].get)
    assert sum(face[0]["scores"].values()) == pytest.approx(1, abs=1e-4)
    assert "error" in res[1] and "faces" not in res[1]
    assert res[2]["faces"] == []
    assert len(res[3]["faces"]) == 4


def test_all_good_inputs_exit_zero_and_no_face_is_not_an_error(capsys, conv_bundle,
                                                                inputs):
    code, out, err = run_cli(capsys, "predict", inputs / "noface.png", "--model", conv_bundle,
                             "--no-face-ok")
    assert code == 0 and "no face" in out
    code, out, err = run_cli(capsys, "predict", inputs / "noface.png", "--model",
                             conv_bundle, "--require-face")
    assert code == 1 and "no face found" in out + err


def test_csv_and_table_formats(capsys, conv_bundle, inputs):
    code, out, _ = run_cli(capsys, "predict", inputs, "--recursive", "--model", conv_bundle,
                           "--format", "csv")
    assert code == 1  # the corrupt file
    rows = list(csv.DictReader(io.StringIO(out)))
    by_file = {}
    for r in rows:
        by_file.setdefault(Path(r["file"]).name, []).append(r)
    assert set(by_file) == {"face.jpg", "noface.png", "group.png", "corrupt.jpg"}
    assert len(by_file["group.png"]) == 4
    assert by_file["noface.png"][0]["label"] == ""
    assert by_file["corrupt.jpg"][0]["error"]
    r = by_file["face.jpg"][0]
    probs = [float(r[f"p_{c}"]) for c in CLASSES]
    assert sum(probs) == pytest.approx(1, abs=1e-4) and r["label"] in CLASSES
    assert float(r["confidence"]) == pytest.approx(max(probs), abs=1e-6)

    code, out, _ = run_cli(capsys, "predict", inputs, "--model", conv_bundle)
    assert "face.jpg" in out and "no face" in out and "ERROR" in out
    assert "group.png" not in out            # not recursive: sub/ is not searched


def test_each_error_is_printed_once(capsys, conv_bundle, inputs):
    """A table on the terminal names the failed file in its ERROR row, not on stderr as
    well; JSON keeps the stderr line (the data goes to a program, the line to a person)."""
    code, out, err = run_cli(capsys, "predict", inputs / "face.jpg", inputs / "corrupt.jpg",
                             "--model", conv_bundle)
    assert code == 1
    assert (out + err).count("corrupt.jpg") == 1 and "ERROR" in out
    assert "1 of 2 input(s) failed" in err
    code, out, err = run_cli(capsys, "predict", inputs / "noface.png", "--model",
                             conv_bundle, "--require-face")
    assert code == 1 and (out + err).count("no face") == 1
    code, out, err = run_cli(capsys, "predict", inputs / "corrupt.jpg", "--model",
                             conv_bundle, "--format", "json")
    assert err.count("corrupt.jpg") == 1


def test_missing_path_and_empty_folder_are_failures(capsys, conv_bundle, tmp_path):
    (tmp_path / "empty").mkdir()
    code, out, err = run_cli(capsys, "predict", tmp_path / "nope.jpg", tmp_path / "empty",
                             "--model", conv_bundle, "--format", "json")
    assert code == 1
    res = json.loads(out)
    assert "no such file" in res[0]["error"] and "no images" in res[1]["error"]


def test_missing_model_is_a_clean_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "predict", PHOTO, "--model", tmp_path)
    assert code == 2 and "not a model bundle" in err


def test_annotate_draws_on_the_image(capsys, conv_bundle, inputs, tmp_path):
    out_file = tmp_path / "annotated.png"
    code, _, _ = run_cli(capsys, "predict", inputs / "face.jpg", "--model", conv_bundle,
                         "--annotate", out_file)
    assert code == 0
    drawn = cv2.imread(str(out_file))
    original = cv2.imread(str(inputs / "face.jpg"))
    assert drawn.shape == original.shape
    changed = np.abs(drawn.astype(int) - original.astype(int)).sum(2) > 60
    assert 0.005 < changed.mean() < 0.3          # boxes, text and bars, not a repaint
    folder = tmp_path / "many"
    run_cli(capsys, "predict", inputs / "face.jpg", inputs / "noface.png", "--model",
            conv_bundle, "--annotate", folder)
    assert sorted(p.name for p in folder.iterdir()) == ["face.annotated.png",
                                                       "noface.annotated.png"]




def test_video_timeline_tracks_and_annotated_mp4(capsys, conv_bundle, tmp_path):
    clip = tmp_path / "clip.mp4"
    write_clip(clip)
    timeline_csv, timeline_json = tmp_path / "t.csv", tmp_path / "t.json"
    out_mp4 = tmp_path / "out.mp4"
    code, out, _ = run_cli(capsys, "predict", clip, "--model", conv_bundle, "--every", "3",
                           "--timeline", timeline_csv, "--annotate", out_mp4, "--format", "json")
    assert code == 0
    res = json.loads(out)[0]
    assert res["video"]["frames_read"] == 12 and res["video"]["frames_analyzed"] == 4
    assert [r["frame"] for r in res["timeline"]] == [0, 3, 6, 9]
    assert all(len(r["faces"]) == 1 for r in res["timeline"])
    assert {r["faces"][0]["track_id"] for r in res["timeline"]} == {1}
    xs = [r["faces"][0]["box"][0] for r in res["timeline"]]
    assert xs == sorted(xs) and xs[-1] - xs[0] > 20       # the face moves right
    assert len(res["faces"]) == 1 and res["faces"][0]["frames"] == 4   # one track summary
    rows = list(csv.DictReader(timeline_csv.open()))
    assert [int(r["frame"]) for r in rows] == [0, 3, 6, 9]
    assert {r["track_id"] for r in rows} == {"1"}
    from ekspresi.infer.video import can_write

    written = out_mp4 if can_write(".mp4") else out_mp4.with_suffix(".webm")  # browser-playable
    assert written.is_file() and not (written != out_mp4 and out_mp4.exists())
    cap = cv2.VideoCapture(str(written))
    n = sum(1 for _ in iter(lambda: cap.read()[0], False))
    cap.release()
    cap = cv2.VideoCapture(str(written))
    ok, frame = cap.read()
    cap.release()
    assert n == 12 and ok and frame.shape == (240, 320, 3)
    run_cli(capsys, "predict", clip, "--model", conv_bundle, "--every", "6",
            "--timeline", timeline_json)
    data = json.loads(timeline_json.read_text())
    assert [r["frame"] for r in data[0]["timeline"]] == [0, 6]


def test_corrupt_video_is_an_error_for_that_file(capsys, conv_bundle, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    code, out, err = run_cli(capsys, "predict", bad, PHOTO, "--model", conv_bundle,
                             "--format", "json")
    assert code == 1
    res = json.loads(out)
    assert "error" in res[0] and len(res[1]["faces"]) == 1


def test_iou_tracker_keeps_ids():
    from ekspresi.infer.types import Face
    from ekspresi.infer.video import IouTracker

    def face(x):
        return Face(box=(x, 10, 50, 50), detection_score=1.0, scores={"happy": 1.0})

    t = IouTracker(max_age=1)
    a = t.update([face(0), face(200)])
    b = t.update([face(205), face(4)])               # order swapped, small moves
    assert [f.track_id for f in a] == [1, 2] and [f.track_id for f in b] == [2, 1]
    c = t.update([face(400)])                        # a new face
    assert c[0].track_id == 3
    t.update([])
    d = t.update([face(6)])                          # gone longer than max_age: new id
    assert d[0].track_id == 4


def test_webcam_without_display_says_so(capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code, _, err = run_cli(capsys, "webcam")
    assert code == 2
    assert "no display" in err and "ekspresi serve" in err
    monkeypatch.setenv("DISPLAY", ":99")
    code, _, err = run_cli(capsys, "webcam")
    assert code == 2 and "GUI" in err          # this OpenCV is the headless build


def test_benchmark_writes_json(capsys, conv_bundle, tmp_path):
    out = tmp_path / "bench.json"
    code, _, _ = run_cli(capsys, "benchmark", "--model", conv_bundle, "--image", PHOTO,
                         "--compare", conv_bundle, "--repeat", "2", "-o", out)
    assert code == 0
    res = json.loads(out.read_text())
    assert res["machine"]["cpu"] and isinstance(res["machine"]["cpu_flags"], list)
    assert set(res["classifier_compare"][str(conv_bundle)]) >= {"batch1_threads1_ms_per_face"}
    assert set(res["classifier"]) >= {"batch1_threads1_ms_per_face",
                                      "batch32_threads2_ms_per_face"}
    assert set(res["detector_ms_per_frame"]) >= {"haar", "blazeface"}
    assert res["end_to_end"]["faces_in_frame"] == 1
    assert res["install_footprint_without_torch"]["includes_torch"] is False
    assert res["peak_memory_mb"] > 0


def test_commands_import_no_onnxruntime_at_module_level():
    code = ("import sys, ekspresi.cli as c; c.build_parser(); "
            "print('onnxruntime' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "False"
