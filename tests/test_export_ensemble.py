"""`ekspresi ensemble`: several bundles (and flip TTA) averaged inside one ONNX graph give
exactly the mean of the members' probabilities, keep the bundle contract, and refuse
members that cannot be combined."""

from __future__ import annotations

import json

import numpy as np
import pytest
from bundles import conv_onnx

from ekspresi.errors import BadInputError, ModelError
from ekspresi.export.ensemble import build_ensemble
from ekspresi.infer import Classifier
from ekspresi.infer.bundle import load_bundle


@pytest.fixture(scope="module")
def members(tmp_path_factory, make_bundle):
    root = tmp_path_factory.mktemp("members")
    return [make_bundle(out=root / f"m{seed}", onnx=conv_onnx(seed=seed)) for seed in (1, 2, 3)]


@pytest.fixture(scope="module")
def faces():
    rng = np.random.default_rng(0)
    # left/right asymmetric faces, so that mirroring changes the members' outputs
    x = rng.integers(0, 256, (6, 48, 48)).astype(np.uint8)
    x[:, :, :24] //= 3
    return x


def _proba(path, faces):
    return Classifier(path, threads=1).predict_proba(faces)


def test_mean_of_members_probabilities(members, faces, tmp_path):
    ens = build_ensemble(members, tmp_path / "ens")
    want = np.mean([_proba(m, faces) for m in members], axis=0)
    got = _proba(ens.path, faces)
    assert np.abs(got - want).max() < 1e-5
    assert not np.allclose(_proba(members[0], faces), want, atol=1e-3)  # members do differ


def test_flip_tta_averages_over_the_mirrored_face(members, faces, tmp_path):
    ens = build_ensemble(members[:2], tmp_path / "flip", tta="flip")
    mirrored = faces[:, :, ::-1].copy()
    want = np.mean([_proba(m, f) for m in members[:2] for f in (faces, mirrored)], axis=0)
    got = _proba(ens.path, faces)
    assert np.abs(got - want).max() < 1e-5
    # batch-size independent: one face at a time gives the same answer
    one = np.concatenate([_proba(ens.path, faces[i:i + 1]) for i in range(len(faces))])
    assert np.abs(one - got).max() < 1e-5
    assert _proba(ens.path, faces[:0]).shape == (0, 7)


@pytest.mark.parametrize("side", [64, 80])
def test_members_of_other_sizes_see_the_face_enlarged_as_preprocessing_would(
        members, make_bundle, faces, tmp_path, side):
    """A 64/80 px member beside a 48 px one: the ensemble takes 48 px faces and enlarges them
    in the graph exactly as the member's own preprocessing (bilinear) would."""
    big = make_bundle(out=tmp_path / f"big{side}", onnx=conv_onnx(size=side, seed=7),
                      size=side)
    ens = build_ensemble([members[0], big], tmp_path / "mixed", tta="flip")
    assert ens.input_spec.size == 48
    mirrored = faces[:, :, ::-1].copy()
    want = np.mean([_proba(m, f) for m in (members[0], big) for f in (faces, mirrored)],
                   axis=0)
    got = _proba(ens.path, faces)
    # cv2 rounds its enlarged face to uint8 (~2e-4 here); another resampling gives ~2e-3
    assert np.abs(got - want).max() < 5e-4
    # the big member matters: leaving it out (or feeding it 48 px) changes the answer
    alone = np.mean([_proba(members[0], f) for f in (faces, mirrored)], axis=0)
    assert np.abs(got - alone).max() > 1e-2


def test_weights_and_metadata(members, faces, tmp_path):
    ens = build_ensemble(members[:2], tmp_path / "w", weights=[3, 1], name="pair")
    p0, p1 = _proba(members[0], faces), _proba(members[1], faces)
    assert np.abs(_proba(ens.path, faces) - (0.75 * p0 + 0.25 * p1)).max() < 1e-5
    record = ens.metadata["training"]["ensemble"]
    assert ens.name == "pair" and record["tta"] == "none"
    assert [m["sha256"] for m in record["members"]] == \
        [load_bundle(m).sha256 for m in members[:2]]
    assert [m["weight"] for m in record["members"]] == [3.0, 1.0]
    assert ens.metrics == {}                 # not evaluated yet: nothing is claimed


def test_incompatible_members_are_refused(members, make_bundle, tmp_path):
    other = make_bundle(classes=("happy", "sad", "surprise"))
    with pytest.raises(ModelError, match="classes"):
        build_ensemble([members[0], other], tmp_path / "bad")
    with pytest.raises(BadInputError, match="weights"):
        build_ensemble(members[:2], tmp_path / "bad", weights=[1.0])
    with pytest.raises(BadInputError, match="positive"):
        build_ensemble(members[:2], tmp_path / "bad", weights=[1.0, 0.0])
    with pytest.raises(BadInputError, match="members"):
        build_ensemble([members[0]], members[0])


def test_cli_writes_a_bundle_the_recognizer_uses(capsys, members, tmp_path):
    from infer_support import PHOTO, run_cli

    from ekspresi.infer import Recognizer

    code, out, _ = run_cli(capsys, "ensemble", *members, "--tta", "flip", "-o", tmp_path / "e")
    assert code == 0 and "3 member(s), tta flip" in out
    meta = json.loads((tmp_path / "e" / "model.json").read_text())
    assert len(meta["training"]["ensemble"]["members"]) == 3
    assert len(Recognizer(tmp_path / "e", threads=1).analyze(PHOTO)) == 1
    code, _, err = run_cli(capsys, "ensemble", tmp_path / "missing", "-o", tmp_path / "x")
    assert code == 2 and "bundle" in err


def test_about_page_lists_the_members(members, tmp_path):
    from fastapi.testclient import TestClient

    from ekspresi.infer.bundle import write_bundle
    from ekspresi.web.app import create_app
    from ekspresi.web.engine import Engine
    from ekspresi.web.settings import WebSettings

    trained = []
    for i, m in enumerate(members[:2]):          # members that carry a training record
        b = load_bundle(m)
        trained.append(write_bundle(
            tmp_path / f"t{i}", b.onnx_path, name=f"member-{i}", classes=b.classes,
            input_spec=b.input_spec, metrics={"splits": {"test": {"accuracy": 0.5 + i / 10}}},
            training={"config": {"data": {"sources": [f"folders:data/set{i}"]}},
                      "epochs": 10 + i}))
    (trained[0].path / "train.log").write_text("epoch 1 ...\n")
    ens = build_ensemble(trained, tmp_path / "ens", tta="flip", weights=[2, 1])
    assert (ens.path / "members" / "member-0" / "train.log").is_file()   # evidence kept
    assert not (ens.path / "members" / "member-1").exists()
    s = WebSettings(model=ens.path, threads=1)
    html = TestClient(create_app(s, engine=Engine(s))).get("/about").text
    assert 'id="ensemble-members"' in html and "mirrored face" in html
    # packaging the ensemble (with its evaluation) keeps the members' evidence
    from ekspresi.export.package import export
    shipped = export(ens.path, tmp_path / "shipped", name="shipped")
    assert (shipped.path / "members" / "member-0" / "train.log").read_text() == "epoch 1 ...\n"
    for i in range(2):
        assert f"member-{i}" in html and f"folders:data/set{i}" in html
    assert "alone 50.00 %" in html and "alone 60.00 %" in html and "weight 2" in html
