"""The Recognizer and Classifier: every input type, batching, the train/serve preprocessing
identity, the step-by-step trace with saliency, bundle validation, thread safety."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from bundles import conv_onnx, region_onnx
from infer_support import FIXTURES, PHOTO, collage, in_face_region, no_face_image, photo_bgr
from PIL import Image

from ekspresi.errors import BadInputError, ModelError
from ekspresi.infer import Classifier, Recognizer
from ekspresi.labels import CLASSES
from ekspresi.preprocess import crop, prepare_face, to_model_input


def _one(faces):
    assert len(faces) == 1, faces
    assert in_face_region(faces[0].box)
    return faces[0]


def test_top_level_import_and_result_shape(conv_bundle):
    from ekspresi import Recognizer as TopLevel

    face = _one(TopLevel(conv_bundle).analyze(PHOTO))
    assert set(face.scores) == set(CLASSES)
    assert sum(face.scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert face.label == max(face.scores, key=face.scores.get)
    assert len(face.landmarks) == 5           # RetinaFace: eyes, nose, mouth corners
    d = face.to_dict()
    assert d["box"] == list(face.box) and d["label"] == face.label


def test_every_input_type_gives_the_same_face(recognizer):
    ref = _one(recognizer.analyze(str(PHOTO)))
    bgr = photo_bgr()
    rgba = np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)])
    same = {
        "path": PHOTO, "bytes": PHOTO.read_bytes(), "bytearray": bytearray(PHOTO.read_bytes()),
        "bgr array": bgr, "bgra array": rgba, "16-bit array": bgr.astype(np.uint16) * 257,
        "PIL": Image.open(PHOTO),
    }
    for kind, source in same.items():
        face = _one(recognizer.analyze(source))
        assert face.box == ref.box, kind
        assert face.scores == pytest.approx(ref.scores, abs=1e-6), kind
    gray = _one(recognizer.analyze(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)))
    assert max(abs(a - b) for a, b in zip(gray.box, ref.box)) <= 10
    pil_gray = _one(recognizer.analyze(Image.open(PHOTO).convert("L")))
    assert max(abs(a - b) for a, b in zip(pil_gray.box, ref.box)) <= 10


@pytest.mark.parametrize("orientation,transpose", [(6, Image.Transpose.ROTATE_90),
                                                   (8, Image.Transpose.ROTATE_270),
                                                   (3, Image.Transpose.ROTATE_180)])
def test_exif_rotated_jpeg_is_analysed_upright(recognizer, orientation, transpose):
    upright = Image.open(PHOTO)
    stored = upright.transpose(transpose)      # what a phone stores, with a rotation tag
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    stored.save(buf, format="JPEG", quality=95, exif=exif)
    face = _one(recognizer.analyze(buf.getvalue()))
    ref = _one(recognizer.analyze(PHOTO))
    assert max(abs(a - b) for a, b in zip(face.box, ref.box)) <= 6
    # without honouring the tag the face would be sideways and not found upright
    buf2 = io.BytesIO()
    stored.save(buf2, format="JPEG", quality=95)
    sideways = recognizer.analyze(buf2.getvalue())
    assert not sideways or not in_face_region(sideways[0].box)


def test_no_face_many_faces_tiny_face(recognizer):
    assert recognizer.analyze(no_face_image()).faces == []
    assert len(recognizer.analyze(collage(4))) == 4
    tiny = cv2.resize(photo_bgr(), (96, 96), interpolation=cv2.INTER_AREA)
    assert recognizer.analyze(tiny).faces == []
    small = Recognizer(recognizer.classifier, min_face_size=8)
    assert len(small.analyze(tiny)) == 1


def test_corrupt_and_empty_inputs_raise_bad_input(recognizer, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(PHOTO.read_bytes()[:300])
    for source in (bad, b"not an image at all", tmp_path / "missing.png", b""):
        with pytest.raises(BadInputError):
            recognizer.analyze(source)


class CountingSession:
    """Wraps an ORT session and records the batch size of each run call."""

    def __init__(self, session):
        self.session, self.batches = session, []

    def run(self, outputs, feeds):
        self.batches.append(next(iter(feeds.values())).shape[0])
        return self.session.run(outputs, feeds)

    def __getattr__(self, name):
        return getattr(self.session, name)


def test_all_faces_of_a_frame_go_through_one_batched_call(conv_bundle):
    rec = Recognizer(conv_bundle)
    counter = CountingSession(rec.classifier.session)
    rec.classifier.session = counter
    assert len(rec.analyze(collage(4))) == 4
    assert counter.batches == [4]


def test_a_large_array_runs_in_bounded_chunks_with_the_same_answer(conv_bundle):
    """``ekspresi evaluate`` hands a whole test set to the classifier: it goes through
    ONNX Runtime in chunks of MAX_BATCH (bounded memory), and the logits equal the
    face-by-face ones."""
    from ekspresi.infer.classifier import MAX_BATCH, Classifier

    clf = Classifier(conv_bundle)
    faces = np.random.default_rng(0).integers(0, 256, (2 * MAX_BATCH + 3, 48, 48), np.uint8)
    counter = CountingSession(clf.session)
    clf.session = counter
    logits = clf.logits(faces)
    assert counter.batches == [MAX_BATCH, MAX_BATCH, 3]
    picks = [0, MAX_BATCH - 1, MAX_BATCH, len(faces) - 1]     # both sides of a chunk edge
    one_by_one = np.concatenate([clf.logits(faces[i:i + 1]) for i in picks])
    np.testing.assert_allclose(logits[picks], one_by_one, rtol=1e-5, atol=1e-5)


def test_train_serve_preprocessing_identity(conv_bundle):
    """What the Recognizer feeds ONNX for a face is exactly what the training cache
    (``faces_array`` over the same crop) holds, and the probabilities are those of that
    array run through the bundle's graph directly."""
    from ekspresi.data.cache import faces_array
    from ekspresi.data.records import SampleSet

    image = photo_bgr()
    for align in (False, True):
        rec = Recognizer(conv_bundle, align=align)
        trace = rec.trace(image, saliency=False)
        det = trace.detections[0]
        model_input = trace.model_inputs[0]
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if not align or trace.rotations[0] == 0:
            face_crop = crop(gray, det.box, rec.detector.margin)
            assert np.array_equal(model_input, prepare_face(image, 48, det.box,
                                                            rec.detector.margin))
        else:
            face_crop = trace.crops[0]
        ss = SampleSet([face_crop], [0], ["test"], ["test"], [""], ["crop"])
        assert np.array_equal(model_input, faces_array(ss, 48)[0])
        sess = ort.InferenceSession(str(Path(conv_bundle) / "model.onnx"))
        logits = sess.run(None, {"input": to_model_input(faces_array(ss, 48))})[0][0]
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        assert list(trace.faces[0].scores.values()) == pytest.approx(expected, abs=1e-6)


