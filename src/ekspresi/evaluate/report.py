"""Evaluation and run reports: ``metrics.json``, plots, ``report.html`` and ``report.md``.

The HTML report is one self-contained file (CSS inline, figures as base64 PNG), so it can be
mailed, attached to a paper review or opened offline years later. The Markdown summary
beside it links the PNG/SVG files in ``plots/`` and renders on GitHub. ``metrics.json`` is
the machine-readable source of every number in both (schema in ``docs/evaluation.md``).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ekspresi._version import __version__
from ekspresi.errors import BadInputError, EkspresiError
from ekspresi.evaluate import plots
from ekspresi.evaluate.collapse import collapse_from_proba, collapse_message
from ekspresi.evaluate.evaluator import DatasetEvaluation, score
from ekspresi.evaluate.gallery import select_gallery
from ekspresi.evaluate.mapping import map_classes
from ekspresi.evaluate.metrics import METRICS_SCHEMA
from ekspresi.evaluate.runs import RunInfo, load_run
from ekspresi.evaluate.tables import Table, fmt, matrix_table
from ekspresi.evaluate.templating import Figure, render
from ekspresi.labels import ALL_CLASSES
from ekspresi.runs import PREDICTIONS_NAME, slug

GALLERY_PER_CLASS = 6
REPORT_DIR = "report"


# -- metrics.json ------------------------------------------------------------------------

def metrics_document(evaluations: Sequence[DatasetEvaluation], *,
                     model: Mapping[str, Any] | None = None,
                     run: RunInfo | None = None) -> dict[str, Any]:
    """The metrics.json content: the first test set's block at top level (so single-dataset
    consumers read ``doc["accuracy"]``) and every block under ``datasets`` by name."""
    doc: dict[str, Any] = {
        "schema": METRICS_SCHEMA,
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "ekspresi_version": __version__,
        "model": dict(model or {}),
    }
    if evaluations:
        doc.update(evaluations[0].block())
        doc["datasets"] = {e.name: e.block() for e in evaluations}
    if run is not None:
        doc["run"] = {"name": run.name, "path": str(run.path), "final_metrics": run.final.to_dict(),
                      "epochs_logged": len(run.history), "missing_files": run.missing}
    return doc


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path: Path, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, default=_json_default, allow_nan=False)
    path.write_text(text + "\n")
    return path


# -- figures -------------------------------------------------------------------------------

def _gallery_faces(ev: DatasetEvaluation, indices: Sequence[int], size: int,
                   ) -> tuple[dict[int, np.ndarray], int]:
    """Faces for the gallery rows: from the evaluated arrays, else read from the sample
    paths (stored run predictions). Returns (faces, number that could not be read)."""
    if ev.faces is not None:
        return {i: ev.faces[i] for i in indices}, 0
    from ekspresi.imaging import read_image
    from ekspresi.preprocess import prepare_face

    out, unreadable = {}, 0
    for i in indices:
        path = None if ev.paths is None else str(ev.paths[i])
        try:
            if not path:
                raise BadInputError(None, "no path")
            out[i] = prepare_face(read_image(path), size)
        except EkspresiError:
            unreadable += 1
    return out, unreadable


def dataset_figures(ev: DatasetEvaluation, plot_dir: Path, *, face_size: int = 48,
                    ) -> dict[str, dict[str, Path]]:
    """Every figure of one test set -> {figure name: {format: path}}."""
    m, classes, stem = ev.metrics, list(ev.classes), slug(ev.name)
    figs: dict[str, dict[str, Path]] = {}
    for key, norm in (("confusion_counts", False), ("confusion_normalized", True)):
        cm = m["confusion_matrix_normalized" if norm else "confusion_matrix"]
        figs[key] = plots.save(plots.confusion_matrix_figure(
            cm, classes, normalized=norm,
            title=f"{ev.name}: confusion matrix ({'row-normalised' if norm else 'counts'})"),
            plot_dir / f"{stem}_{key}")
    figs["per_class"] = plots.save(plots.per_class_figure(
        m["per_class"], classes, title=f"{ev.name}: per-class precision, recall, F1"),
        plot_dir / f"{stem}_per_class")
    figs["reliability"] = plots.save(plots.reliability_figure(
        m["calibration"], ece=m["ece"], title=f"{ev.name}: reliability (ECE {m['ece']:.3f})"),
        plot_dir / f"{stem}_reliability")
    picks = select_gallery(ev.y_true, ev.proba, GALLERY_PER_CLASS)
    wanted = sorted({it.index for kind in picks.values() for items in kind.values()
                     for it in items})
    faces, unreadable = _gallery_faces(ev, wanted, face_size)
    if unreadable:
        ev.dataset.setdefault("notes", []).append(
            f"{unreadable} gallery images could not be read from their paths and are left out")
    for kind, label in (("mistakes", "misclassified, most confident first"),
                        ("correct", "correctly classified, most confident first")):
        items = {c: [it for it in lst if it.index in faces] for c, lst in picks[kind].items()}
        fig = plots.gallery_figure(faces, items, classes, title=f"{ev.name}: {label}")
        if fig is not None:
            figs[f"gallery_{kind}"] = plots.save(fig, plot_dir / f"{stem}_gallery_{kind}")
    return figs


# -- tables ----------------------------------------------------------------------------

SUMMARY_COLUMNS = ["test set", "samples", "accuracy", "95 % CI", "balanced acc.",
                   "macro precision", "macro recall", "macro F1", "weighted F1",
                   "top-2 acc.", "log-loss", "ECE", "TTA"]


def summary_table(evaluations: Sequence[DatasetEvaluation]) -> Table:
    rows = []
    for e in evaluations:
        m = e.metrics
        lo, hi = m["accuracy_ci95"]
        tta = m.get("tta", {})
        tta_txt = tta.get("mode", "none")
        if "accuracy_gain" in tta:
            tta_txt += f" ({100 * tta['accuracy_gain']:+.2f} pts)"
        rows.append([e.name, m["n_samples"], m["accuracy"],
                     f"{100 * lo:.2f}–{100 * hi:.2f} %", m["balanced_accuracy"],
                     m["macro_precision"], m["macro_recall"], m["macro_f1"],
                     m["weighted_f1"], m["top2_accuracy"], m["log_loss"], m["ece"], tta_txt])
    return Table(SUMMARY_COLUMNS, rows,
                 ["", "", "pct", "", "pct", "f3", "f3", "f3", "f3", "pct", "f3", "f3", ""])


def per_class_table(ev: DatasetEvaluation) -> Table:
    rows = [[c, d["precision"], d["recall"], d["f1"], d["support"], d["tp"], d["fp"],
             d["fn"], d["tn"]] for c, d in ev.metrics["per_class"].items()]
    return Table(["class", "precision", "recall", "F1", "support", "TP", "FP", "FN", "TN"],
                 rows, ["", "f3", "f3", "f3"])


def confusion_table(ev: DatasetEvaluation) -> Table:
    return matrix_table("true \\ predicted", list(ev.classes), list(ev.classes),
                        ev.metrics["confusion_matrix"])


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dict -> [(dotted key, scalar or short JSON)] for key/value tables."""
    if isinstance(obj, Mapping):
        out: list[tuple[str, Any]] = []
        for k, v in obj.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(obj, (list, tuple)):
        return [(prefix, json.dumps(obj, default=_json_default)[:200])]
    return [(prefix, obj)]


