"""Scoring one model on one or more test sets.

The evaluator needs only a ``predict_proba(faces_uint8 (N, H, W)) -> (N, C)`` callable and
the model's class names, so it runs the same on an ONNX bundle, a PyTorch model in a test,
or stored predictions. Everything a report needs (metrics, the class mapping, the
probabilities and the faces for galleries, notes on what was excluded) ends up in one
:class:`DatasetEvaluation`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ekspresi.errors import BadInputError
from ekspresi.evaluate.mapping import ClassMapping, map_classes, restrict_proba
from ekspresi.evaluate.metrics import compute_metrics
from ekspresi.evaluate.tta import PredictProba, predict_tta

#: image (uint8 gray/BGR, any size) -> model-size uint8 face, or None when none is found.
FaceCrop = Callable[[np.ndarray], "np.ndarray | None"]


@dataclass
class DatasetEvaluation:
    """One model on one test set."""

    name: str                       # unique label, e.g. "fer2013 test"
    metrics: dict[str, Any]
    mapping: ClassMapping
    y_true: np.ndarray              # indices into mapping.classes
    proba: np.ndarray               # (N, len(mapping.classes))
    faces: np.ndarray | None = None  # uint8 faces of the evaluated samples (galleries)
    paths: np.ndarray | None = None
    dataset: dict[str, Any] = field(default_factory=dict)  # spec, split, counts, notes

    @property
    def classes(self) -> tuple[str, ...]:
        return self.mapping.classes

    def block(self) -> dict[str, Any]:
        """The metrics.json block of this test set (see ``docs/evaluation.md``)."""
        out = dict(self.metrics)
        out["dataset"] = dict(self.dataset, name=self.name)
        out["mapping"] = self.mapping.to_dict()
        return out


def select_split(labels: np.ndarray, splits: np.ndarray, split: str, *,
                 name: str) -> tuple[np.ndarray, str, list[str]]:
    """Rows to evaluate -> (bool mask, split actually used, notes).

    Datasets with official splits give the asked split (``all`` gives everything);
    datasets without one (CK+48, JAFFE) give all samples, and the note says so, because a
    model trained elsewhere never saw them.
    """
    splits = np.asarray(splits, dtype=object)
    have = sorted({str(s) for s in splits.tolist() if s})
    if split == "all":
        return np.ones(len(labels), bool), "all", [f"all {len(labels)} samples of {name} used "
                                                     "(every split)"]
    if not have:
        return (np.ones(len(labels), bool), "all",
                [f"{name} has no official split: all {len(labels)} samples are used as the "
                 f"test set (a fair test only for models not trained on {name})"])
    mask = splits == split
    if not mask.any():
        raise BadInputError(name, f"has no {split!r} split (it has: {', '.join(have)}); "
                                  "use --split with one of those, or --split all")
    return mask, split, []


def score(name: str, mapping: ClassMapping, model_proba: np.ndarray, *,
          plain_proba: np.ndarray | None = None, tta: str = "none",
          faces: np.ndarray | None = None, paths: Sequence[str] | np.ndarray | None = None,
          dataset: dict[str, Any] | None = None, seed: int = 0,
          n_resamples: int = 1000, groups: np.ndarray | None = None) -> DatasetEvaluation:
    """Metrics for the kept samples of ``mapping`` from the model's probabilities on them
    (columns in the model's class order). ``plain_proba`` (without TTA) adds the measured
    effect of TTA under ``metrics["tta"]``; ``groups`` (subjects of the kept samples) make
    the accuracy interval a subject-level bootstrap."""
    proba = restrict_proba(model_proba, mapping)
    metrics = compute_metrics(mapping.y, proba, mapping.classes, seed=seed,
                              n_resamples=n_resamples, groups=groups)
    metrics["tta"] = {"mode": tta}
    if plain_proba is not None:
        plain = restrict_proba(plain_proba, mapping)
        base = compute_metrics(mapping.y, plain, mapping.classes, seed=seed,
                               n_resamples=n_resamples, groups=groups)
        metrics["tta"].update({
            "accuracy_without_tta": base["accuracy"],
            "macro_f1_without_tta": base["macro_f1"],
            "log_loss_without_tta": base["log_loss"],
            "accuracy_gain": metrics["accuracy"] - base["accuracy"],
            "macro_f1_gain": metrics["macro_f1"] - base["macro_f1"],
            "changed_predictions": int((plain.argmax(1) != proba.argmax(1)).sum()),
        })
    info = dict(dataset or {})
    info.setdefault("n_loaded", int(len(mapping.keep)))
    info["n_evaluated"] = int(mapping.keep.sum())
    info["notes"] = list(info.get("notes", [])) + mapping.notes
    return DatasetEvaluation(name=name, metrics=metrics, mapping=mapping, y_true=mapping.y,
                             proba=proba, faces=faces,
                             paths=None if paths is None else np.asarray(paths, dtype=object),
                             dataset=info)


def evaluate_faces(predict_proba: PredictProba, model_classes: Sequence[str],
                   faces: np.ndarray, labels: np.ndarray, *, name: str,
                   paths: Sequence[str] | None = None, only: Sequence[str] | None = None,
                   tta: str = "none", seed: int = 0, n_resamples: int = 1000,
                   dataset: dict[str, Any] | None = None,
                   subjects: Sequence[str] | None = None) -> DatasetEvaluation:
    """Score ``faces`` (uint8 (N, H, W), already the model's size) whose ``labels`` index
    :data:`ekspresi.labels.ALL_CLASSES`. With ``tta`` other than ``none`` the plain
    prediction is computed as well, so the report shows what TTA changed. ``subjects``
    (one id per sample, e.g. CK+'s ``S010``) switch the interval to a subject bootstrap."""
    mapping = map_classes(labels, model_classes, only)
    if not mapping.keep.any():
        raise BadInputError(name, f"no samples of the evaluated classes "
                                  f"({', '.join(mapping.classes)}); "
                                  + "; ".join(mapping.notes))
    kept = np.asarray(faces)[mapping.keep]
    kept_paths = None if paths is None else np.asarray(paths, dtype=object)[mapping.keep]
    proba = predict_tta(predict_proba, kept, tta)
    plain = predict_tta(predict_proba, kept, "none") if tta != "none" else None
    groups = None if subjects is None else np.asarray(subjects, dtype=object)[mapping.keep]
    if groups is not None:
        n_subj = len(set(groups.tolist()))
        dataset = dict(dataset or {})
        dataset["notes"] = list(dataset.get("notes", [])) + [
            f"{n_subj} subjects with several images each: the accuracy interval resamples "
            "subjects, not images"
            + (" (with so few subjects it is only a rough guide)" if n_subj < 10 else "")]
    return score(name, mapping, proba, plain_proba=plain, tta=tta, faces=kept,
                 paths=kept_paths, dataset=dataset, seed=seed, n_resamples=n_resamples,
                 groups=groups)


def evaluate_spec(predict_proba: PredictProba, model_classes: Sequence[str], size: int,
                  spec: str, *, split: str = "test", only: Sequence[str] | None = None,
                  tta: str = "none", seed: int = 0, skip_bad: bool = False,
                  name: str | None = None, face_crop: FaceCrop | None = None,
                  detector_name: str = "") -> DatasetEvaluation:
    """Load the dataset ``spec`` (see :func:`ekspresi.data.load`), pick ``split`` and score
    it. Faces are resized to the model's ``size`` by the shared data cache, or, with
    ``face_crop`` (image -> model-size face, None when no face is found), cut out of whole
    photos by a face detector: the pipeline the app runs, for uncropped sets like JAFFE."""
    from ekspresi.data import load
    from ekspresi.data.cache import faces_array

    ss = load(spec, skip_bad=skip_bad)
    base = dataset_name(spec, ss.sources)
    if len(ss) == 0:
        raise BadInputError(spec, "dataset is empty")
    mask, used, notes = select_split(ss.labels, ss.splits, split, name=base)
    label = name or f"{base} {used}"
    part = ss.subset(mask)
    detection: dict[str, Any] | None = None
    if face_crop is None:
        faces = faces_array(part, size)
    else:
        part, faces, detection = _detect_faces(part, face_crop, size, detector_name)
        if detection["no_face"]:
            notes.append(f"the face detector found no face in {detection['no_face']} of "
                         f"{detection['images']} images; they are excluded from the metrics "
                         "and counted as errors in end_to_end_accuracy")
    counts = {c: n for c, n in part.class_counts().items() if n}
    report = getattr(ss, "report", None)
    if report is not None and report.bad:
        notes.append(f"{len(report.bad)} unreadable files skipped (--skip-bad), first: "
                     f"{report.bad[0][0]}: {report.bad[0][1]}")
    if report is not None and report.dropped:
        notes.append("left out by the reader (counts over all splits): " + ", ".join(
            f"{n} ({reason})" for reason, n in report.dropped.items()))
    info = {"spec": spec, "split": used, "requested_split": split,
            "n_loaded": int(len(part)), "class_counts": counts, "notes": notes,
            "skipped_bad_files": len(report.bad) if report is not None else 0}
    subjects = part.subjects if all(part.subjects.tolist()) else None
    if subjects is not None and len(set(subjects.tolist())) == len(part):
        subjects = None  # one image per subject: the plain bootstrap is the same thing
    ev = evaluate_faces(predict_proba, model_classes, faces, part.labels, name=label,
                        paths=part.paths, only=only, tta=tta, seed=seed, dataset=info,
                        subjects=subjects)
    if detection is not None:
        missed = sum(n for c, n in detection["no_face_by_class"].items() if c in ev.classes)
        detection["end_to_end_accuracy"] = ev.metrics["n_correct"] / (
            ev.metrics["n_samples"] + missed)
        ev.metrics["detection"] = detection
    return ev


def _detect_faces(part, face_crop: FaceCrop, size: int, detector_name: str):
    """Run the detector on every image -> (samples with a face, their faces, summary)."""
    from ekspresi.labels import ALL_CLASSES

    faces, found = [], np.zeros(len(part), bool)
    for i, image in enumerate(part.images):
        face = face_crop(np.asarray(image))
        if face is not None:
            faces.append(face)
            found[i] = True
    missed = part.labels[~found]
    by_class = {ALL_CLASSES[c]: int((missed == c).sum()) for c in sorted(set(missed.tolist()))}
    summary = {"detector": detector_name, "images": int(len(part)),
               "no_face": int((~found).sum()), "no_face_by_class": by_class,
               "no_face_files": [str(p) for p in part.paths[~found][:20]]}
    stacked = np.stack(faces) if faces else np.zeros((0, size, size), np.uint8)
    return part.subset(found), stacked, summary


def dataset_name(spec: str, sources: Sequence[str] | np.ndarray) -> str:
    """Short label for a dataset: its reader's source name when unique, else the folder."""
    srcs = sorted({str(s) for s in np.asarray(sources, dtype=object).tolist() if s})
    if len(srcs) == 1:
        return srcs[0]
    path = spec.split(":", 1)[1] if ":" in spec and not spec[1:3] == ":\\" else spec
    return path.rstrip("/").split("/")[-1] or spec
