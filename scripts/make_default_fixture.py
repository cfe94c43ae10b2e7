"""Build the committed FER2013 PrivateTest sample that guards the shipped default model.

    python scripts/make_default_fixture.py data/fer2013 src/ekspresi/assets/models/default
    python scripts/make_default_fixture.py data/fer2013 runs/default-fer-vgg-e72

Copies a seeded random sample of PrivateTest crops (the original JPEG bytes, no re-encoding)
into ``tests/fixtures/fer2013_privatetest/`` and writes ``manifest.json`` with each crop's
true class and the class a FLOAT reference predicts for it: for a training run, its PyTorch
predictions (``predictions_test.npz``); for a bundle, its graph with every int8 step
removed (weights dequantised, see ``ekspresi.export.int8.dequantize_qdq``) run by ONNX
Runtime — for an ensemble bundle that is the float ensemble, flip TTA included.
``tests/test_default_model.py`` then checks that the shipped bundle reproduces those
predictions and the accuracy recorded in its metadata, which catches a broken export, an
int8 graph that computes differently on this CPU, or a stale bundle.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "fer2013_privatetest"


def run_reference(run: Path) -> tuple[list[str], dict[str, str], str]:
    from ekspresi.runs import PREDICTIONS_NAME, read_predictions

    pred = read_predictions(run / PREDICTIONS_NAME)
    by_name = {Path(str(p)).name: pred.classes[int(np.argmax(pr))]
               for p, pr in zip(pred.paths, pred.proba)}
    return list(pred.classes), by_name, f"run {run.name}: PyTorch float predictions"


def bundle_reference(path: Path, files: list[Path]) -> tuple[list[str], dict[str, str], str]:
    from ekspresi.export.int8 import dequantize_qdq, is_qdq
    from ekspresi.imaging import read_image
    from ekspresi.infer import Classifier, load_model
    from ekspresi.infer.bundle import write_bundle

    bundle = load_model(path)
    with tempfile.TemporaryDirectory() as tmp:
        how = f"bundle {bundle.name}: its float graph, ONNX Runtime"
        if is_qdq(bundle.onnx_path):
            dequantize_qdq(bundle.onnx_path, Path(tmp) / "float.onnx")
            bundle = write_bundle(Path(tmp) / "float", Path(tmp) / "float.onnx",
                                  name=bundle.name + "-float", classes=bundle.classes,
                                  input_spec=bundle.input_spec)
            how += " (int8 weights dequantised, activation quantisation removed)"
        clf = Classifier(bundle, threads=2)
        proba = clf.predict_proba([read_image(f) for f in files])
    by_name = {f.name: clf.classes[int(i)] for f, i in zip(files, proba.argmax(1))}
    return list(clf.classes), by_name, how


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("fer2013", type=Path, help="FER2013 Kaggle folder layout (train/, test/)")
    ap.add_argument("reference", type=Path,
                    help="training run (predictions_test.npz) or model bundle")
    ap.add_argument("-n", type=int, default=350, help="number of crops (default 350)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    files = sorted(args.fer2013.glob("test/*/PrivateTest_*"))
    if len(files) < args.n:
        raise SystemExit(f"only {len(files)} PrivateTest crops under {args.fer2013}/test")
    pick = np.random.default_rng(args.seed).choice(len(files), args.n, replace=False)
    chosen = [files[i] for i in sorted(pick)]
    from ekspresi.runs import PREDICTIONS_NAME

    if (args.reference / PREDICTIONS_NAME).is_file():
        classes, by_name, how = run_reference(args.reference)
    else:
        classes, by_name, how = bundle_reference(args.reference, chosen)
    missing = [f.name for f in chosen if f.name not in by_name]
    if missing:
        raise SystemExit(f"the reference has no prediction for {len(missing)} crops, "
                         f"e.g. {missing[0]}")
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    items = []
    for f in chosen:
        if f.parent.name not in classes:
            raise SystemExit(f"{f}: class folder {f.parent.name} is not one of {classes}")
        shutil.copyfile(f, OUT / f.name)
        items.append({"file": f.name, "label": f.parent.name,
                      "reference_prediction": by_name[f.name]})
    acc = float(np.mean([it["label"] == it["reference_prediction"] for it in items]))
    manifest = {"source": "FER2013 PrivateTest (Kaggle folder layout)", "seed": args.seed,
                "reference": how, "classes": classes, "sample_accuracy": round(acc, 4),
                "items": items}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(items)} crops -> {OUT}; the reference's accuracy on them: {acc:.4f}")


if __name__ == "__main__":
    main()
