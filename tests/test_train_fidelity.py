"""A real (tiny) training run records what the paper comparisons need: the papers' extra
scores, the collapse flag, where the weights started, the protocol note; the Keras plateau
rule drives the learning rate in the loop; --weights reaches the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ekspresi.cli import main
from ekspresi.data.synthetic import write_class_folders
from ekspresi.evaluate.collapse import collapse_check
from ekspresi.train import run_training
from ekspresi.train.callbacks import Plateau

torch.set_num_threads(1)
CLASSES = ["angry", "happy", "sad"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ds")
    return write_class_folders(root / "faces", {c: 30 for c in CLASSES}, size=16, seed=5)


def config(dataset: Path, **train) -> dict:
    t = {"epochs": 6, "batch_size": 16, "threads": 1,
         "optimizer": {"name": "adam", "lr": 0.01, "eps": 1e-7},
         "scheduler": {"name": "plateau", "monitor": "val_acc", "factor": 0.5, "patience": 1,
                       "min_delta": 1e-4, "min_lr": 1e-4}}
    t.update(train)
    return {"name": "tiny", "seed": 1,
            "data": {"sources": [f"folders:{dataset}"], "classes": CLASSES,
                     "split": "stratified", "ratios": [0.6, 0.2, 0.2],
                     "protocol": "ours: validation selects, the test part is used once"},
            "model": {"name": "fer-vgg", "input_size": 16,
                      "options": {"widths": [8, 16], "dropout": 0.1}},
            "train": t}


def test_final_metrics_record_paper_scores_collapse_and_init(dataset, tmp_path):
    run = run_training(config(dataset), tmp_path / "run", quiet=True)
    final = json.loads((run / "final_metrics.json").read_text())
    assert final["init"] == "scratch" and final["pretrained"] is False
    assert final["protocol"].startswith("ours:")
    val, test = final["splits"]["val"], final["splits"]["test"]
    assert 0 <= val["macro_recall"] <= 1 and 0 <= test["macro_recall"] <= 1
    with np.load(run / "predictions_test.npz") as z:
        labels, pred = z["labels"], z["probabilities"].argmax(1)
    src = test["by_source"]["faces"]
    cm = np.array(src["confusion_matrix"])
    assert cm.sum() == len(labels) == src["n_samples"] == test["n_samples"]
    assert np.trace(cm) / cm.sum() == pytest.approx(test["accuracy"])
    assert final["collapse"]["test"] == collapse_check(pred, CLASSES)
    assert final["collapse"]["collapsed"] == (final["collapse"]["test"]["collapsed"]
                                              or final["collapse"]["val"]["collapsed"])
    # the loop's learning rates are exactly what the Keras rule gives on its val_acc
    hist = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    plateau = Plateau(opt, mode="max", factor=0.5, patience=1, min_delta=1e-4, min_lr=1e-4)
    for row in hist:
        assert row["lr"] == pytest.approx(opt.param_groups[0]["lr"])
        plateau.step(row["val_acc"])
    assert plateau.cuts, "the tiny run should plateau (val acc reaches 1.0) and cut the rate"


def test_weights_flag_reaches_the_model(dataset, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config(dataset, epochs=1)))
    assert main(["train", str(path), "--weights", str(tmp_path / "w.pth"),
                 "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "has no pre-trained weights" in capsys.readouterr().err  # fer-vgg has none