#: The config keys of class balancing shown in a run report (``data.*``).
BALANCING_KEYS = ("balance", "balance_scope")


def _counts_table(counts: Mapping[str, Mapping[str, int]]) -> Table:
    """Images per class (rows) and split (columns) from final_metrics.json's ``counts``."""
    cols = list(counts)
    names = [c for c in ALL_CLASSES if any(c in counts[s] for s in cols)]
    names += [k for s in cols for k in counts[s] if k not in names]
    names = list(dict.fromkeys(names))
    rows = [[n, *[counts[s].get(n) for s in cols]] for n in names]
    rows.append(["total", *[sum(counts[s].values()) for s in cols]])
    return Table(["class", *cols], rows)


def run_summary_table(run: RunInfo) -> Table:
    rows: list[list[Any]] = [["run", run.name], ["model", run.model_name or None],
                             ["classes", ", ".join(run.classes or ()) or None],
                             ["epochs logged", len(run.history) or None]]
    shown = run.final.model_dump(exclude_unset=True,
                                 exclude={"model", "classes", "counts", "data_notes"})
    for key, value in shown.items():
        for k, v in _flatten({key: value}):
            if isinstance(v, float):
                v = fmt(v, "s") if ("time" in k or "second" in k) else fmt(v, "f4")
            rows.append([k, v])
    return Table(["", "value"], rows)


