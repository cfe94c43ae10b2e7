"""A campaign: a prioritised list of training runs for one machine and one time budget.

``ekspresi campaign configs/campaign/NAME.yaml --budget-minutes M --out DIR`` runs each entry
in order with its own time cap (never past the overall budget), logs one line per epoch,
records every outcome in ``DIR/campaign.json`` after each run (so a killed campaign still
says what it did), and finally packs every finished run (bundle, metrics, logs, test
predictions, final fp16 weights; never optimiser state) into at most ``max_archives``
``.tar.xz`` files of at most ``archive_mb`` each: what a rented GPU can hand back.

The campaign file::

    name: default-model
    data:                       # dataset specs in the configs -> what this machine has
      fer2013-folder:data/fer2013: pack:data/packs/fer2013.ekpack
    set: [train.device=auto]    # overrides for every run
    runs:
      - name: teacher-a
        config: configs/campaign/default/teacher-a.yaml
        minutes: 3
        set: [train.epochs=100]
      - name: student
        config: configs/campaign/default/student.yaml
        minutes: 3
        after: [teacher-a]      # skipped unless these finished
        set: ["train.distill.teachers=['{out}/teacher-a']"]

``{out}`` in an override is the campaign's output folder. A rerun skips finished runs and
resumes interrupted ones, so the same command continues a campaign after a restart.

On a CPU a campaign runs for days, across developer sessions: ``--detach`` starts it in the
background, ``ekspresi campaign status DIR`` / ``stop DIR`` ask and stop it
(:mod:`ekspresi.train.campaign_control`), runs checkpoint inside epochs every
``train.checkpoint_minutes``, and with ``results: FOLDER`` in the campaign file each finished
run's committable part (bundle, metrics, logs, report; never checkpoints) is copied to
``FOLDER/RUN`` the moment it finishes. A run found finished there counts as done, so a
machine that comes back with an empty state folder restarts only the unfinished runs.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import signal
import tarfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ekspresi.errors import BadInputError, ConfigError, EkspresiError
from ekspresi.metrics_schema import TEST, VAL, RunMetrics, SplitMetrics, load_metrics
from ekspresi.runs import (
    BUNDLE_DIR,
    CONFIG_NAME,
    ENV_NAME,
    FINAL_NAME,
    FINAL_WEIGHTS,
    HISTORY_CSV,
    HISTORY_JSONL,
    LOG_NAME,
    PREDICTIONS_NAME,
    bundle_dir,
    last_checkpoint,
)
from ekspresi.train.callbacks import StopRequest, TrainingInterrupted
from ekspresi.train.campaign_control import DONE_REASONS, STOP_NAME, SUMMARY, hold
from ekspresi.train.runfiles import write_json

log = logging.getLogger("ekspresi.campaign")

#: Files of a finished run that travel back, in order of importance.
ESSENTIAL = (FINAL_NAME, HISTORY_CSV, HISTORY_JSONL, LOG_NAME, CONFIG_NAME, ENV_NAME)
EXTRA = (PREDICTIONS_NAME,)
REPORT_DIR = "report"


@dataclass
class CampaignRun:
    name: str
    config: Path
    minutes: float
    overrides: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)


@dataclass
class Campaign:
    name: str
    runs: list[CampaignRun]
    data: dict[str, str] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    results: Path | None = None   # finished runs' committable files are copied here


def read_campaign(path: str | Path) -> Campaign:
    """Parse and check a campaign file (every config must exist; names unique)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: campaign file not found")
    try:
        doc = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: cannot parse ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list) or not doc["runs"]:
        raise ConfigError(f"{p}: expected a mapping with a non-empty `runs:` list")
    unknown = set(doc) - {"name", "description", "data", "set", "runs", "results"}
    if unknown:
        raise ConfigError(f"{p}: unknown key(s) {sorted(unknown)}; valid: name, description, "
                          "data, set, runs, results")
    runs, seen = [], set()
    for i, r in enumerate(doc["runs"]):
        where = f"{p}: runs[{i}]"
        if not isinstance(r, dict) or "name" not in r or "config" not in r:
            raise ConfigError(f"{where}: each run needs `name` and `config`")
        bad = set(r) - {"name", "config", "minutes", "set", "after", "notes"}
        if bad:
            raise ConfigError(f"{where}: unknown key(s) {sorted(bad)}")
        name = str(r["name"])
        if name in seen:
            raise ConfigError(f"{where}: run name {name!r} used twice")
        cfg = Path(r["config"])
        if not cfg.is_file():
            raise ConfigError(f"{where}: config {cfg} not found")
        missing = [a for a in r.get("after", []) if a not in seen]
        if missing:
            raise ConfigError(f"{where}: `after` names {missing}, which are not earlier runs")
        minutes = float(r.get("minutes", 5))
        if minutes <= 0:
            raise ConfigError(f"{where}: minutes must be > 0")
        runs.append(CampaignRun(name, cfg, minutes, [str(s) for s in r.get("set", [])],
                                list(r.get("after", []))))
        seen.add(name)
    data = {str(k): str(v) for k, v in (doc.get("data") or {}).items()}
    results = Path(str(doc["results"])) if doc.get("results") else None
    return Campaign(str(doc.get("name", p.stem)), runs, data, [str(s) for s in doc.get("set", [])],
                    results)


