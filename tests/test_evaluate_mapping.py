"""Cross-dataset class mapping: what is dropped is counted, nothing is mixed silently."""

from __future__ import annotations

import numpy as np
import pytest

from ekspresi.errors import BadInputError, LabelError
from ekspresi.evaluate.evaluator import evaluate_faces, select_split
from ekspresi.evaluate.mapping import map_classes, restrict_proba
from ekspresi.labels import ALL_CLASSES, CLASSES


def idx(*names):
    return np.array([ALL_CLASSES.index(n) for n in names])


def test_ckplus_on_fer7_model_drops_contempt_and_reports_neutral():
    labels = idx("angry", "contempt", "contempt", "happy", "sad", "contempt", "surprise")
    m = map_classes(labels, CLASSES)
    assert m.excluded == {"contempt": 3}
    assert m.keep.tolist() == [True, False, False, True, True, False, True]
    assert [m.classes[i] for i in m.y] == ["angry", "happy", "sad", "surprise"]
    assert set(m.absent) == {"disgust", "fear", "neutral"}
    assert m.classes == CLASSES and not m.restricted
    text = " ".join(m.notes)
    assert "excluded 3 samples" in text and "contempt 3" in text and "neutral" in text


def test_three_class_model_on_seven_class_data_uses_only_its_classes():
    labels = idx("angry", "happy", "sad", "surprise", "neutral", "neutral", "happy")
    m = map_classes(labels, ("happy", "sad", "surprise"))
    assert m.excluded == {"angry": 1, "neutral": 2}
    assert m.y.tolist() == [0, 1, 2, 0]
    assert m.absent == ()
    assert any("only samples of these classes are used" in n for n in m.notes)
    d = m.to_dict()
    assert d["n_excluded"] == 3 and d["excluded_samples"] == {"angry": 1, "neutral": 2}


def test_classes_option_restricts_decision_and_renormalises():
    labels = idx("happy", "sad", "angry")
    m = map_classes(labels, CLASSES, only=("happy", "sad"))
    assert m.restricted and m.classes == ("happy", "sad")
    assert m.excluded == {"angry": 1}
    proba = np.zeros((2, 7))
    proba[:, CLASSES.index("neutral")] = 0.6          # the 7-class argmax would be neutral
    proba[0, CLASSES.index("happy")] = 0.3
    proba[0, CLASSES.index("sad")] = 0.1
    proba[1, CLASSES.index("happy")] = 0.1
    proba[1, CLASSES.index("sad")] = 0.3
    r = restrict_proba(proba, m)
    assert r.sum(1) == pytest.approx([1, 1])
    assert r.argmax(1).tolist() == [0, 1]
    assert r[0].tolist() == pytest.approx([0.75, 0.25])


def test_classes_option_must_be_model_classes():
    with pytest.raises(LabelError, match="no such output"):
        map_classes(idx("happy"), ("happy", "sad", "surprise"), only=("angry",))


def test_evaluate_faces_reports_exclusions_and_scores_kept_only():
    labels = idx("happy", "sad", "contempt", "happy", "angry")
    faces = np.zeros((5, 4, 4), np.uint8)
    faces[:, 0, 0] = np.arange(5)          # row id, to check which faces reach the model
    seen = []

    def predict(batch):
        seen.extend(batch[:, 0, 0].tolist())
        out = np.full((len(batch), 3), 0.1)
        out[:, 0] = 0.8                    # always "happy"
        return out

    ev = evaluate_faces(predict, ("happy", "sad", "surprise"), faces, labels, name="mix",
                        n_resamples=50)
    assert seen == [0, 1, 3]
    assert ev.metrics["n_samples"] == 3
    assert ev.metrics["accuracy"] == pytest.approx(2 / 3)
    assert ev.dataset["n_loaded"] == 5 and ev.dataset["n_evaluated"] == 3
    assert ev.mapping.excluded == {"angry": 1, "contempt": 1}
    assert ev.block()["mapping"]["classes_absent_from_data"] == ["surprise"]
    assert any("contempt 1" in n for n in ev.dataset["notes"])


def test_no_samples_of_model_classes_is_an_error():
    with pytest.raises(BadInputError, match="no samples of the evaluated classes"):
        evaluate_faces(lambda b: np.ones((len(b), 3)) / 3, ("happy", "sad", "surprise"),
                       np.zeros((2, 4, 4), np.uint8), idx("angry", "contempt"), name="x")


def test_split_selection():
    labels = np.zeros(5, int)
    mask, used, notes = select_split(labels, np.array(["train", "val", "test", "test", "train"],
                                                      object), "test", name="fer")
    assert mask.tolist() == [False, False, True, True, False] and used == "test" and not notes
    mask, used, notes = select_split(labels, np.array([""] * 5, object), "test", name="ck")
    assert mask.all() and used == "all"
    assert "no official split" in notes[0] and "all 5 samples" in notes[0]
    with pytest.raises(BadInputError, match="no 'test' split"):
        select_split(labels, np.array(["train"] * 5, object), "test", name="fer")
