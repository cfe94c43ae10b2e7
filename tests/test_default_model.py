"""The shipped default model: it loads, its hash verifies, and it still classifies real
FER2013 PrivateTest crops as its float reference does (guards against a broken export, an
int8 graph that computes differently on this CPU, a preprocessing change or a stale
bundle). The crops and the reference's predictions come from
``scripts/make_default_fixture.py``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ekspresi.imaging import read_image
from ekspresi.infer import Classifier, Recognizer, default_bundle_path
from ekspresi.infer.bundle import load_bundle

FIXTURE = Path(__file__).parent / "fixtures" / "fer2013_privatetest"
MANIFEST = json.loads((FIXTURE / "manifest.json").read_text())


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(default_bundle_path())               # checks sha256 and metadata


@pytest.fixture(scope="module")
def predictions(bundle) -> tuple[list[str], list[str], list[str]]:
    clf = Classifier(bundle, threads=1)
    faces = [read_image(FIXTURE / it["file"]) for it in MANIFEST["items"]]
    pred = clf.predict_proba(faces).argmax(1)
    return ([clf.classes[i] for i in pred], [it["label"] for it in MANIFEST["items"]],
            [it["reference_prediction"] for it in MANIFEST["items"]])


def test_bundle_verifies_and_is_small(bundle):
    assert bundle.classes == tuple(MANIFEST["classes"])
    assert bundle.onnx_path.stat().st_size <= 10 * 1024 * 1024
    assert bundle.name in MANIFEST["reference"]             # the fixture is of this model
    assert 0 < bundle.metrics["splits"]["fer2013 test"]["accuracy"] <= 1


def test_reproduces_the_float_references_predictions(predictions):
    ours, _, reference = predictions
    agree = np.mean([a == b for a, b in zip(ours, reference)])
    assert agree >= 0.98, f"the bundle agrees with its float reference on only {agree:.1%}"


def test_accuracy_matches_the_metadata_within_noise(bundle, predictions):
    ours, truth, _ = predictions
    n = len(truth)
    acc = float(np.mean([a == b for a, b in zip(ours, truth)]))
    recorded = bundle.metrics["splits"]["fer2013 test"]["accuracy"]          # all 3,589 PrivateTest
    tolerance = 3.5 * math.sqrt(recorded * (1 - recorded) / n)     # binomial noise of n crops
    assert abs(acc - recorded) <= tolerance, (acc, recorded, tolerance)
    assert acc == pytest.approx(MANIFEST["sample_accuracy"], abs=0.02)


def test_every_class_is_recognised(predictions):
    ours, truth, _ = predictions
    recall = {c: np.mean([o == c for o, t in zip(ours, truth) if t == c])
              for c in set(truth) if c != "disgust"}           # disgust: a handful of crops
    assert min(recall.values()) > 0.2, recall


def test_recognizer_uses_it_by_default():
    rec = Recognizer()
    assert rec.classifier.bundle.path.resolve() == default_bundle_path().resolve()


def test_about_page_shows_the_shipped_models_card(bundle):
    from fastapi.testclient import TestClient

    from ekspresi.web.app import create_app
    from ekspresi.web.engine import Engine
    from ekspresi.web.settings import WebSettings

    s = WebSettings(threads=1)                               # no --model: the bundled one
    c = TestClient(create_app(s, engine=Engine(s)))
    html = c.get("/about").text
    assert bundle.name in html and 'id="training-summary"' in html
    assert "fer2013-folder:data/fer2013" in html            # training data, in the summary
    for test_set in ("fer2013 test", "ckplus48 all", "ferplus test"):
        assert test_set in html
    acc = bundle.metrics["splits"]["fer2013 test"]["accuracy"]
    assert f"{100 * acc:.1f} %" in html
    # drawn in the page as SVG (learning curves) or as the translated table (confusion),
    # the pictures stay served; the calibration picture is shown as it is
    assert 'src="/about/reliability.png"' in html and 'class="plot-svg"' in html
    for img in ("confusion_matrix.png", "learning_curves.png", "reliability.png"):
        r = c.get(f"/about/{img}")
        assert r.status_code == 200 and r.content[:4] == b"\x89PNG"
