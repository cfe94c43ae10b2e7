"""Gallery selection (most confident mistakes first) and test-time augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from ekspresi.evaluate.gallery import select_gallery
from ekspresi.evaluate.tta import predict_tta, tta_views


def test_gallery_most_confident_mistakes_first():
    y = np.array([0, 0, 0, 0, 1, 1, 0])
    proba = np.array([
        [0.20, 0.80],   # 0: true 0, wrong, p=.80
        [0.90, 0.10],   # 1: right, p=.90
        [0.05, 0.95],   # 2: wrong, p=.95  <- most confident mistake
        [0.40, 0.60],   # 3: wrong, p=.60
        [0.30, 0.70],   # 4: true 1, right, p=.70
        [0.99, 0.01],   # 5: true 1, wrong, p=.99
        [0.60, 0.40],   # 6: right, p=.60
    ])
    g = select_gallery(y, proba, per_class=2)
    assert [it.index for it in g["mistakes"][0]] == [2, 0]
    assert [it.index for it in g["mistakes"][1]] == [5]
    assert [it.index for it in g["correct"][0]] == [1, 6]
    assert [it.index for it in g["correct"][1]] == [4]
    m = g["mistakes"][0][0]
    assert (m.true, m.pred, m.confidence) == (0, 1, pytest.approx(0.95))
    assert all(it.true != it.pred for lst in g["mistakes"].values() for it in lst)


def test_gallery_ties_broken_by_index():
    y = np.array([0, 0, 0])
    proba = np.array([[0.3, 0.7]] * 3)
    assert [it.index for it in select_gallery(y, proba)["mistakes"][0]] == [0, 1, 2]


def _lopsided(batch):
    """Class 0 when the left half is brighter, else class 1 (not flip-invariant)."""
    b = batch.astype(float)
    w = b.shape[2] // 2
    d = (b[:, :, :w].mean((1, 2)) - b[:, :, w:].mean((1, 2))) / 255
    p0 = 1 / (1 + np.exp(-8 * d))
    return np.stack([p0, 1 - p0], 1)


def test_tta_flip_averages_image_and_mirror():
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 255, (5, 8, 8), dtype=np.uint8)
    faces[0, :, :4] = 255
    faces[0, :, 4:] = 0
    plain = predict_tta(_lopsided, faces, "none")
    flip = predict_tta(_lopsided, faces, "flip", batch_size=2)
    expected = (_lopsided(faces) + _lopsided(faces[:, :, ::-1])) / 2
    assert flip == pytest.approx(expected)
    assert plain[0, 0] > 0.9
    assert flip[0] == pytest.approx([0.5, 0.5])   # a mirror-symmetric decision
    assert flip.sum(1) == pytest.approx(np.ones(5))


def test_tta_views():
    faces = np.arange(2 * 48 * 48, dtype=np.uint8).reshape(2, 48, 48)
    assert len(tta_views(faces, "none")) == 1
    flip = tta_views(faces, "flip")
    assert len(flip) == 2 and (flip[1] == faces[:, :, ::-1]).all()
    crops = tta_views(faces, "multicrop")
    assert len(crops) == 10
    assert all(v.shape == faces.shape and v.dtype == np.uint8 for v in crops)
    with pytest.raises(ValueError, match="unknown TTA mode"):
        tta_views(faces, "rotate")


def test_tta_on_onnx_bundle(make_bundle):
    from ekspresi.evaluate.evaluator import evaluate_faces
    from ekspresi.infer import Classifier
    from ekspresi.labels import ALL_CLASSES

    clf = Classifier(make_bundle("flip"))
    rng = np.random.default_rng(1)
    faces = rng.integers(0, 255, (30, 48, 48), dtype=np.uint8)
    faces[:10, :, :24] //= 3         # darker left half: leans to "sad"
    faces[10:20, :, 24:] //= 3       # darker right half: leans to "happy"
    labels = np.array([ALL_CLASSES.index(c) for c in ["sad"] * 10 + ["happy"] * 10
                       + ["surprise"] * 10])
    ev = evaluate_faces(clf.predict_proba, clf.classes, faces, labels, name="synthetic",
                        tta="flip", n_resamples=50)
    expected = (clf.predict_proba(faces) + clf.predict_proba(faces[:, :, ::-1].copy())) / 2
    assert ev.proba == pytest.approx(expected, abs=1e-6)
    t = ev.metrics["tta"]
    plain_acc = (clf.predict_proba(faces).argmax(1) == ev.y_true).mean()
    assert t["mode"] == "flip"
    assert t["accuracy_without_tta"] == pytest.approx(plain_acc)
    assert t["accuracy_gain"] == pytest.approx(ev.metrics["accuracy"] - plain_acc)
    assert t["changed_predictions"] == int(
        (clf.predict_proba(faces).argmax(1) != expected.argmax(1)).sum())