def _config_for(run: CampaignRun, camp: Campaign, out: Path, extra: list[str]):
    from ekspresi.train.config import apply_overrides, parse_config, read_config_file

    sets = [s.replace("{out}", str(out)) for s in [*camp.overrides, *run.overrides, *extra]]
    data = apply_overrides(read_config_file(run.config), sets)
    data["name"] = run.name
    data.setdefault("train", {}).setdefault("fit_to_budget", True)
    sources = data.setdefault("data", {}).get("sources", [])
    data["data"]["sources"] = [_substitute(s, camp.data) for s in sources]
    return parse_config(data)


def _substitute(spec: str, table: dict[str, str]) -> str:
    """The campaign's replacement for a dataset spec when that replacement exists here
    (e.g. a pack copied to the GPU machine), else the spec itself."""
    new = table.get(spec)
    if new is None:
        return spec
    from ekspresi.data.loading import parse_spec

    if parse_spec(new)[1].exists():
        return new
    log.info("%s: %s not found here; using %s", spec, new, spec)
    return spec


def _status(run_dir: Path) -> RunMetrics | None:
    f = run_dir / FINAL_NAME
    if not f.is_file():
        return None
    try:
        return load_metrics(f)
    except BadInputError:
        return None


def _finished(run_dir: Path, published: Path | None) -> RunMetrics | None:
    """The final metrics of a run finished here or published (committed) earlier."""
    for d in (run_dir, published):
        fin = _status(d) if d is not None else None
        if fin is not None and fin.stop_reason in DONE_REASONS:
            return fin
    return None


