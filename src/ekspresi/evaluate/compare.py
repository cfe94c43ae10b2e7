"""Comparing training runs in the table shape FER papers publish, plus a model x test-set
accuracy matrix for cross-dataset evaluations.

Numbers come from each run's files: losses and accuracies from ``final_metrics.json``
(falling back to the best epoch of ``metrics.csv``), test precision/recall/F1 recomputed from
``predictions_test.npz`` with the same code as ``ekspresi evaluate`` so all runs are scored
alike. Validation accuracy and validation macro recall are there because papers 4 and 5
reported only those; ``init`` says whether a run started from ImageNet weights or from
scratch, ``protocol`` whose protocol it followed (``paper`` or ``ours``, from the config's
``data.protocol``), and ``collapsed`` flags a (near-)constant predictor, whose accuracy is
the share of one class and not a result. Cross-dataset accuracies come from
``metrics.json`` files written by ``ekspresi evaluate`` (inside a run directory, e.g.
``RUN/eval/``, or given directly).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ekspresi.errors import BadInputError
from ekspresi.evaluate.collapse import COLLAPSE_SHARE, collapse_from_proba
from ekspresi.evaluate.metrics import METRICS_SCHEMA
from ekspresi.evaluate.runs import RunInfo, load_run
from ekspresi.evaluate.tables import Table, matrix_table
from ekspresi.metrics_schema import TRAIN, VAL, SplitMetrics, split_metrics
from ekspresi.runs import FINAL_NAME, PREDICTIONS_NAME, is_run_dir

COLUMNS = ["run", "model", "init", "protocol", "classes", "epochs (best)", "stopped",
           "training time", "train loss", "train acc.", "val loss", "val acc.",
           "val macro recall", "test loss", "test acc.", "test acc. 95 % CI",
           "macro precision", "macro recall", "macro F1", "collapsed"]
KINDS = ["", "", "", "", "", "", "", "s", "f4", "pct", "f4", "pct", "f3", "f4", "pct", "",
         "f3", "f3", "f3", ""]


def _best_row(run: RunInfo) -> dict[str, Any]:
    best = run.final.best_epoch
    if best is not None:
        for h in run.history:
            if int(h["epoch"]) == int(best):
                return h
    if run.history:  # best validation accuracy, as early stopping would pick
        return max(run.history, key=lambda h: (h.get("val_acc") or -1))
    return {}


def _first(*values: Any) -> Any:
    """The first value that was recorded (0 counts)."""
    return next((v for v in values if v is not None), None)


@dataclass
class RunRow:
    run: RunInfo
    values: dict[str, Any] = field(default_factory=dict)
    cross: dict[str, float] = field(default_factory=dict)   # test set -> accuracy


def summarise_run(run: RunInfo) -> RunRow:
    """One comparison row for a run directory."""
    from ekspresi.evaluate.report import run_evaluations

    f, best = run.final, _best_row(run)
    if FINAL_NAME in run.missing and run.predictions is None:
        raise BadInputError(str(run.path), f"has neither {FINAL_NAME} nor {PREDICTIONS_NAME}; "
                                           "nothing to compare (did training finish?)")
    v: dict[str, Any] = {"run": run.name, "model": run.model_name or None,
                         "init": _init_label(run), "protocol": _protocol_label(run),
                         "classes": len(run.classes) if run.classes else None}
    n_epochs = len(run.history) or f.epochs_run
    best_epoch = _first(f.best_epoch, best.get("epoch"))
    v["epochs (best)"] = (f"{n_epochs} ({best_epoch})" if n_epochs and best_epoch
                          else n_epochs)
    v["stopped"] = f.stop_reason
    seconds = f.train_time_seconds
    if seconds is None and run.history and all("seconds" in h for h in run.history):
        seconds = sum(float(h["seconds"] or 0) for h in run.history)
    v["training time"] = seconds
    train, val, test = f.split(TRAIN), f.split(VAL), f.test
    # per-epoch rows (metrics.csv) fill in what a run killed before the end never wrote
    v["train loss"] = _first(train.loss, best.get("train_loss"))
    v["train acc."] = _first(train.accuracy, best.get("train_acc"))
    v["val loss"] = _first(val.log_loss, best.get("val_loss"))
    v["val acc."] = _first(val.accuracy, best.get("val_acc"))
    v["val macro recall"] = val.macro_recall
    v["test loss"], v["test acc."] = test.log_loss, test.accuracy
    v["collapsed"] = _collapse_label(run)
    row = RunRow(run, v)
    evs = run_evaluations(run)
    if evs:
        m = SplitMetrics.model_validate(evs[0].metrics)
        v["test acc."] = m.accuracy
        v["test loss"] = _first(v["test loss"], m.log_loss)
        lo, hi = m.accuracy_ci95
        v["test acc. 95 % CI"] = f"{100 * lo:.2f}–{100 * hi:.2f} %"
        v["_ci"] = (lo, hi)
        test = m
        row.cross.update({e.name: e.metrics["accuracy"] for e in evs})
    v["macro precision"], v["macro recall"], v["macro F1"] = (
        test.macro_precision, test.macro_recall, test.macro_f1)
    for doc in _eval_docs(run.path):
        row.cross.update(_accuracies(doc))
    return row


def _init_label(run: RunInfo) -> str | None:
    """``ImageNet``, ``scratch`` or ``scratch (weights missing)`` from final_metrics.json's
    ``init``; older runs: from the config (``pretrained: true`` could only run with them)."""
    init = run.final.init
    if init is not None:
        if init.startswith("imagenet"):
            return "ImageNet"
        return "scratch (weights missing)" if init.startswith("scratch:") else "scratch"
    model = run.config.get("model") if isinstance(run.config.get("model"), dict) else {}
    if model.get("weights") or model.get("pretrained") is True:
        return "ImageNet"
    if model.get("pretrained") is False:
        return "scratch"
    return None


def _protocol_label(run: RunInfo) -> str | None:
    text = run.final.protocol
    if text is None:
        data = run.config.get("data") if isinstance(run.config.get("data"), dict) else {}
        text = data.get("protocol")
    if not isinstance(text, str) or not text.strip():
        return None
    return text.split(":", 1)[0].strip()


def _collapse_label(run: RunInfo) -> str:
    """``""`` for a healthy run; else which split collapsed onto which class (from the stored
    test predictions, so runs older than the flag are checked too, and final_metrics)."""
    found = []
    if run.predictions is not None:
        c = collapse_from_proba(run.predictions.proba, run.predictions.classes)
        if c["collapsed"]:
            found.append(f"test: {c['top_class']} {100 * c['top_share']:.0f} %")
    stored = run.final.collapse
    if stored is not None:
        for split in ("val", "test"):
            c = stored.get(split)
            if (isinstance(c, Mapping) and c.get("collapsed")
                    and not any(x.startswith(f"{split}:") for x in found)):
                found.append(f"{split}: {c.get('top_class')} "
                             f"{100 * float(c.get('top_share', 1)):.0f} %")
    return "; ".join(sorted(found, key=lambda x: x.startswith("test"))) if found else ""


def _eval_docs(directory: Path) -> list[dict[str, Any]]:
    """metrics.json files written by `ekspresi evaluate` in ``directory`` or one level down."""
    docs = []
    for p in sorted([directory / "metrics.json", *directory.glob("*/metrics.json")]):
        if p.is_file():
            try:
                doc = json.loads(p.read_text())
            except json.JSONDecodeError as exc:
                raise BadInputError(str(p), f"invalid JSON ({exc})") from None
            if isinstance(doc, dict) and doc.get("schema") == METRICS_SCHEMA and "datasets" in doc:
                docs.append(doc)
    return docs


def _accuracies(doc: Mapping[str, Any]) -> dict[str, float]:
    """Test set -> accuracy; a TTA result gets its own column (``fer2013 test, tta flip``)
    so it never replaces the plain number of the same test set."""
    out = {}
    for name, block in doc["datasets"].items():
        m = split_metrics(block, f"metrics.json of {doc.get('model', {}).get('name', '?')}")
        tta = (m.tta or {}).get("mode", "none")
        out[name if tta == "none" else f"{name}, tta {tta}"] = float(m.accuracy)
    return out


def cross_dataset_table(rows: Sequence[RunRow], extra: Mapping[str, Mapping[str, float]]
                        ) -> Table | None:
    """Model (run) x test set accuracy; None when there is only one test set."""
    models = {r.run.name: r.cross for r in rows if r.cross}
    models.update({k: dict(v) for k, v in extra.items()})
    sets = list(dict.fromkeys(s for acc in models.values() for s in acc))
    if len(sets) < 2:  # one test set: the main table's test accuracy already says it all
        return None
    return matrix_table("model \\ test set", list(models), sets,
                        [[acc.get(s) for s in sets] for acc in models.values()], "pct")


def build_comparison(run_dirs: Sequence[str | Path]
                     ) -> tuple[Table, list[RunRow], Table | None]:
    """(comparison table, per-run rows, cross-dataset accuracy matrix or None)."""
    rows: list[RunRow] = []
    extra: dict[str, dict[str, float]] = {}
    for d in map(Path, run_dirs):
        if is_run_dir(d):
            rows.append(summarise_run(load_run(d)))
            continue
        docs = _eval_docs(d) if d.is_dir() else []
        if not docs:
            raise BadInputError(str(d), "neither a training run directory nor an "
                                        "`ekspresi evaluate` output folder (metrics.json)")
        for doc in docs:
            name = (doc.get("model") or {}).get("name") or d.name
            extra.setdefault(name, {}).update(_accuracies(doc))
    table = Table(list(COLUMNS), [[r.values.get(c) for c in COLUMNS] for r in rows],
                  list(KINDS))
    return table, rows, cross_dataset_table(rows, extra)


def compare_runs(run_dirs: Sequence[str | Path], out_dir: str | Path | None = None) -> Table:
    """The comparison table of ``run_dirs`` (run directories, or `ekspresi evaluate` output
    folders for the cross-dataset matrix). With ``out_dir``, also write comparison.md /
    .csv / .html, cross_dataset.csv and a bar chart (PNG + SVG)."""
    table, rows, cross = build_comparison(run_dirs)
    if out_dir is not None:
        write_comparison(Path(out_dir), table, rows, cross)
    return table


def write_comparison(out: Path, table: Table, rows: Sequence[RunRow],
                     cross: Table | None) -> dict[str, Path]:
    from ekspresi.evaluate import plots
    from ekspresi.evaluate.templating import Figure, render

    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    (out / "comparison.csv").write_text(table.to_csv())
    files["comparison.csv"] = out / "comparison.csv"
    if cross is not None:
        (out / "cross_dataset.csv").write_text(cross.to_csv())
        files["cross_dataset.csv"] = out / "cross_dataset.csv"
    fig_paths = None
    collapsed = [r.run.name for r in rows if r.values.get("collapsed")]
    if rows:
        names = [r.run.name + (" [collapsed]" if r.run.name in collapsed else "") for r in rows]
        fig = plots.comparison_figure(
            names, {"test accuracy": [r.values.get("test acc.") for r in rows],
                    "macro F1": [r.values.get("macro F1") for r in rows]},
            errors={"test accuracy": [r.values.get("_ci") for r in rows]})
        fig_paths = plots.save(fig, out / "comparison")
        files.update({f"comparison.{k}": p for k, p in fig_paths.items()})
    md = ["# Run comparison\n", table.to_markdown()]
    warn = None
    if collapsed:
        warn = (f"Collapsed runs (one class for at least {100 * COLLAPSE_SHARE:.0f} % of the "
                "predictions): " + ", ".join(collapsed) + ". These are constant predictors; "
                "their accuracy is the share of that class in the test set, not a result.")
        md.append(f"\n> **{warn}**\n")
    if fig_paths:
        md.append("![test accuracy and macro F1](comparison.png) ([SVG](comparison.svg))\n")
    if cross is not None:
        md += ["\n## Accuracy per test set (cross-dataset)\n", cross.to_markdown()]
    note = ("Test accuracy interval: percentile bootstrap over the test samples; macro "
            "precision/recall/F1 recomputed from each run's predictions_test.npz.")
    md.append(f"\n{note}\n")
    (out / "comparison.md").write_text("\n".join(md))
    charts = ([Figure("test accuracy (95 % CI) and macro F1", fig_paths["png"])]
              if fig_paths else [])
    (out / "comparison.html").write_text(render(
        "comparison.html", title="Run comparison", comparison=table, collapsed_note=warn,
        charts=charts, cross=cross, note=note))
    files["comparison.md"] = out / "comparison.md"
    files["comparison.html"] = out / "comparison.html"
    return files
