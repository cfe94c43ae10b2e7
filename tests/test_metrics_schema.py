"""The one metrics vocabulary (``ekspresi.metrics_schema``): documents written by earlier
versions in the flat vocabulary (``val_acc``, ``test_accuracy``...) read as the same numbers,
and a malformed document is an error naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ekspresi.errors import BadInputError
from ekspresi.metrics_schema import RunMetrics, read_metrics, upgrade_legacy

FIXTURES = Path(__file__).parent / "fixtures"


def test_a_run_of_an_earlier_version_reads_as_today():
    """The bundled model's final_metrics.json as 0.x wrote it (committed copy)."""
    old = json.loads((FIXTURES / "legacy_final_metrics.json").read_text())
    m = read_metrics(old, "old run", RunMetrics)
    assert m.split("val").accuracy == pytest.approx(old["val_acc"])
    assert m.test.accuracy == pytest.approx(old["test_acc"])
    assert m.test.log_loss == pytest.approx(old["test_loss"])
    assert m.split("train").loss == pytest.approx(old["train_loss"])
    src = m.test.by_source["fer2013"]
    assert (src.n_samples, src.accuracy) == (old["test_by_source"]["fer2013"]["n"],
                                             pytest.approx(old["test_by_source"]["fer2013"]["acc"]))
    assert m.best_epoch == old["best_epoch"] and m.counts == old["counts"]
    assert "val_acc" not in m.to_dict() and "test_by_source" not in m.to_dict()


def test_bundle_metrics_of_an_earlier_version_keep_their_evaluated_test_sets():
    old = {"val_accuracy": 0.67, "test_accuracy": 0.684, "fp32_test_accuracy": 0.685,
           "fer2013 test": {"accuracy": 0.684, "n_samples": 3589},
           "ckplus48 all": {"accuracy": 0.76, "n_samples": 981}}
    m = read_metrics(old, "model.json")
    assert (m.split("val").accuracy, m.test.accuracy, m.test.fp32_accuracy) == (0.67, 0.684,
                                                                                0.685)
    assert set(m.test_sets) == {"fer2013 test", "ckplus48 all"}
    assert m.test_sets["ckplus48 all"].n_samples == 981


def test_a_current_document_is_left_as_it_is():
    doc = {"splits": {"test": {"accuracy": 0.5}}, "val_acc": 0.1}   # extra key kept verbatim
    assert upgrade_legacy(doc) is doc
    assert read_metrics(doc, "x").test.accuracy == 0.5


@pytest.mark.parametrize("bad, where", [([1, 2], "a JSON list"),
                                        ({"splits": {"test": {"accuracy": "high"}}}, "accuracy")])
def test_malformed_metrics_name_the_file(bad, where):
    with pytest.raises(BadInputError, match=f"run/final_metrics.json.*{where}"):
        read_metrics(bad, "run/final_metrics.json", RunMetrics)
