"""Writing a shippable bundle from a training run, optionally quantised to int8.

The float bundle is copied with its verified hash, the run's metrics filled in where the
bundle lacks them, and the run's ``final_metrics.json`` / ``train.log`` / ``metrics.csv``
beside it (the project ships the bundled model with the evidence of how it was made).

``--int8`` uses ONNX Runtime's static QDQ quantisation (:mod:`ekspresi.export.int8`:
per-channel 7-bit weights, activations calibrated on a few hundred faces of the TRAINING
split — of ``--calib-data``, ``--data`` or the run's own first data source — never on the
faces the drop is measured on) and then MEASURES what it costs: the float and the int8
graph classify the same evaluation faces and the accuracy of both, their difference and
their agreement are written into the bundle's metadata (``quantization``).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ekspresi.errors import BadInputError
from ekspresi.infer.bundle import CARD_PLOTS, ONNX_NAME, Bundle, write_bundle
from ekspresi.infer.resolve import resolve_model
from ekspresi.labels import ALL_CLASSES
from ekspresi.metrics_schema import (
    TEST,
    TRAIN,
    VAL,
    Metrics,
    SplitMetrics,
    load_metrics,
    read_metrics,
    split_metrics,
)
from ekspresi.runs import (
    CONFIG_NAME,
    FINAL_NAME,
    HISTORY_CSV,
    LOG_NAME,
    PREDICTIONS_NAME,
    read_predictions,
    slug,
)

log = logging.getLogger(__name__)

RUN_FILES = (FINAL_NAME, LOG_NAME, HISTORY_CSV, CONFIG_NAME)
#: Logs above this size are shipped as their tail only (nothing big goes into the repo).
MAX_LOG_BYTES = 512 * 1024
CALIBRATION_FACES = 300
STANDARD_KEYS = {"format", "name", "classes", "input", "preprocessing_version", "onnx",
                 "training", "metrics", "created", "ekspresi_version"}


@dataclass
class EvalSet:
    faces: np.ndarray      # uint8 (N, size, size)
    labels: np.ndarray     # indices into the bundle's classes
    source: str


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInputError(str(path), f"cannot read JSON ({exc})") from None


def _map_labels(labels: np.ndarray, names: tuple[str, ...], classes: tuple[str, ...]
                ) -> tuple[np.ndarray, np.ndarray]:
    """Keep samples whose class the model has; return (mask, label index in ``classes``)."""
    lookup = {i: classes.index(n) for i, n in enumerate(names) if n in classes}
    keep = np.array([int(lab) in lookup for lab in labels], bool)
    return keep, np.array([lookup[int(lab)] for lab in labels[keep]], np.int64)


def load_dataset_faces(spec: str, classes: tuple[str, ...], size: int, split: str | None
                       ) -> EvalSet:
    """Faces of one dataset (``split`` if the dataset has it, else all samples)."""
    from ekspresi.data import load
    from ekspresi.data.cache import faces_array

    ss = load(spec, classes=list(classes))
    if split and (ss.splits == split).any():
        ss = ss.subset(ss.splits == split)
        source = f"{spec} ({split} split)"
    else:
        source = f"{spec} (all samples)"
    keep, labels = _map_labels(ss.labels, ALL_CLASSES, classes)
    ss = ss.subset(keep)
    if not len(ss):
        raise BadInputError(spec, f"no samples of the model's classes {list(classes)}")
    return EvalSet(faces_array(ss, size), labels, source)


def load_run_test_faces(run: Path, bundle: Bundle) -> EvalSet:
    """The run's own test set, re-read from the image paths in predictions_test.npz."""
    from ekspresi.imaging import read_image
    from ekspresi.preprocess import prepare_face

    pred_path = run / PREDICTIONS_NAME
    if not pred_path.is_file():
        raise BadInputError(str(run), f"has no {PREDICTIONS_NAME}; pass --data DATASET to "
                                      "measure the int8 accuracy on")
    preds = read_predictions(pred_path, bundle.classes)
    if preds.paths is None:
        raise BadInputError(str(pred_path), "lists no image paths; pass --data DATASET")
    faces, labels = [], []
    for p, lab in zip(preds.paths, preds.labels):
        if not Path(p).is_file():
            raise BadInputError(str(pred_path), f"test image {p} is not a readable file "
                                                "(CSV rows or moved data?); pass --data DATASET")
        faces.append(prepare_face(read_image(p), bundle.input_spec.size))
        labels.append(lab)
    keep, mapped = _map_labels(np.asarray(labels), preds.classes, bundle.classes)
    return EvalSet(np.stack(faces)[keep], mapped, f"{pred_path} ({int(keep.sum())} test images)")


