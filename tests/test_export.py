"""`ekspresi export`: a shippable bundle from a run or a bundle, int8 quantisation and its
measured cost, an evaluation folded into the model card (:mod:`ekspresi.export`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from infer_support import FIXTURES, PHOTO, run_cli

from ekspresi.infer.bundle import load_bundle


def test_export_copies_and_int8_measures_its_accuracy(capsys, conv_bundle, tmp_path,
                                                      monkeypatch):
    import shutil

    import onnx

    run = tmp_path / "run"
    run.mkdir()
    shutil.copytree(conv_bundle, run / "bundle")
    (run / "final_metrics.json").write_text(json.dumps({"splits": {"test": {"accuracy": 0.5}}}))
    (run / "train.log").write_text("epoch 1\n")
    code, out, _ = run_cli(capsys, "export", run, "-o", tmp_path / "fp32")
    assert code == 0
    fp32 = load_bundle(tmp_path / "fp32")
    assert fp32.sha256 == load_bundle(conv_bundle).sha256
    assert (tmp_path / "fp32" / "train.log").is_file()
    assert (tmp_path / "fp32" / "final_metrics.json").is_file()

    data = FIXTURES / "datasets" / "fer2013"
    code, out, _ = run_cli(capsys, "export", run, "--int8", "--data", data,
                           "-o", tmp_path / "int8")
    assert code == 0 and "int8:" in out
    q8 = load_bundle(tmp_path / "int8")
    q = q8.metadata["quantization"]
    # the fixture's PrivateTest images are FER2013's official test split
    assert q["evaluation"]["faces"] == 7 and "test split" in q["evaluation"]["data"]
    assert "train split" in q["calibration"]["data"]
    assert q["accuracy_drop"] == pytest.approx(q["fp32_accuracy"] - q["int8_accuracy"],
                                               abs=1e-4)
    assert 0 <= q["prediction_agreement"] <= 1
    ops = {n.op_type for n in onnx.load(str(q8.onnx_path)).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    from ekspresi.infer import Recognizer

    assert len(Recognizer(q8.path).analyze(PHOTO)) == 1


def test_int8_without_a_test_set_is_a_clean_error(capsys, conv_bundle, tmp_path):
    code, _, err = run_cli(capsys, "export", conv_bundle, "--int8", "-o", tmp_path / "q")
    assert code == 2 and "pass --data DATASET" in err


def test_export_attaches_an_evaluation_to_the_model_card(capsys, conv_bundle, tmp_path,
                                                         monkeypatch):
    from ekspresi.web.modelcard import build_card

    ev = tmp_path / "eval"
    code, _, _ = run_cli(capsys, "evaluate", conv_bundle,
                         "--data", f"fer2013-folder:{FIXTURES / 'datasets' / 'fer2013'}",
                         "--data", FIXTURES / "datasets" / "ckplus48", "--out", ev)
    assert code == 0
    doc = json.loads((ev / "metrics.json").read_text())
    code, _, _ = run_cli(capsys, "export", conv_bundle, "-o", tmp_path / "b",
                         "--evaluation", ev)
    assert code == 0
    bundle = load_bundle(tmp_path / "b")
    for name, block in doc["datasets"].items():
        assert bundle.metrics["splits"][name]["accuracy"] == block["accuracy"]
        assert bundle.metrics["splits"][name]["confusion_matrix"] == block["confusion_matrix"]
    card = build_card(bundle)
    assert [t.name for t in card.test_sets] == list(doc["datasets"])
    assert {"confusion_matrix.png", "confusion_matrix_normalized.png",
            "per_class.png"} <= set(card.images)

    (ev / "metrics.json").write_text(json.dumps({"datasets": {}}))
    code, _, err = run_cli(capsys, "export", conv_bundle, "-o", tmp_path / "c",
                           "--evaluation", ev)
    assert code == 2 and "no evaluated test sets" in err


def test_int8_bundle_is_requantised_from_its_recovered_float_graph(capsys, conv_bundle,
                                                                   make_bundle, tmp_path):
    """An int8 bundle whose float original is gone: `export --int8` dequantises it (weights,
    and the Relus the quantiser folded into Q/DQ pairs) and quantises it again."""
    import onnx

    from ekspresi.export.int8 import dequantize_qdq
    from ekspresi.infer import Classifier

    data = FIXTURES / "datasets" / "fer2013"
    assert run_cli(capsys, "export", conv_bundle, "--int8", "--data", data,
                   "-o", tmp_path / "q1")[0] == 0
    q1 = load_bundle(tmp_path / "q1")
    assert "Relu" not in {n.op_type for n in onnx.load(str(q1.onnx_path)).graph.node}
    dequantize_qdq(q1.onnx_path, tmp_path / "float.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "float.onnx")).graph.node]
    assert "QuantizeLinear" not in ops and "DequantizeLinear" not in ops
    assert ops.count("Relu") >= 2                          # both conv Relus are back
    rng = np.random.default_rng(1)
    faces = rng.integers(0, 256, (64, 48, 48)).astype(np.uint8)
    want = Classifier(conv_bundle, threads=1).logits(faces)
    got = Classifier(make_bundle(onnx=(tmp_path / "float.onnx").read_bytes()),
                     threads=1).logits(faces)
    assert np.corrcoef(want.ravel(), got.ravel())[0, 1] > 0.99   # weights off by rounding only

    code, out, _ = run_cli(capsys, "export", tmp_path / "q1", "--int8", "--data", data,
                           "-o", tmp_path / "q2")
    assert code == 0
    q2 = load_bundle(tmp_path / "q2")
    assert q2.metadata["requantized_from"]["sha256"] == q1.sha256
    assert "7-bit weights" in q2.metadata["quantization"]["method"]
    ops2 = [n.op_type for n in onnx.load(str(q2.onnx_path)).graph.node]
    assert "QuantizeLinear" in ops2 and "DequantizeLinear" in ops2
    # the old int8 graph's figures are dropped
    assert "accuracy" not in q2.metrics["splits"].get("test", {})
