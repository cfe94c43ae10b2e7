"""Build the committed FER2013 PrivateTest sample that guards the shipped default model.

    python scripts/make_default_fixture.py data/fer2013 runs/default-fer-vgg-e72

Copies a seeded random sample of PrivateTest crops (the original JPEG bytes, no re-encoding)
into ``tests/fixtures/fer2013_privatetest/`` and writes ``manifest.json`` with each crop's
true class and the class the training run predicted for it in PyTorch
(``predictions_test.npz``). ``tests/test_default_model.py`` then checks that the shipped ONNX
bundle reproduces those predictions and the accuracy recorded in its metadata, which catches
a broken export, a wrong preprocessing step or a stale bundle.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "fer2013_privatetest"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("fer2013", type=Path, help="FER2013 Kaggle folder layout (train/, test/)")
    ap.add_argument("run", type=Path, help="training run directory with predictions_test.npz")
    ap.add_argument("-n", type=int, default=350, help="number of crops (default 350)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    pred = np.load(args.run / "predictions_test.npz")
    classes = [str(c) for c in pred["classes"]]
    by_name = {Path(str(p)).name: (int(y), int(np.argmax(pr)))
               for p, y, pr in zip(pred["paths"], pred["labels"], pred["probabilities"])}
    files = sorted(args.fer2013.glob("test/*/PrivateTest_*"))
    files = [f for f in files if f.name in by_name]
    if len(files) < args.n:
        raise SystemExit(f"only {len(files)} PrivateTest crops match the run's predictions")
    pick = np.random.default_rng(args.seed).choice(len(files), args.n, replace=False)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    items = []
    for i in sorted(pick):
        f = files[i]
        label, predicted = by_name[f.name]
        if classes[label] != f.parent.name:
            raise SystemExit(f"{f}: folder {f.parent.name} != run label {classes[label]}")
        shutil.copyfile(f, OUT / f.name)
        items.append({"file": f.name, "label": classes[label], "run_prediction": classes[predicted]})
    acc = float(np.mean([it["label"] == it["run_prediction"] for it in items]))
    manifest = {"source": "FER2013 PrivateTest (Kaggle folder layout)", "seed": args.seed,
                "run": args.run.name, "classes": classes, "sample_accuracy": round(acc, 4),
                "items": items}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(items)} crops -> {OUT}; the run's accuracy on them: {acc:.4f}")


if __name__ == "__main__":
    main()