def _predictions(onnx_path: Path, bundle: Bundle, faces: np.ndarray, threads: int = 2
                 ) -> np.ndarray:
    """Predicted class per face for the graph at ``onnx_path`` (a temporary graph, not the
    bundle's own file, so not through :class:`Classifier`; chunks as large as its)."""
    from ekspresi.infer.classifier import MAX_BATCH
    from ekspresi.onnxrt import open_session
    from ekspresi.preprocess import to_model_input

    sess = open_session(onnx_path, threads=threads)
    name = bundle.metadata["onnx"].get("input", "input")
    out = []
    for i in range(0, len(faces), MAX_BATCH):
        batch = to_model_input(faces[i:i + MAX_BATCH])
        out.append(np.argmax(sess.run(None, {name: batch})[0], 1))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _training_source(training: dict[str, Any]) -> str | None:
    """The first data source of the run's config: its train split calibrates int8 by
    default (never the test faces the int8 accuracy is then measured on)."""
    sources = ((training.get("config") or {}).get("data") or {}).get("sources") or []
    return str(sources[0]) if sources else None


#: An ensemble bundle's folder of its members' training evidence (``members/NAME/``).
MEMBERS_DIR = "members"


def copy_run_files(run: Path | None, out: Path) -> list[str]:
    """Copy the training evidence (RUN_FILES, and an ensemble's ``members/``) from a run or
    a bundle folder into ``out``."""
    copied = []
    if run is None or run.resolve() == out.resolve():
        return copied
    if (run / MEMBERS_DIR).is_dir():
        shutil.copytree(run / MEMBERS_DIR, out / MEMBERS_DIR, dirs_exist_ok=True)
        copied.append(MEMBERS_DIR)
    for name in RUN_FILES:
        src = run / name
        if not src.is_file():
            continue
        if name == LOG_NAME and src.stat().st_size > MAX_LOG_BYTES:
            data = src.read_bytes()[-MAX_LOG_BYTES:]
            (out / name).write_bytes(b"[... truncated: last %d bytes ...]\n" % MAX_LOG_BYTES
                                     + data)
        else:
            shutil.copyfile(src, out / name)
        copied.append(name)
    return copied


def attach_evaluation(out: Path, metrics: dict[str, Any], evaluation: Path) -> dict[str, Any]:
    """Fold an ``ekspresi evaluate`` output folder into a bundle: every test set's metrics
    block (``ekspresi.metrics/1``) under its name, and the first test set's plots (plus the
    learning curves of a run report) as the model card's images."""
    doc = _read_json(evaluation / "metrics.json")
    datasets = doc.get("datasets") or {}
    if not datasets:
        raise BadInputError(str(evaluation), "metrics.json has no evaluated test sets "
                                             "(run `ekspresi evaluate MODEL --data ...`)")
    metrics = read_metrics(metrics, str(out))
    metrics.splits.update({name: split_metrics(block, str(evaluation / "metrics.json"))
                           for name, block in datasets.items()})
    first = slug(next(iter(datasets)))
    for dst, pattern in CARD_PLOTS.items():
        src = evaluation / pattern.format(slug=first)
        if src.is_file():
            shutil.copyfile(src, out / dst)
    return metrics.to_dict()


