"""`ekspresi evaluate` end to end: a real ONNX bundle on synthetic datasets on disk."""

from __future__ import annotations

import json

import numpy as np
import pytest
from evaluate_synth import THREE, make_run
from sklearn.metrics import accuracy_score, f1_score

from ekspresi.cli import main
from ekspresi.data.synthetic import write_class_folders


@pytest.fixture(scope="module")
def setup(tmp_path_factory, make_bundle):
    root = tmp_path_factory.mktemp("evalcli")
    bundle = make_bundle("flip", root / "model" / "bundle")
    ck = write_class_folders(root / "ck", {"happy": 6, "sad": 5, "surprise": 4,
                                           "contempt": 3, "anger": 2}, seed=1)
    split = root / "splitted"
    write_class_folders(split / "train", {"happy": 3, "sad": 3}, seed=2)
    write_class_folders(split / "test", {"happy": 4, "sad": 4, "surprise": 2}, seed=3)
    return root, bundle, ck, split


def _expected(bundle, folder_specs):
    """Accuracy/macro-F1 recomputed independently: load, keep model classes, predict."""
    from ekspresi.data import load
    from ekspresi.data.cache import faces_array
    from ekspresi.infer import Classifier
    from ekspresi.labels import ALL_CLASSES

    clf = Classifier(bundle)
    ys, ps = [], []
    for spec, split in folder_specs:
        ss = load(spec, cache=False)
        if split:
            ss = ss.subset(ss.splits == split)
        names = [ALL_CLASSES[i] for i in ss.labels]
        keep = np.array([n in THREE for n in names])
        ys.append(np.array([THREE.index(n) for n, k in zip(names, keep) if k]))
        ps.append(clf.predict_proba(faces_array(ss, 48)[keep]).argmax(1))
    return ys, ps


def test_cross_dataset_evaluate(setup, tmp_path, monkeypatch, capsys):
    root, bundle, ck, split = setup
    out = tmp_path / "out"
    rc = main(["evaluate", str(bundle), "--data", f"folders:{ck}", "--data", str(split),
               "--out", str(out)])
    assert rc == 0
    doc = json.loads((out / "metrics.json").read_text())
    names = list(doc["datasets"])
    assert len(names) == 2
    a, b = (doc["datasets"][n] for n in names)
    # CK-like set: no official split -> all samples, contempt and angry excluded + counted
    assert a["dataset"]["split"] == "all"
    assert a["mapping"]["excluded_samples"] == {"angry": 2, "contempt": 3}
    assert a["n_samples"] == 15 and a["dataset"]["n_loaded"] == 20
    assert any("no official split" in n for n in a["dataset"]["notes"])
    # split set: only its test split
    assert b["dataset"]["split"] == "test" and b["n_samples"] == 10
    ys, ps = _expected(bundle, [(f"folders:{ck}", None), (str(split), "test")])
    for block, y, p in zip((a, b), ys, ps):
        assert block["accuracy"] == pytest.approx(accuracy_score(y, p))
        assert block["macro_f1"] == pytest.approx(f1_score(y, p, average="macro",
                                                           labels=sorted(set(y))))
    assert doc["accuracy"] == a["accuracy"] and doc["classes"] == list(THREE)
    assert doc["model"]["classes"] == list(THREE)
    page = (out / "report.html").read_text()
    assert names[0] in page and names[1] in page and "contempt 3" in page
    printed = capsys.readouterr().out
    assert "| test set |" in printed and "excluded 5 samples" in printed


def test_evaluate_tta_and_classes(setup, tmp_path, monkeypatch):
    root, bundle, ck, _ = setup
    out = tmp_path / "out"
    assert main(["evaluate", str(bundle / "model.onnx"), "--data", f"folders:{ck}",
                 "--tta", "multicrop", "--classes", "happy,sad", "--out", str(out)]) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["classes"] == ["happy", "sad"]
    assert doc["mapping"]["decision_restricted"] is True
    assert doc["mapping"]["excluded_samples"] == {"angry": 2, "surprise": 4, "contempt": 3}
    assert doc["tta"]["mode"] == "multicrop"
    assert doc["tta"]["accuracy_gain"] == pytest.approx(
        doc["accuracy"] - doc["tta"]["accuracy_without_tta"])


def test_evaluate_run_dir_without_data_writes_run_report(tmp_path, capsys):
    run = make_run(tmp_path, "run_x", n=30, with_images=False)
    assert main(["evaluate", str(run)]) == 0
    assert (run / "report" / "report.html").is_file()
    doc = json.loads((run / "report" / "metrics.json").read_text())
    assert f"accuracy {100 * doc['accuracy']:.2f} %" in capsys.readouterr().out


def test_evaluate_errors(setup, tmp_path, capsys):
    _, bundle, _, _ = setup
    assert main(["evaluate", str(bundle)]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nope"), "--data", "x"]) == 2
    assert "no such model" in capsys.readouterr().err
    run = make_run(tmp_path, "nobundle", n=10, with_images=False)
    assert main(["evaluate", str(run), "--data", "x"]) == 2
    assert "has no bundle/" in capsys.readouterr().err


def test_detection_path_counts_images_without_a_face(setup, tmp_path, monkeypatch):
    from ekspresi.evaluate.evaluator import evaluate_spec
    from ekspresi.infer import Classifier
    from ekspresi.preprocess import prepare_face

    _, bundle, ck, _ = setup
    clf = Classifier(bundle)
    calls = []

    def crop(image):  # a "detector" that misses every third image
        calls.append(image.shape)
        return None if len(calls) % 3 == 0 else prepare_face(image, 48)

    ev = evaluate_spec(clf.predict_proba, clf.classes, 48, f"folders:{ck}", face_crop=crop,
                       detector_name="stub")
    det = ev.metrics["detection"]
    assert len(calls) == 20 and det["images"] == 20 and det["no_face"] == 6
    assert sum(det["no_face_by_class"].values()) == 6
    missed_kept = sum(n for c, n in det["no_face_by_class"].items() if c in THREE)
    assert ev.metrics["n_samples"] + 6 + sum(ev.mapping.excluded.values()) == 20
    assert det["end_to_end_accuracy"] == pytest.approx(
        ev.metrics["n_correct"] / (ev.metrics["n_samples"] + missed_kept))
    assert any("found no face in 6 of 20" in n for n in ev.dataset["notes"])