# -- rendering (templates/report.html, templates/report.md) ------------------------------

_FIG_CAPTIONS = {
    "confusion_counts": "confusion matrix, counts (rows = true class)",
    "confusion_normalized": "confusion matrix, row-normalised (diagonal = recall)",
    "per_class": "per-class precision, recall, F1",
    "reliability": "reliability diagram",
    "gallery_mistakes": "misclassified faces, most confident mistakes first",
    "gallery_correct": "correctly classified faces",
    "learning_curves": "learning curves (train vs validation), learning rate on the right axis",
}

SUMMARY_NOTE = ("Accuracy intervals: percentile bootstrap over test samples. Averages "
                "(macro, weighted, balanced accuracy) run over the classes present in each "
                "test set. ECE: 15 equal-width confidence bins.")


def _figures(figs: Mapping[str, Mapping[str, Path]], keys: Sequence[str], out_dir: Path
             ) -> list[Figure]:
    return [Figure(_FIG_CAPTIONS.get(k, k), figs[k]["png"],
                   figs[k]["png"].relative_to(out_dir).as_posix(),
                   figs[k]["svg"].relative_to(out_dir).as_posix()) for k in keys if k in figs]


def _model_rows(model: Mapping[str, Any]) -> Table:
    rows = [[k, ", ".join(v) if isinstance(v, (list, tuple)) else v]
            for k, v in model.items() if v not in (None, "", [], {})]
    return Table(["model", "value"], rows)


@dataclass
class DatasetSection:
    """What the report says about one test set."""

    name: str
    intro: str
    notes: list[str]
    collapse: str | None
    lines: list[str]          # detection and test-time augmentation, when used
    per_class: Table
    confusion: Table
    figures: list[Figure]
    galleries: list[Figure]


def _dataset_section(ev: DatasetEvaluation, figs: Mapping[str, Mapping[str, Path]],
                     out_dir: Path) -> DatasetSection:
    m, info = ev.metrics, ev.dataset
    lo, hi = m["accuracy_ci95"]
    intro = (f"{m['n_samples']} samples evaluated"
             + (f" of {info['n_loaded']} loaded" if info.get("n_loaded") not in
                (None, m["n_samples"]) else "")
             + (f" (data: {info['spec']}, split: {info.get('split')})" if info.get("spec")
                else "")
             + f". Accuracy {100 * m['accuracy']:.2f} % "
               f"(95 % CI {100 * lo:.2f}–{100 * hi:.2f} %), macro F1 {m['macro_f1']:.3f}.")
    collapse = collapse_from_proba(ev.proba, ev.classes)
    lines = []
    det = m.get("detection")
    if det:
        lines.append(f"Faces found by the {det['detector']} face detector in "
                     f"{det['images'] - det['no_face']} of {det['images']} images; end-to-end "
                     f"accuracy (a missed face counts as an error) "
                     f"{100 * det['end_to_end_accuracy']:.2f} %.")
    tta = m.get("tta", {})
    if "accuracy_gain" in tta:
        lines.append(f"Test-time augmentation ({tta['mode']}): accuracy "
                     f"{100 * tta['accuracy_without_tta']:.2f} % → {100 * m['accuracy']:.2f} % "
                     f"({100 * tta['accuracy_gain']:+.2f} points), macro F1 "
                     f"{tta['macro_f1_without_tta']:.3f} → {m['macro_f1']:.3f}; "
                     f"{tta['changed_predictions']} predictions changed.")
    return DatasetSection(
        ev.name, intro, list(info.get("notes", [])),
        collapse_message(collapse, ev.name) if collapse["collapsed"] else None, lines,
        per_class_table(ev), confusion_table(ev),
        _figures(figs, ["confusion_counts", "confusion_normalized", "per_class",
                        "reliability"], out_dir),
        _figures(figs, ["gallery_mistakes", "gallery_correct"], out_dir))


