"""Collapse detection (a constant predictor is flagged, never presented as a result) and
the papers' extra scores (validation macro recall, confusion per source, val + test)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from evaluate_synth import make_run

from ekspresi.evaluate.collapse import collapse_check, collapse_message, run_collapse
from ekspresi.evaluate.compare import build_comparison, compare_runs
from ekspresi.evaluate.report import write_run_report
from ekspresi.evaluate.split_scores import run_scores, split_scores

C3 = ("happy", "sad", "surprise")


def test_constant_predictor_is_flagged():
    c = collapse_check(np.full(200, 1), C3)
    assert c["collapsed"] and c["top_class"] == "sad" and c["top_share"] == 1.0
    assert c["classes_predicted"] == 1
    assert "'sad'" in collapse_message(c) and "100.0 %" in collapse_message(c)
    nearly = np.array([0] * 96 + [1] * 2 + [2] * 2)
    assert collapse_check(nearly, C3)["collapsed"]
    healthy = np.array([0] * 60 + [1] * 30 + [2] * 10)
    assert not collapse_check(healthy, C3)["collapsed"]
    assert not collapse_check(np.array([], np.int64), C3)["collapsed"]
    both = run_collapse({"val": collapse_check(healthy, C3), "test": collapse_check(nearly, C3)})
    assert both["collapsed"] and "test" in both["message"]


def test_split_scores_macro_recall_is_the_mean_normalised_diagonal():
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    p = np.array([0, 0, 0, 1, 1, 0, 2, 1])
    s = split_scores(y, p, C3)
    assert s.confusion_matrix == [[3, 1, 0], [1, 1, 0], [0, 1, 1]]
    assert s.macro_recall == pytest.approx((3 / 4 + 1 / 2 + 1 / 2) / 3)
    assert s.accuracy == pytest.approx(5 / 8) and s.n_samples == 8
    # a class absent from the labels is left out of the average (its recall is undefined)
    assert split_scores(np.array([0, 0]), np.array([0, 2]), C3).macro_recall == 0.5


def _logits(pred: np.ndarray, k: int = 3) -> np.ndarray:
    out = np.zeros((len(pred), k), np.float32)
    out[np.arange(len(pred)), pred] = 1.0
    return out


def test_run_scores_keys():
    vl, vp = np.array([0, 1, 2, 0]), np.array([0, 1, 1, 0])
    tl, tp = np.array([0, 1, 2, 2, 1, 0]), np.array([0, 0, 0, 0, 0, 0])
    src = np.array(["fer2013", "ckplus48", "fer2013", "ckplus48", "fer2013", "ckplus48"])
    out = run_scores(val_labels=vl, val_logits=_logits(vp), test_labels=tl,
                     test_logits=_logits(tp), test_sources=src, classes=C3,
                     official_split=True)
    assert out.split("val").macro_recall == pytest.approx((1 + 1 + 0) / 3)
    assert out.test.macro_recall == pytest.approx(1 / 3)
    assert out.collapsed and not out.collapse["val"]["collapsed"]
    assert out.collapse["test"]["top_class"] == "happy"
    assert set(out.test.by_source) == {"fer2013", "ckplus48"}
    fer = out.test.by_source["fer2013"]
    assert fer.n_samples == 3 and fer.confusion_matrix == [[1, 0, 0], [1, 0, 0], [1, 0, 0]]
    assert fer.collapsed
    pooled = out.split("val+test")
    assert pooled.n_samples == 10 and pooled.accuracy == pytest.approx((3 + 2) / 10)
    assert "val+test" not in run_scores(
        val_labels=vl, val_logits=_logits(vp), test_labels=tl, test_logits=_logits(tp),
        test_sources=src, classes=C3).splits


def _make_constant(run, cls: int = 0):
    with np.load(run / "predictions_test.npz") as z:
        data = {k: z[k] for k in z.files}
    proba = np.full_like(data["probabilities"], 0.1)
    proba[:, cls] = 0.8
    data["probabilities"] = proba
    np.savez(run / "predictions_test.npz", **data)


def test_compare_and_report_flag_a_collapsed_run(tmp_path):
    good = make_run(tmp_path, "good", n=60, seed=1, hit_rate=0.8, with_images=False)
    bad = make_run(tmp_path, "constant", n=60, seed=2, with_images=False)
    _make_constant(bad, 1)
    final = json.loads((good / "final_metrics.json").read_text())
    final.update(init="scratch: ImageNet weights resnet50-0676ba61.pth not found",
                 protocol="paper: as the thesis")
    final["splits"]["val"]["macro_recall"] = 0.61
    (good / "final_metrics.json").write_text(json.dumps(final))
    table, rows, _ = build_comparison([good, bad])
    assert table.column("collapsed") == ["", "test: sad 100 %"]
    assert table.column("init") == ["scratch (weights missing)", None]
    assert table.column("protocol") == ["paper", None]
    assert table.column("val macro recall") == [0.61, None]
    compare_runs([good, bad], tmp_path / "cmp")
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "Collapsed runs" in md and "constant" in md
    assert "collapsed" in (tmp_path / "cmp" / "comparison.html").read_text()
    write_run_report(bad)
    report = (bad / "report" / "report.md").read_text()
    assert "collapsed model: predicts 'sad' for 100.0 %" in report
    write_run_report(good)
    assert "collapsed model" not in (good / "report" / "report.md").read_text()
