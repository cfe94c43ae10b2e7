"""Model bundles: an ONNX graph plus the metadata needed to use it correctly.

A bundle is a directory holding ``model.onnx`` and ``model.json``. The metadata records the
classes (output order), the input spec (size, channels, normalisation applied inside the
graph), the preprocessing version, where the model came from and how it measured, and the
sha256 of the ONNX file. :func:`load_bundle` refuses a bundle whose hash or metadata does not
match, so a half-copied or hand-edited model never serves silently wrong answers.

The ONNX contract: one input ``input`` float32 ``(N, 1, size, size)`` with pixel values in
0..255 (see :mod:`ekspresi.preprocess`), one output ``logits`` float32 ``(N, len(classes))``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ekspresi._version import __version__
from ekspresi.errors import ModelError
from ekspresi.labels import ALL_CLASSES
from ekspresi.preprocess import PREPROCESS_VERSION, InputSpec

BUNDLE_FORMAT = 1
ONNX_NAME = "model.onnx"
META_NAME = "model.json"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"

#: The model card's images a bundle folder may ship (the About page serves only these), by
#: their name in the bundle -> their file in an ``ekspresi evaluate --out DIR`` folder, where
#: ``{slug}`` is the first test set's :func:`ekspresi.runs.slug`. ``ekspresi export
#: --evaluation`` copies them in; listed in the order the card shows them.
CARD_PLOTS = {"confusion_matrix.png": "plots/{slug}_confusion_counts.png",
              "confusion_matrix_normalized.png": "plots/{slug}_confusion_normalized.png",
              "learning_curves.png": "plots/learning_curves.png",
              "per_class.png": "plots/{slug}_per_class.png",
              "reliability.png": "plots/{slug}_reliability.png"}


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_bundle_dir(path: str | Path) -> bool:
    """Whether ``path`` holds a bundle's two files (not yet whether they verify)."""
    return (Path(path) / META_NAME).is_file() and (Path(path) / ONNX_NAME).is_file()


@dataclass
class Bundle:
    """A loaded, verified bundle. ``metadata`` is the full JSON; the common fields are
    lifted into attributes."""

    path: Path
    name: str
    classes: tuple[str, ...]
    input_spec: InputSpec
    sha256: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def onnx_path(self) -> Path:
        return self.path / ONNX_NAME

    @property
    def metrics(self) -> dict[str, Any]:
        return self.metadata.get("metrics", {})


def write_bundle(out_dir: str | Path, onnx_model: str | Path | bytes, *, name: str,
                 classes: tuple[str, ...] | list[str], input_spec: InputSpec,
                 training: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None,
                 extra: dict[str, Any] | None = None) -> Bundle:
    """Write ``out_dir/model.onnx`` and ``out_dir/model.json``; returns the loaded bundle."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    unknown = [c for c in classes if c not in ALL_CLASSES]
    if unknown:
        raise ModelError(f"bundle classes {unknown} are not canonical class names")
    target = out / ONNX_NAME
    if isinstance(onnx_model, (bytes, bytearray)):
        target.write_bytes(bytes(onnx_model))
    elif Path(onnx_model).resolve() != target.resolve():
        shutil.copyfile(onnx_model, target)
    meta = {
        "format": BUNDLE_FORMAT,
        "name": name,
        "classes": list(classes),
        "input": input_spec.to_dict(),
        "preprocessing_version": PREPROCESS_VERSION,
        "onnx": {"file": ONNX_NAME, "input": INPUT_NAME, "output": OUTPUT_NAME,
                 "sha256": sha256_file(target), "bytes": target.stat().st_size},
        "training": training or {},
        "metrics": metrics or {},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "ekspresi_version": __version__,
    }
    if extra:
        meta.update(extra)
    (out / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    return load_bundle(out)


def load_bundle(path: str | Path, *, verify: bool = True) -> Bundle:
    """Read and check a bundle directory (or its ``model.json``/``model.onnx``); a MODEL
    argument (a run, a bundled model's name) goes through
    :func:`ekspresi.infer.resolve.load_model` instead."""
    p = Path(path)
    if p.is_file() and p.name in (ONNX_NAME, META_NAME):
        p = p.parent
    meta_path, onnx_path = p / META_NAME, p / ONNX_NAME
    if not meta_path.is_file() or not onnx_path.is_file():
        raise ModelError(f"{p}: not a model bundle (expected {META_NAME} and {ONNX_NAME}; "
                         "make one with `ekspresi export RUN_DIR`)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{meta_path}: invalid JSON ({exc})") from None
    for key in ("format", "classes", "input", "onnx", "preprocessing_version"):
        if key not in meta:
            raise ModelError(f"{meta_path}: metadata lacks {key!r}")
    if meta["format"] != BUNDLE_FORMAT:
        raise ModelError(f"{meta_path}: bundle format {meta['format']} is not supported "
                         f"(this ekspresi reads format {BUNDLE_FORMAT})")
    if meta["preprocessing_version"] != PREPROCESS_VERSION:
        raise ModelError(f"{meta_path}: model was trained with preprocessing version "
                         f"{meta['preprocessing_version']}, this ekspresi has "
                         f"{PREPROCESS_VERSION}; re-export it with a matching version")
    classes = tuple(meta["classes"])
    if not classes or any(c not in ALL_CLASSES for c in classes):
        raise ModelError(f"{meta_path}: invalid classes {list(classes)}")
    digest = meta["onnx"].get("sha256", "")
    if verify:
        actual = sha256_file(onnx_path)
        if actual != digest:
            raise ModelError(f"{onnx_path}: sha256 {actual[:12]}… does not match the "
                             f"metadata's {str(digest)[:12]}… (file corrupt or replaced)")
    return Bundle(path=p, name=str(meta.get("name", p.name)), classes=classes,
                  input_spec=InputSpec.from_dict(meta["input"]), sha256=digest, metadata=meta)