@dataclass
class RunSection:
    """What the report says about the training run."""

    name: str
    collapse: str | None
    missing: list[str]
    summary: Table
    counts: Table | None
    notes: Table | None
    balancing: Table | None
    epochs_line: str | None
    curves: list[Figure]
    history: Table | None
    config_text: str
    env: Table | None
    log_tail: str


def _run_section(run: RunInfo, figs: Mapping[str, Mapping[str, Path]], out_dir: Path
                 ) -> RunSection:
    f = run.final
    collapse = None
    if f.collapsed:
        collapse = str(f.collapse.get("message") or "collapsed model (one class predicted "
                                                    "for nearly every image)")
    data_cfg = run.config.get("data") if isinstance(run.config.get("data"), dict) else {}
    balancing = [[f"data.{k}", data_cfg[k]] for k in BALANCING_KEYS if k in data_cfg]
    seconds = [h.get("seconds") for h in run.history if h.get("seconds") is not None]
    cols = list(dict.fromkeys(k for h in run.history for k in h))
    return RunSection(
        name=run.name, collapse=collapse, missing=list(run.missing),
        summary=run_summary_table(run),
        counts=_counts_table(f.counts) if f.counts else None,
        notes=(Table(["data_notes", "value"], [list(r) for r in _flatten(f.data_notes)])
               if f.data_notes else None),
        balancing=Table(["balancing setting", "value"], balancing) if balancing else None,
        epochs_line=(f"{len(run.history)} epochs, {sum(seconds):,.1f} s in the epoch loop "
                     f"(mean {sum(seconds) / len(seconds):,.1f} s per epoch)."
                     if seconds else None),
        curves=_figures(figs, ["learning_curves"], out_dir),
        history=(Table(cols, [[h.get(c) for c in cols] for h in run.history])
                 if run.history else None),
        config_text=run.config_text,
        env=(Table(["environment", "value"], [list(r) for r in _flatten(run.env)])
             if run.env else None),
        log_tail=run.log_tail)