def publish_run(run_dir: Path, dest: Path) -> Path:
    """Copy a finished run's committable part to ``dest``: metrics, logs, config, env, test
    predictions, the ONNX bundle and the evaluation report (rendered here when missing);
    never checkpoints or weights with optimiser state. Written to a temporary folder and
    renamed, so a kill never leaves half a run that looks finished."""
    report = run_dir / REPORT_DIR
    if not report.is_dir():
        try:
            from ekspresi.evaluate.report import write_run_report

            write_run_report(run_dir)
        except Exception:  # noqa: BLE001 - the report is a bonus; the run is published
            log.exception("%s: report not written", run_dir)
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in (*ESSENTIAL, *EXTRA):
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, tmp / name)
    for sub in (BUNDLE_DIR, REPORT_DIR):
        if (run_dir / sub).is_dir():
            shutil.copytree(run_dir / sub, tmp / sub)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def _stop_on_signals(stop: StopRequest) -> None:
    """SIGTERM and SIGINT stop the training at its next step, with a checkpoint (the
    default handlers would lose everything since the last one). Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):  # noqa: ARG001
        log.warning("signal %d: stopping at the next checkpoint", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def check_campaign(path: str | Path, out: Path, *, overrides: list[str] | None = None,
                   only: list[str] | None = None) -> tuple[Campaign, list[CampaignRun]]:
    """Read the campaign and build every selected run's config, so that a config error is
    reported before any training starts (and before ``--detach`` goes to the background)."""
    camp = read_campaign(path)
    selected = [r for r in camp.runs if not only or r.name in only]
    if only and len(selected) != len(only):
        unknown = sorted(set(only) - {r.name for r in camp.runs})
        raise ConfigError(f"--only: unknown run(s) {unknown}")
    for run in selected:
        try:
            _config_for(run, camp, out, overrides or [])
        except ConfigError as exc:
            raise ConfigError(f"{path}: run {run.name!r}: {exc}") from None
    return camp, selected


def run_campaign(path: str | Path, out: str | Path, *, budget_minutes: float | None = None,
                 overrides: list[str] | None = None, only: list[str] | None = None,
                 archive_dir: str | Path | None = None, archive_mb: float = 16.0,
                 max_archives: int = 8, reserve_minutes: float = 0.5,
                 stop: StopRequest | None = None) -> dict[str, Any]:
    """Run the campaign (``budget_minutes`` None: no overall budget); returns (and writes)
    its summary, then packs the results. Every run's config is checked before any training
    starts; one process at a time per ``out`` (a second one raises ConfigError); SIGTERM or
    ``stop`` end it at the next step with a checkpoint (summary ``stopped: true``)."""
    out = Path(out)
    camp, selected = check_campaign(path, out, overrides=overrides, only=only)
    with hold(out):
        stop = stop or StopRequest(out / STOP_NAME)
        _stop_on_signals(stop)
        return _run_all(camp, path, out, selected, budget_minutes, overrides or [], stop,
                        archive_dir, archive_mb, max_archives, reserve_minutes)


def _run_all(camp: Campaign, path: str | Path, out: Path, selected: list[CampaignRun],
             budget_minutes: float | None, overrides: list[str], stop: StopRequest,
             archive_dir: str | Path | None, archive_mb: float, max_archives: int,
             reserve_minutes: float) -> dict[str, Any]:
    from ekspresi.train.loop import run_training

    started = time.perf_counter()
    budget = float("inf") if budget_minutes is None else float(budget_minutes) * 60.0
    summary: dict[str, Any] = {"campaign": camp.name, "file": str(path),
                               "budget_minutes": budget_minutes,
                               "planned": [r.name for r in selected], "current": None,
                               "runs": []}
    write_json(out / SUMMARY, summary)
    outcome: dict[str, str] = {}
    for i, run in enumerate(selected, 1):
        run_dir = out / run.name
        published = camp.results / run.name if camp.results is not None else None
        entry: dict[str, Any] = {"name": run.name, "config": str(run.config),
                                 "cap_minutes": run.minutes}
        left = budget - (time.perf_counter() - started) - reserve_minutes * 60.0
        prev = _finished(run_dir, published)
        blocked = [a for a in run.after if outcome.get(a) not in ("done", "stopped")]
        if stop():
            entry.update(status="pending", note="campaign stopped before this run")
        elif prev is not None:
            entry.update(status="done", note="finished earlier; skipped")
        elif blocked:
            entry.update(status="skipped", note=f"needs {blocked}, which did not finish")
        elif left < 20:
            entry.update(status="skipped", note="no time left in the budget")
        else:
            cap = min(run.minutes, left / 60.0)
            log.info("[%d/%d] %s: %s, up to %.1f min (%.1f of %.1f min left)", i,
                     len(selected), run.name, run.config, cap, left / 60.0, budget / 60.0)
            summary["current"] = run.name
            write_json(out / SUMMARY, summary)
            t0 = time.perf_counter()
            resume = last_checkpoint(run_dir).is_file()
            try:
                cfg = _config_for(run, camp, out, overrides)
                if resume:  # continue an interrupted run, with this campaign's overrides
                    from ekspresi.train.config import dump_yaml

                    (run_dir / CONFIG_NAME).write_text(dump_yaml(cfg))
                    run_training(None, run_dir, resume=True, max_minutes=cap, quiet=True,
                                 stop=stop)
                else:
                    run_training(cfg, run_dir, max_minutes=cap, quiet=True, stop=stop)
                fin = _status(run_dir)
                done = fin is not None and fin.stop_reason in DONE_REASONS
                entry.update(status="done" if done else "stopped", resumed=resume)
                if done and published is not None:
                    entry["published"] = str(publish_run(run_dir, published))
            except TrainingInterrupted as exc:
                entry.update(status="paused", resumed=resume, note=str(exc))
                log.info("%s", exc)
            except EkspresiError as exc:
                entry.update(status="failed", error=str(exc))
                log.error("%s failed: %s", run.name, exc)
            except Exception as exc:  # noqa: BLE001 - one broken run must not end the rest
                entry.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                             traceback=traceback.format_exc(limit=8))
                log.exception("%s failed", run.name)
            entry["wall_seconds"] = round(time.perf_counter() - t0, 1)
        fin = _status(run_dir) or prev
        if fin is not None:
            entry["metrics"] = RunMetrics(
                splits={k: SplitMetrics(accuracy=fin.split(k).accuracy) for k in (VAL, TEST)},
                **{k: getattr(fin, k, None) for k in (
                    "epochs_run", "epochs_planned", "stop_reason", "train_time_seconds",
                    "device", "precision", "train_img_per_s", "weights_used")}).to_dict()
        outcome[run.name] = entry["status"]
        summary["runs"].append(entry)
        summary["elapsed_minutes"] = round((time.perf_counter() - started) / 60.0, 2)
        write_json(out / SUMMARY, summary)
        log.info("%s: %s%s", run.name, entry["status"],
                 f" (val {fin.split(VAL).accuracy:.4f}, test {fin.test.accuracy:.4f})"
                 if fin is not None else "")
    summary["current"] = None
    summary["stopped"] = stop()
    archives = [] if summary["stopped"] else pack_results(
        out, [r["name"] for r in summary["runs"] if r["status"] in ("done", "stopped")],
        Path(archive_dir) if archive_dir else out / "archives",
        limit_mb=archive_mb, max_files=max_archives)
    summary["archives"] = archives
    summary["elapsed_minutes"] = round((time.perf_counter() - started) / 60.0, 2)
    write_json(out / SUMMARY, summary)
    return summary


# -- packing the results ---------------------------------------------------------------------
def _fp16_weights(run_dir: Path) -> bytes | None:
    import torch

    from ekspresi.train import checkpoint

    f = run_dir / FINAL_WEIGHTS
    if not f.is_file():
        return None
    state = checkpoint.load(f)
    state["model"] = {k: v.half() if torch.is_tensor(v) and v.is_floating_point() else v
                      for k, v in state["model"].items()}
    state["dtype"] = "float16 (cast from the float32 weights the bundle was exported from)"
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _run_files(run_dir: Path, level: int) -> list[tuple[str, bytes]]:
    """Files of one run at a detail level: 0 metrics and logs, 1 + test predictions and the
    ONNX bundle, 2 + fp16 weights."""
    files = [(n, (run_dir / n).read_bytes()) for n in ESSENTIAL if (run_dir / n).is_file()]
    if level >= 1:
        files += [(n, (run_dir / n).read_bytes()) for n in EXTRA if (run_dir / n).is_file()]
        bundle = bundle_dir(run_dir)
        if bundle.is_dir():
            files += [(f"{BUNDLE_DIR}/{f.name}", f.read_bytes()) for f in sorted(bundle.iterdir())
                      if f.is_file()]
    if level >= 2:
        w = _fp16_weights(run_dir)
        if w is not None:
            files.append(("final_weights.fp16.pt", w))
    return files


def _tar_xz(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    # preset 1: weights and ONNX floats barely compress, and level 6 took ~10x longer
    with tarfile.open(fileobj=buf, mode="w:xz", preset=1) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def pack_results(out: Path, names: list[str], archive_dir: Path, *, limit_mb: float = 16.0,
                 max_files: int = 8) -> list[dict[str, Any]]:
    """Pack finished runs into one ``results.tar.xz`` split into at most ``max_files`` parts
    of at most ``limit_mb`` MiB (``results.tar.xz.000``, ``.001``...; join them with
    ``cat results.tar.xz.* > results.tar.xz``; a single part is named ``results.tar.xz``).

    Every run travels with its metrics and logs; test predictions, bundle and fp16 weights
    are added while they fit. When they do not, the largest runs lose their weights first,
    then their bundle, and the index (``archives.json``, inside the archive) says what each
    run kept. A ResNet-18-sized net (11.2 M float32 weights) is a ~45 MB ONNX file:
    splitting is what lets it travel.
    """
    limit = int(limit_mb * 2**20)
    archive_dir.mkdir(parents=True, exist_ok=True)
    runs = {n: out / n for n in names if (out / n).is_dir()}
    level = {n: 2 for n in runs}
    files: dict[tuple[str, int], list[tuple[str, bytes]]] = {}

    def run_files(n: str) -> list[tuple[str, bytes]]:  # each run read once per level
        key = (n, level[n])
        if key not in files:
            files[key] = _run_files(runs[n], level[n])
        return files[key]

    def shed() -> None:
        """Drop the next detail level of the run with the most bytes (weights and ONNX
        floats barely compress, so raw bytes rank runs as their archive share would)."""
        shrinkable = [n for n in runs if level[n] > 0]
        if not shrinkable:
            raise ConfigError(f"even the metrics and logs of {len(runs)} runs do not fit in "
                              f"{max_files} archive parts of {limit_mb} MiB")
        worst = max(shrinkable, key=lambda n: sum(len(b) for _, b in run_files(n)))
        level[worst] -= 1

    labels = ["metrics+logs", "metrics+logs+bundle", "metrics+logs+bundle+fp16 weights"]
    while True:
        index = {"runs": {n: labels[level[n]] for n in runs},
                 "join": "cat results.tar.xz.* > results.tar.xz  (when split)"}
        members = [(f"{n}/{a}", b) for n in sorted(runs) for a, b in run_files(n)]
        if (out / SUMMARY).is_file():
            members.append((SUMMARY, (out / SUMMARY).read_bytes()))
        members.append(("archives.json", json.dumps(index, indent=2).encode()))
        data = _tar_xz(members)
        parts = [data[i:i + limit] for i in range(0, len(data), limit)] or [b""]
        if len(parts) <= max_files:
            break
        shed()
    for old in archive_dir.glob("results.tar.xz*"):
        old.unlink()
    written = []
    for i, part in enumerate(parts):
        name = "results.tar.xz" if len(parts) == 1 else f"results.tar.xz.{i:03d}"
        path = archive_dir / name
        path.write_bytes(part)
        written.append({"file": str(path), "bytes": len(part),
                        "runs": sorted(runs) if i == 0 else []})
    return written