def test_classifier_on_training_faces_matches_classify_faces(conv_bundle):
    from ekspresi.data import load
    from ekspresi.data.cache import faces_array

    ss = load(FIXTURES / "datasets" / "fer2013", cache=False)
    clf = Classifier(conv_bundle)
    proba = clf.predict_proba(faces_array(ss, 48))
    assert proba.shape == (len(ss), 7)
    assert np.allclose(proba.sum(1), 1.0, atol=1e-5)
    rec = Recognizer(clf)
    scores = rec.classify_faces(list(ss.images))
    assert np.allclose([list(s.values()) for s in scores], proba, atol=1e-6)
    # faces of another size go through the same resize as training
    big = [cv2.resize(im, (96, 96)) for im in ss.images[:3]]
    assert np.array_equal(clf.prepare(big), np.stack([prepare_face(b, 48) for b in big]))
    assert clf.predict_proba(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)


def test_trace_exposes_every_stage(recognizer):
    t = recognizer.trace(PHOTO)
    assert t.original.shape == (512, 512, 3) and t.gray.shape == (512, 512)
    assert any(kept for _, kept in t.candidates)
    assert t.model_inputs.shape == (1, 48, 48) and t.model_inputs.dtype == np.uint8
    assert t.probabilities.shape == (1, 7)
    assert t.crops[0].ndim == 2 and min(t.crops[0].shape) > 48
    assert t.saliency[0].shape == (48, 48) and 0 <= t.saliency[0].min() <= 1
    assert t.saliency[0].max() == pytest.approx(1.0)
    assert t.faces[0].box == recognizer.analyze(PHOTO)[0].box
    assert set(t.result.timings_ms) >= {"decode", "detect", "align", "classify", "saliency"}


