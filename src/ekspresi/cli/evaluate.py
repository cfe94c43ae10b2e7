"""`ekspresi evaluate`: score a model on test sets, or report on a training run.

Imports nothing heavy at module level (the CLI's --help must stay instant).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ekspresi.cli.options import add_data, add_detector, add_model, add_output

TTA_CHOICES = ("none", "flip", "multicrop")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="evaluate a model on datasets",
        description="Evaluate MODEL (a run directory, a bundle directory or `default`) on "
                    "one or more test sets, or, given only a run directory, write the run's "
                    "report from its stored test predictions. Writes metrics.json, plots, "
                    "report.html (self-contained) and report.md.")
    add_model(p, positional=True)
    add_data(p, help="test set, e.g. fer2013-folder:data/fer2013 (repeat for a cross-dataset "
                     "test)",
             repeat=True, split=True)
    p.add_argument("--tta", choices=TTA_CHOICES, default="none",
                   help="test-time augmentation; the report also shows the result without it")
    p.add_argument("--classes", default=None,
                   help="evaluate only these classes (comma list or subset name such as "
                        "`three`); the model then decides among them only")
    add_detector(p, tuning=False, default=None,
                 when=" run on each image first (whole photos such as JAFFE; images "
                      "without a face are counted)")
    add_output(p, metavar="DIR",
               help="output folder (default: RUN/report, RUN/eval, or eval-<model>)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unreadable images (they are counted) instead of stopping")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ekspresi.errors import EkspresiError
    from ekspresi.evaluate.evaluator import evaluate_spec
    from ekspresi.evaluate.report import summary_table, write_report, write_run_report
    from ekspresi.infer import Classifier
    from ekspresi.infer.bundle import is_bundle_dir
    from ekspresi.infer.resolve import DEFAULT_MODEL, resolve_model
    from ekspresi.labels import parse_classes
    from ekspresi.runs import is_run_dir

    model_spec = args.model or DEFAULT_MODEL
    target = Path(model_spec)
    only = parse_classes(args.classes) if args.classes else None
    if not args.data:
        if model_spec != DEFAULT_MODEL and is_run_dir(target) and not is_bundle_dir(target):
            files = write_run_report(target, args.out)
            _print_headline(files["metrics.json"])
            _print_done(files)
            return 0
        raise EkspresiError(f"{model_spec}: give at least one --data SPEC to evaluate a "
                            "model bundle (only a run directory can be reported on alone)")

    resolved = resolve_model(model_spec)
    bundle, run_dir = resolved.load(), resolved.run_dir
    classifier = Classifier(bundle)
    predict_proba = classifier.predict_proba
    face_crop = _face_cropper(classifier, args.detector) if args.detector else None
    evaluations = []
    seen: set[str] = set()
    for spec in args.data:
        print(f"evaluating {bundle.name} on {spec} ...", file=sys.stderr)
        ev = evaluate_spec(predict_proba, bundle.classes, bundle.input_spec.size, spec,
                           split=args.split, only=only, tta=args.tta, seed=args.seed,
                           skip_bad=args.skip_bad, face_crop=face_crop,
                           detector_name=args.detector or "")
        base, n = ev.name, 2
        while ev.name in seen:
            ev.name = f"{base} #{n}"
            n += 1
        seen.add(ev.name)
        evaluations.append(ev)
    model = {"name": bundle.name, "bundle": str(bundle.path), "classes": list(bundle.classes),
             "input_size": bundle.input_spec.size, "sha256": bundle.sha256}
    if run_dir is not None:
        model["run"] = str(run_dir)
    out = Path(args.out) if args.out else (
        run_dir / "eval" if run_dir is not None else Path(f"eval-{bundle.name}"))
    if run_dir is not None:
        from ekspresi.evaluate.runs import load_run

        files = write_report(out, evaluations, model=model, run=load_run(run_dir),
                             face_size=bundle.input_spec.size)
    else:
        files = write_report(out, evaluations, model=model, face_size=bundle.input_spec.size)
    print(summary_table(evaluations).to_markdown())
    for ev in evaluations:
        for note in ev.dataset.get("notes", []):
            print(f"note ({ev.name}): {note}")
    _print_done(files)
    return 0


def _print_done(files: dict) -> None:
    for key in ("metrics.json", "report.html", "report.md"):
        if key in files:
            print(f"wrote {files[key]}")


def _face_cropper(classifier, detector: str):
    """image -> the best-scoring face, cut out exactly as the app does (detector, eye
    alignment, margin, resize), or None when the detector finds no face."""
    from ekspresi.infer import Recognizer

    rec = Recognizer(classifier, detector=detector)

    def crop(image):
        detections = rec.detector.detect(image)
        if not detections:
            return None
        batch, _, _ = rec.crop_faces(image, detections[:1])
        return batch[0]
    return crop


def _print_headline(metrics_json: Path) -> None:
    import json

    doc = json.loads(Path(metrics_json).read_text())
    if not doc.get("datasets"):
        print("no test predictions in the run (predictions_test.npz): report has the "
              "training part only")
    for name, b in doc.get("datasets", {}).items():
        lo, hi = b["accuracy_ci95"]
        print(f"{name}: {b['n_samples']} samples, accuracy {100 * b['accuracy']:.2f} % "
              f"(95 % CI {100 * lo:.2f}-{100 * hi:.2f} %), macro F1 {b['macro_f1']:.3f}")