def export(source: str | Path, out_dir: str | Path | None = None, *, int8: bool = False,
           data: str | None = None, calib_data: str | None = None, name: str | None = None,
           evaluation: str | Path | None = None) -> Bundle:
    """Write the bundle of ``source`` (any MODEL argument: a run, a bundle, ``default``) to
    ``out_dir``; see module doc.

    ``evaluation``: an ``ekspresi evaluate`` output folder whose test-set metrics and plots
    go into the bundle, so the shipped model card carries its cross-dataset results."""
    resolved = resolve_model(source)
    if out_dir is None and resolved.bundled_name is not None:
        raise BadInputError(str(source), "is a model shipped in the package; choose an output "
                                         "folder with -o")
    bundle, run = resolved.load(), resolved.run_dir
    base = run if run is not None else bundle.path
    out = Path(out_dir) if out_dir else base / ("export-int8" if int8 else "export")
    if out.resolve() == bundle.path.resolve():
        raise BadInputError(str(out), "is the source bundle itself; choose another -o folder")
    meta = bundle.metadata
    metrics = dict(meta.get("metrics") or {})
    if run is not None and (run / FINAL_NAME).is_file() and not metrics:
        final = load_metrics(run / FINAL_NAME)
        metrics = Metrics(splits={k: v for k, v in final.splits.items() if k != TRAIN}
                          ).to_dict()
    extra = {k: v for k, v in meta.items() if k not in STANDARD_KEYS}
    training = dict(meta.get("training") or {})
    if run is not None:
        training.setdefault("run", run.resolve().name)
    onnx_src: Path | bytes = bundle.onnx_path
    out.mkdir(parents=True, exist_ok=True)
    if int8:
        from ekspresi.export.int8 import dequantize_qdq, is_qdq, quantize_int8
        from ekspresi.preprocess import to_model_input

        size = bundle.input_spec.size
        evalset = (load_dataset_faces(data, bundle.classes, size, "test") if data
                   else load_run_test_faces(run, bundle) if run is not None else None)
        if evalset is None:
            raise BadInputError(str(source), "a bare bundle has no test set: pass --data "
                                             "DATASET to measure the int8 accuracy")
        own_source = _training_source(training)
        calib_spec = calib_data or data or own_source
        if calib_spec is None:
            raise BadInputError(str(source), "the bundle names no training data to calibrate "
                                             "the int8 activations on: pass --calib-data "
                                             "DATASET (its train split is used)")
        calib = load_dataset_faces(calib_spec, bundle.classes, size, "train")
        rng = np.random.default_rng(0)
        pick = rng.permutation(len(calib.faces))[:CALIBRATION_FACES]
        tmp = out / (ONNX_NAME + ".int8.tmp")
        float_src = bundle.onnx_path
        if is_qdq(float_src):           # an int8 bundle: re-quantise its float graph
            float_src = out / (ONNX_NAME + ".float.tmp")
            dequantize_qdq(bundle.onnx_path, float_src)
            extra["requantized_from"] = {"name": bundle.name, "sha256": bundle.sha256}
            # what was measured on the old int8 graph does not describe the new one: keep
            # only what the float model scored
            old = read_metrics(metrics, str(bundle.path))
            kept = Metrics(splits={k: v for k, v in old.splits.items() if k == VAL})
            if old.test.fp32_accuracy is not None:
                kept.splits[TEST] = SplitMetrics(fp32_accuracy=old.test.fp32_accuracy)
            metrics = kept.to_dict()
            log.info("%s is int8: re-quantising its dequantised float graph", bundle.path)
        method = quantize_int8(float_src, tmp, [to_model_input(f[None]) for f in
                                                 calib.faces[pick]],
                               meta["onnx"].get("input", "input"))
        fp32 = _predictions(float_src, bundle, evalset.faces)
        q8 = _predictions(tmp, bundle, evalset.faces)
        acc32 = float((fp32 == evalset.labels).mean())
        acc8 = float((q8 == evalset.labels).mean())
        extra["quantization"] = {
            "method": method, "source_sha256": bundle.sha256,
            "calibration": {"faces": int(len(pick)), "data": calib.source},
            "evaluation": {"faces": int(len(evalset.labels)), "data": evalset.source},
            "fp32_accuracy": round(acc32, 5), "int8_accuracy": round(acc8, 5),
            "accuracy_drop": round(acc32 - acc8, 5),
            "prediction_agreement": round(float((fp32 == q8).mean()), 5),
        }
        if not data or data == own_source:
            # measured on the run's own test split: the bundle's headline is the int8 graph's
            m = read_metrics(metrics, str(bundle.path))
            fp32 = next(a for a in (m.test.fp32_accuracy, m.test.accuracy, acc32)
                        if a is not None)
            m.splits[TEST] = SplitMetrics(accuracy=acc8, fp32_accuracy=fp32,
                                          n_samples=int(len(evalset.labels)))
            metrics = m.to_dict()
        onnx_src = tmp.read_bytes()
        tmp.unlink()
        if float_src != bundle.onnx_path:
            float_src.unlink()
        log.info("int8: accuracy %.4f -> %.4f on %d faces (%s)", acc32, acc8,
                 len(evalset.labels), evalset.source)
    if evaluation is not None:
        metrics = attach_evaluation(out, metrics, Path(evaluation))
    result = write_bundle(out, onnx_src, name=name or (bundle.name + ("-int8" if int8 else "")),
                          classes=bundle.classes, input_spec=bundle.input_spec,
                          training=training, metrics=metrics, extra=extra)
    copy_run_files(run if run is not None else bundle.path, out)   # a bundle keeps its evidence
    return result
