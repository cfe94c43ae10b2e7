"""Reading training run directories for reports and comparisons.

A run directory (written by ``ekspresi train``; its files are named in :mod:`ekspresi.runs`)
holds the resolved config, env.json, per-epoch metrics, final metrics, test predictions, the
log and ``bundle/``. Reports and comparisons read it tolerantly: an optional file that is
missing is listed in ``RunInfo.missing`` and its part of the report says so, while a
directory holding none of the essential files is an error naming the directory.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ekspresi.errors import BadInputError
from ekspresi.infer.bundle import META_NAME, is_bundle_dir
from ekspresi.metrics_schema import RunMetrics, read_metrics
from ekspresi.runs import (
    BUNDLE_DIR,
    CONFIG_NAME,
    ENV_NAME,
    FINAL_NAME,
    HISTORY_CSV,
    HISTORY_JSONL,
    LOG_NAME,
    PREDICTIONS_NAME,
    Predictions,
    is_run_dir,
    read_predictions,
)

#: Predictions, is_run_dir and read_predictions are ekspresi.runs' (the run contract): import
#: them from there, not through this module.
__all__ = ["RunInfo", "load_run", "read_history"]


@dataclass
class RunInfo:
    path: Path
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    config_text: str = ""
    env: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    final: RunMetrics = field(default_factory=RunMetrics)   # final_metrics.json
    predictions: Predictions | None = None
    bundle_path: Path | None = None
    log_tail: str = ""
    missing: list[str] = field(default_factory=list)

    @property
    def classes(self) -> tuple[str, ...] | None:
        if self.predictions is not None:
            return self.predictions.classes
        if self.final.classes:
            return tuple(self.final.classes)
        if self.bundle_path is not None:
            meta = _read_json(self.bundle_path / META_NAME)
            return tuple(meta.get("classes", ())) or None
        return None

    @property
    def model_name(self) -> str:
        """The model's registry name, from final_metrics.json, else the config."""
        model = self.config.get("model")
        return (self.final.model or (model.get("name") if isinstance(model, dict) else None)
                or "")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BadInputError(str(path), f"invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadInputError(str(path), "expected a JSON object")
    return data


def _number(v: str) -> Any:
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except ValueError:
        return v
    if math.isnan(f):
        return None
    return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """Per-epoch rows (epoch, lr, train_loss, train_acc, val_loss, val_acc, seconds, ...)
    from metrics.jsonl, else metrics.csv; [] when neither exists. Sorted by epoch; when an
    epoch repeats (a resumed run) the last row wins."""
    d = Path(run_dir)
    rows: list[dict[str, Any]] = []
    if (d / HISTORY_JSONL).is_file():
        for n, line in enumerate((d / HISTORY_JSONL).read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise BadInputError(f"{d / HISTORY_JSONL}:{n}", f"invalid JSON ({exc})") from None
    elif (d / HISTORY_CSV).is_file():
        with open(d / HISTORY_CSV, newline="") as f:
            rows = [{k: _number(v) for k, v in r.items()} for r in csv.DictReader(f)]
    by_epoch: dict[int, dict[str, Any]] = {}
    for r in rows:
        if r.get("epoch") is None:
            continue
        by_epoch[int(r["epoch"])] = r
    return [by_epoch[e] for e in sorted(by_epoch)]


def load_run(path: str | Path) -> RunInfo:
    """Read what a run directory has; raise when it is not a run directory at all."""
    d = Path(path)
    if not d.is_dir():
        raise BadInputError(str(d), "no such run directory")
    if not is_run_dir(d):
        raise BadInputError(str(d), f"not a training run directory (expected {FINAL_NAME}, "
                                    f"{HISTORY_CSV} or {BUNDLE_DIR}/ from `ekspresi train`)")
    info = RunInfo(path=d, name=d.resolve().name)
    if (d / CONFIG_NAME).is_file():
        import yaml

        info.config_text = (d / CONFIG_NAME).read_text()
        try:
            cfg = yaml.safe_load(info.config_text)
        except yaml.YAMLError as exc:
            raise BadInputError(str(d / CONFIG_NAME), f"invalid YAML ({exc})") from None
        info.config = cfg if isinstance(cfg, dict) else {}
    else:
        info.missing.append(CONFIG_NAME)
    if (d / ENV_NAME).is_file():
        info.env = _read_json(d / ENV_NAME)
    else:
        info.missing.append(ENV_NAME)
    info.history = read_history(d)
    if not info.history:
        info.missing.append(f"{HISTORY_JSONL} / {HISTORY_CSV}")
    if (d / FINAL_NAME).is_file():
        info.final = read_metrics(_read_json(d / FINAL_NAME), str(d / FINAL_NAME), RunMetrics)
    else:
        info.missing.append(FINAL_NAME)
    if is_bundle_dir(d / BUNDLE_DIR):
        info.bundle_path = d / BUNDLE_DIR
    else:
        info.missing.append(f"{BUNDLE_DIR}/")
    if (d / PREDICTIONS_NAME).is_file():
        info.predictions = read_predictions(d / PREDICTIONS_NAME, info.classes)
    else:
        info.missing.append(PREDICTIONS_NAME)
    if (d / LOG_NAME).is_file():
        lines = (d / LOG_NAME).read_text(errors="replace").splitlines()
        info.log_tail = "\n".join(lines[-40:])
    else:
        info.missing.append(LOG_NAME)
    return info
