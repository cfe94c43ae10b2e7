"""`ekspresi compare` / compare_runs: the published-shape table and the cross-dataset matrix."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from evaluate_synth import make_run
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from ekspresi.cli import main
from ekspresi.errors import BadInputError
from ekspresi.evaluate.compare import compare_runs


@pytest.fixture
def runs(tmp_path):
    a = make_run(tmp_path, "run_a", n=50, seed=1, hit_rate=0.8, with_images=False)
    b = make_run(tmp_path, "run_b", n=40, seed=2, hit_rate=0.4, epochs=3, with_images=False)
    return tmp_path, a, b


def _expected(run):
    with np.load(run / "predictions_test.npz") as z:
        y, pred = z["labels"], z["probabilities"].argmax(1)
    p, r, f, _ = precision_recall_fscore_support(y, pred, average="macro", zero_division=0)
    return accuracy_score(y, pred), p, r, f


def test_compare_table_numbers(runs):
    root, a, b = runs
    t = compare_runs([a, b], root / "cmp")
    assert t.column("run") == ["run_a", "run_b"]
    for i, run in enumerate((a, b)):
        acc, p, r, f = _expected(run)
        assert t.column("test acc.")[i] == pytest.approx(acc)
        assert t.column("macro precision")[i] == pytest.approx(p)
        assert t.column("macro recall")[i] == pytest.approx(r)
        assert t.column("macro F1")[i] == pytest.approx(f)
    assert t.column("training time") == [123.4, 123.4]
    assert t.column("train acc.") == [0.9012, 0.9012]
    assert t.column("val loss") == [0.55, 0.55]
    assert t.column("test loss") == [0.6, 0.6]
    assert t.column("epochs (best)") == ["5 (4)", "3 (2)"]
    assert t.column("stopped") == ["completed", "completed"]
    rows = list(csv.DictReader(io.StringIO((root / "cmp" / "comparison.csv").read_text())))
    assert float(rows[1]["test acc."]) == pytest.approx(_expected(b)[0])
    md = (root / "cmp" / "comparison.md").read_text()
    assert f"{100 * _expected(a)[0]:.2f} %" in md
    page = (root / "cmp" / "comparison.html").read_text()
    assert "data:image/png;base64," in page and "run_b" in page
    assert (root / "cmp" / "comparison.png").stat().st_size > 1000
    assert (root / "cmp" / "comparison.svg").is_file()


def test_cross_dataset_matrix(runs, tmp_path):
    root, a, b = runs
    # an `ekspresi evaluate` output inside run_a, and one given directly for another model
    (a / "eval").mkdir()
    doc = {"schema": "ekspresi.metrics/1", "model": {"name": "run_a"}, "accuracy": 0.61,
           "datasets": {"fer2013 test": {"accuracy": 0.61}, "ckplus all": {"accuracy": 0.42}}}
    (a / "eval" / "metrics.json").write_text(json.dumps(doc))
    other = tmp_path / "eval-default"
    other.mkdir()
    doc2 = {"schema": "ekspresi.metrics/1", "model": {"name": "default"},
            "datasets": {"ckplus all": {"accuracy": 0.5}}}
    (other / "metrics.json").write_text(json.dumps(doc2))
    compare_runs([a, b, other], root / "cmp")
    rows = list(csv.DictReader(io.StringIO((root / "cmp" / "cross_dataset.csv").read_text())))
    by_model = {r["model \\ test set"]: r for r in rows}
    assert set(by_model) == {"run_a", "run_b", "default"}
    assert float(by_model["run_a"]["fer2013 test"]) == pytest.approx(0.61)
    assert float(by_model["run_a"]["ckplus all"]) == pytest.approx(0.42)
    assert float(by_model["run_b"]["fer2013 test"]) == pytest.approx(_expected(b)[0])
    assert by_model["run_b"]["ckplus all"] == ""
    assert float(by_model["default"]["ckplus all"]) == pytest.approx(0.5)
    assert "Accuracy per test set" in (root / "cmp" / "comparison.md").read_text()


def test_compare_cli(runs, capsys):
    root, a, b = runs
    assert main(["compare", str(a), str(b), "--out", str(root / "c")]) == 0
    out = capsys.readouterr().out
    assert "| run_a |" in out and "| run_b |" in out
    assert (root / "c" / "comparison.html").is_file()


def test_compare_rejects_unknown_dirs(tmp_path, runs):
    with pytest.raises(BadInputError, match="neither a training run directory"):
        compare_runs([tmp_path / "empty"])
    root, a, _ = runs
    (a / "final_metrics.json").unlink()
    (a / "predictions_test.npz").unlink()
    with pytest.raises(BadInputError, match="nothing to compare"):
        compare_runs([a])