def write_report(out_dir: str | Path, evaluations: Sequence[DatasetEvaluation], *,
                 model: Mapping[str, Any] | None = None, run: RunInfo | None = None,
                 title: str | None = None, face_size: int = 48) -> dict[str, Path]:
    """Write metrics.json, plots/, report.html and report.md into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot_dir = out / "plots"
    figs = {e.name: dataset_figures(e, plot_dir, face_size=face_size) for e in evaluations}
    run_figs: dict[str, dict[str, Path]] = {}
    if run is not None and run.history:
        run_figs["learning_curves"] = plots.save(plots.learning_curves_figure(
            run.history, best_epoch=run.final.best_epoch,
            title=run.name), plot_dir / "learning_curves")

    files = {"metrics.json": write_json(out / "metrics.json", metrics_document(
        evaluations, model=model, run=run))}
    title = title or (f"ekspresi report: {run.name}" if run is not None
                      else f"ekspresi evaluation: {(model or {}).get('name', 'model')}")
    context = dict(
        title=title, stamp=_dt.datetime.now().isoformat(timespec="seconds"),
        version=__version__, model_table=_model_rows(model) if model else None,
        summary=summary_table(evaluations) if evaluations else None,
        summary_note=SUMMARY_NOTE,
        run=_run_section(run, run_figs, out) if run is not None else None,
        datasets=[_dataset_section(e, figs[e.name], out) for e in evaluations])
    for name in ("report.html", "report.md"):
        (out / name).write_text(render(name, **context), encoding="utf-8")
        files[name] = out / name
    for group in (*figs.values(), run_figs):
        for name, paths in group.items():
            for fmt_, p in paths.items():
                files[p.relative_to(out).as_posix()] = p
    return files


def run_evaluations(run: RunInfo) -> list[DatasetEvaluation]:
    """The run's own test-set evaluation from its stored predictions (no model needed):
    one block named like `ekspresi evaluate` names it (``fer2013 test``), and for a combined
    test set one more per source dataset."""
    pred = run.predictions
    if pred is None:
        return []
    bad = [int(v) for v in np.unique(pred.labels) if not 0 <= v < len(pred.classes)]
    if bad:
        raise BadInputError(str(run.path / PREDICTIONS_NAME),
                            f"labels {bad} outside the {len(pred.classes)} classes")
    labels_all = np.array([ALL_CLASSES.index(pred.classes[i]) for i in pred.labels])
    sources = sorted(set(pred.sources.tolist())) if pred.sources is not None else []
    # only an official split is the test set `ekspresi evaluate --split test` reads; a
    # run's own held-out part gets a name of its own so the two are never merged
    data_cfg = run.config.get("data") if isinstance(run.config.get("data"), dict) else {}
    method = str(data_cfg.get("split", "official"))
    suffix = "test" if method == "official" else f"test ({method} split of the run)"
    parts: list[tuple[str, np.ndarray]] = []
    if len(sources) == 1:
        parts.append((f"{sources[0]} {suffix}", np.ones(len(labels_all), bool)))
    else:
        parts.append((f"all sources {suffix}" if sources else "test set",
                      np.ones(len(labels_all), bool)))
        parts += [(f"{s} {suffix}", pred.sources == s) for s in sources]
    out = []
    for name, m in parts:
        mapping = map_classes(labels_all[m], pred.classes)
        info = {"source": f"{PREDICTIONS_NAME} of the run", "split": "test",
                "n_loaded": int(m.sum()), "notes": []}
        out.append(score(name, mapping, pred.proba[m],
                         paths=None if pred.paths is None else pred.paths[m], dataset=info))
    return out


def write_run_report(run_dir: str | Path, out_dir: str | Path | None = None, *,
                     evaluations: Sequence[DatasetEvaluation] = ()) -> dict[str, Path]:
    """The per-run report (training can call this at the end of a run): config, dataset
    statistics, curves, test metrics from ``predictions_test.npz`` plus any extra
    ``evaluations``. Written to ``run_dir/report`` unless ``out_dir`` is given."""
    run = load_run(run_dir)
    evs = [*run_evaluations(run), *evaluations]
    model: dict[str, Any] = {"name": run.model_name or run.name, "run": str(run.path)}
    size = 48
    if run.bundle_path is not None:
        from ekspresi.infer.bundle import load_bundle

        b = load_bundle(run.bundle_path, verify=False)
        model.update({"bundle": str(b.path), "classes": list(b.classes),
                      "input_size": b.input_spec.size, "sha256": b.sha256})
        size = b.input_spec.size
    elif run.classes:
        model["classes"] = list(run.classes)
    return write_report(Path(out_dir) if out_dir else run.path / REPORT_DIR, evs,
                        model=model, run=run, face_size=size)
