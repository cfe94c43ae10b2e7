"""Synthetic run directories for the evaluation and comparison tests (no real data, no
trained model needed; the tiny bundle is ``make_bundle("flip")``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from bundles import THREE
from PIL import Image


def synthetic_predictions(n: int, k: int, seed: int, hit_rate: float = 0.7):
    """Labels and probabilities where about ``hit_rate`` of the samples are right."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    y[:k] = np.arange(k)  # every class present
    proba = rng.dirichlet(np.ones(k), n)
    hit = rng.random(n) < hit_rate
    proba[hit, y[hit]] += 2.0
    proba /= proba.sum(axis=1, keepdims=True)
    return y, proba


def make_run(root: Path, name: str = "run_a", *, classes=THREE, n: int = 60, seed: int = 0,
             epochs: int = 5, with_images: bool = True, hit_rate: float = 0.7,
             sources: tuple[str, ...] = ("fer2013",)) -> Path:
    """A run directory in the layout `ekspresi train` writes (train/loop.py), with known
    numbers; ``sources`` cycle over the test samples (a combined test set)."""
    d = root / name
    d.mkdir(parents=True)
    k = len(classes)
    y, proba = synthetic_predictions(n, k, seed, hit_rate)
    paths = []
    if with_images:
        img_dir = d / "faces"
        img_dir.mkdir()
        rng = np.random.default_rng(seed + 1)
        for i in range(n):
            p = img_dir / f"face_{i:03d}.png"
            Image.fromarray(rng.integers(0, 255, (48, 48), dtype=np.uint8)).save(p)
            paths.append(str(p))
    else:
        paths = [f"missing/face_{i}.png" for i in range(n)]
    src = np.array([sources[i % len(sources)] for i in range(n)])
    np.savez(d / "predictions_test.npz", labels=y, probabilities=proba,
             paths=np.array(paths), sources=src, classes=np.array(classes))
    rows = []
    for e in range(1, epochs + 1):
        rows.append({"epoch": e, "lr": 1e-3 if e < 4 else 2.5e-4,
                     "train_loss": round(1.2 / e, 4), "train_acc": round(0.4 + 0.1 * e, 4),
                     "val_loss": round(1.0 / e + 0.2, 4), "val_acc": round(0.35 + 0.08 * e, 4),
                     "seconds": 10.0 + e})
    with open(d / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    final = {"name": name, "model": "paper_cnn", "classes": list(classes),
             "best_epoch": epochs - 1, "epochs_run": epochs, "stop_reason": "completed",
             "train_time_seconds": 123.4,
             "splits": {"train": {"loss": 0.31, "accuracy": 0.9012},
                        "val": {"log_loss": 0.55, "accuracy": 0.8123},
                        "test": {"log_loss": 0.6, "n_samples": n,
                                 "accuracy": float((proba.argmax(1) == y).mean())}},
             "counts": {"train": {c: 100 + i for i, c in enumerate(classes)},
                        "val": {c: 10 + i for i, c in enumerate(classes)},
                        "test": {c: int((y == i).sum()) for i, c in enumerate(classes)}},
             "data_notes": {"loaded": 999, "balance": {"method": "oversample"}}}
    (d / "final_metrics.json").write_text(json.dumps(final, indent=2))
    (d / "config.resolved.yaml").write_text(
        f"name: {name}\nmodel:\n  name: paper_cnn\ndata:\n  train: fer2013-folder:data/fer2013\n"
        "  balance: oversample\ntrain:\n  epochs: 5\n  batch_size: 64\n")
    (d / "env.json").write_text(json.dumps({"python": "3.x", "torch": "2.x"}))
    (d / "train.log").write_text("epoch 1 ...\nepoch 5 done\n")
    return d