def test_saliency_points_at_the_region_the_model_uses(make_bundle):
    region = (30, 42, 6, 18)  # rows 30-42, cols 6-18: lower left
    bundle = make_bundle(onnx=region_onnx(region))
    from ekspresi.infer.saliency import occlusion_saliency

    clf = Classifier(bundle)
    face = np.full((48, 48), 60, np.uint8)
    face[30:42, 6:18] = 250                      # bright region -> class 0 wins
    assert clf.predict_proba(face[None])[0].argmax() == 0
    heat = occlusion_saliency(clf, face)
    inside = heat[30:42, 6:18].mean()
    outside = np.delete(heat.ravel(), np.ravel_multi_index(
        np.mgrid[30:42, 6:18].reshape(2, -1), heat.shape)).mean()
    assert inside > 0.5 and outside < 0.1
    assert heat[0:20, 26:48].max() == 0          # far from the region nothing matters


def test_recognizer_is_thread_safe(recognizer):
    images = [photo_bgr(), collage(4), no_face_image(), collage(2)] * 3
    serial = [recognizer.analyze(im) for im in images]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(recognizer.analyze, images))
    assert parallel == serial


# -- bundles ---------------------------------------------------------------------------------

def test_hash_mismatch_is_refused(make_bundle):
    b = make_bundle()
    data = bytearray((b / "model.onnx").read_bytes())
    data[-10] ^= 0xFF
    (b / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        Classifier(b)


@pytest.mark.parametrize("edit,message", [
    (lambda m: m.pop("classes"), "lacks 'classes'"),
    (lambda m: m.update(classes=["happy", "joyful"]), "invalid classes"),
    (lambda m: m.update(preprocessing_version=99), "preprocessing version"),
    (lambda m: m.update(format=7), "format 7"),
])
def test_bad_metadata_is_refused(make_bundle, edit, message):
    b = make_bundle()
    meta = json.loads((b / "model.json").read_text())
    edit(meta)
    (b / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=message):
        Recognizer(b)


def test_invalid_json_and_missing_files_are_refused(make_bundle, tmp_path):
    b = make_bundle()
    (b / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match="invalid JSON"):
        Classifier(b)
    with pytest.raises(ModelError, match="not a model bundle"):
        Classifier(tmp_path / "nowhere")


def test_metadata_that_contradicts_the_graph_is_refused(tmp_path):
    from ekspresi.infer.bundle import write_bundle
    from ekspresi.preprocess import InputSpec

    with pytest.raises(ModelError, match="input shape"):
        Classifier(write_bundle(tmp_path / "size", region_onnx((0, 4, 0, 4)), name="x",
                                classes=CLASSES, input_spec=InputSpec(size=64)))
    b = write_bundle(tmp_path / "names", conv_onnx(), name="x", classes=CLASSES,
                     input_spec=InputSpec(size=48))
    meta = json.loads((b.path / "model.json").read_text())
    meta["onnx"]["output"] = "probabilities"
    (b.path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="outputs"):
        Classifier(b.path)
