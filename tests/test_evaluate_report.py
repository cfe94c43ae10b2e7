"""Reports from a tiny synthetic run: files exist, hold the expected numbers, and the HTML
is self-contained."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from evaluate_synth import THREE, make_run
from sklearn.metrics import accuracy_score, f1_score

from ekspresi.errors import BadInputError
from ekspresi.evaluate.report import write_run_report
from ekspresi.evaluate.runs import load_run, read_history


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    run = make_run(root, "run_a", n=60, seed=0)
    files = write_run_report(run)
    with np.load(run / "predictions_test.npz") as z:
        y, proba = z["labels"], z["probabilities"]
    return run, files, y, proba


def test_run_report_files(report):
    run, files, _, _ = report
    out = run / "report"
    for name in ("metrics.json", "report.html", "report.md", "plots/learning_curves.png",
                 "plots/learning_curves.svg", "plots/fer2013-test_confusion_counts.png",
                 "plots/fer2013-test_confusion_normalized.svg", "plots/fer2013-test_per_class.png",
                 "plots/fer2013-test_reliability.png", "plots/fer2013-test_gallery_mistakes.png",
                 "plots/fer2013-test_gallery_correct.png"):
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 500, name
    assert files["report.html"] == out / "report.html"


def test_metrics_json_schema_and_numbers(report):
    run, _, y, proba = report
    doc = json.loads((run / "report" / "metrics.json").read_text())
    pred = proba.argmax(1)
    assert doc["classes"] == list(THREE)
    assert doc["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert doc["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert set(doc["per_class"]) == set(THREE)
    assert set(doc["per_class"]["happy"]) >= {"precision", "recall", "f1", "support"}
    assert doc["per_class"]["sad"]["support"] == int((y == 1).sum())
    cm = np.array(doc["confusion_matrix"])
    assert cm.sum(1).tolist() == [int((y == i).sum()) for i in range(3)]   # rows = true
    assert list(doc["datasets"]) == ["fer2013 test"]
    assert doc["datasets"]["fer2013 test"]["accuracy"] == doc["accuracy"]
    assert doc["run"]["name"] == "run_a" and doc["run"]["epochs_logged"] == 5
    lo, hi = doc["accuracy_ci95"]
    assert lo <= doc["accuracy"] <= hi


def test_html_is_self_contained_and_has_numbers(report):
    run, _, y, proba = report
    page = (run / "report" / "report.html").read_text()
    acc = accuracy_score(y, proba.argmax(1))
    assert f"{100 * acc:.2f} %" in page
    # no external assets: every src/href is an embedded data URI or an in-page anchor
    for attr in re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', page):
        assert attr.startswith(("data:", "#")), attr
    assert "<link" not in page and "<script src" not in page
    assert page.count("data:image/png;base64,") >= 7
    for text in ("paper_cnn", "best_epoch", "completed", "oversample", "data_notes",
                 "learning curves", "most confident mistakes first", "batch_size: 64"):
        assert text in page, text
    # dataset statistics: class x split table with the train counts of the run
    assert "<td>happy</td><td>100</td><td>10</td>" in page
    assert "<td>balance.method</td><td>oversample</td>" in page


def test_markdown_summary(report):
    run, _, y, proba = report
    md = (run / "report" / "report.md").read_text()
    acc = accuracy_score(y, proba.argmax(1))
    f1 = f1_score(y, proba.argmax(1), average="macro")
    assert f"{100 * acc:.2f} %" in md and f"{f1:.3f}" in md
    assert "(plots/fer2013-test_confusion_counts.png)" in md
    assert "| true \\ predicted | happy | sad | surprise |" in md


def test_missing_optional_files_are_listed(tmp_path):
    run = make_run(tmp_path, "partial", with_images=False)
    for name in ("env.json", "train.log", "metrics.csv", "metrics.jsonl"):
        (run / name).unlink()
    info = load_run(run)
    assert "env.json" in info.missing and "metrics.jsonl / metrics.csv" in info.missing
    files = write_run_report(run, tmp_path / "out")
    page = files["report.html"].read_text()
    assert "Files missing from the run directory" in page and "env.json" in page
    assert "No per-epoch metrics" in page
    doc = json.loads(files["metrics.json"].read_text())
    assert any("could not be read" in n for n in doc["dataset"]["notes"])


def test_not_a_run_dir_is_a_clear_error(tmp_path):
    with pytest.raises(BadInputError, match="not a training run directory"):
        write_run_report(tmp_path)


def test_history_resumed_run_keeps_last_row(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(
        '{"epoch": 1, "val_acc": 0.1}\n{"epoch": 2, "val_acc": 0.2}\n'
        '{"epoch": 2, "val_acc": 0.25}\n{"epoch": 3, "val_acc": 0.3}\n')
    h = read_history(tmp_path)
    assert [r["epoch"] for r in h] == [1, 2, 3] and h[1]["val_acc"] == 0.25


def test_combined_test_set_gets_one_block_per_source(tmp_path):
    run = make_run(tmp_path, "p3", n=60, sources=("fer2013", "ckplus48"), with_images=False)
    cfg = run / "config.resolved.yaml"
    cfg.write_text(cfg.read_text().replace("data:\n", "data:\n  split: stratified\n"))
    files = write_run_report(run)
    doc = json.loads(files["metrics.json"].read_text())
    # a held-out part of the run is never named like the official test split
    suffix = "test (stratified split of the run)"
    assert list(doc["datasets"]) == [f"all sources {suffix}", f"ckplus48 {suffix}",
                                     f"fer2013 {suffix}"]
    with np.load(run / "predictions_test.npz") as z:
        y, pred, src = z["labels"], z["probabilities"].argmax(1), z["sources"]
    for s in ("fer2013", "ckplus48"):
        m = src == s
        block = doc["datasets"][f"{s} {suffix}"]
        assert block["accuracy"] == pytest.approx((pred[m] == y[m]).mean())
        assert block["n_samples"] == int(m.sum())
    assert doc["accuracy"] == pytest.approx((pred == y).mean())
