"""The files of a run directory other than checkpoints and the bundle.

``metrics.jsonl`` and ``metrics.csv`` are rewritten from the in-memory history after every
epoch (not appended), so after a kill and ``--resume`` they hold exactly the checkpointed
epochs, never a row from an epoch whose checkpoint was lost.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from ekspresi.runs import HISTORY_CSV, HISTORY_JSONL

COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, default=_jsonable) + "\n")


def _jsonable(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def write_history(run_dir: Path, history: list[dict[str, Any]]) -> None:
    write_text(run_dir / HISTORY_JSONL, "".join(json.dumps(h) + "\n" for h in history))
    tmp = run_dir / (HISTORY_CSV + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS), extrasaction="ignore")
        w.writeheader()
        w.writerows(history)
    os.replace(tmp, run_dir / HISTORY_CSV)


def git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parents[3]
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "-uno"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(threads: int) -> dict[str, Any]:
    import numpy
    import torch
    import torchvision

    from ekspresi._version import __version__
    from ekspresi.machine import cpu_features, cpu_kind, cpu_model

    return {"ekspresi": __version__, "python": sys.version.split()[0],
            "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": numpy.__version__, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "host": socket.gethostname(), "cpu_count": os.cpu_count(), "threads": threads,
            "cpu": cpu_model(), "cpu_kind": cpu_kind(), "cpu_features": cpu_features(),
            "git_commit": git_commit(), "argv": sys.argv}
