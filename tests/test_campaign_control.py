"""The CPU campaign workhorse: stop and resume to the step, one campaign per folder, config
errors before any training, `status`, `stop`, `--detach`, and publishing finished runs so a
machine that comes back empty restarts only the unfinished ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from ekspresi.cli import main
from ekspresi.data.synthetic import write_class_folders
from ekspresi.errors import ConfigError
from ekspresi.train.callbacks import StopRequest
from ekspresi.train.campaign import run_campaign
from ekspresi.train.campaign_control import (
    campaign_status,
    default_out,
    format_status,
    hold,
    running_pid,
)

torch.set_num_threads(1)
CLASSES = ["angry", "happy", "sad"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ds")
    return write_class_folders(root / "faces", {c: 30 for c in CLASSES}, size=16, seed=4)


def tiny_sets(dataset: Path, epochs: int = 2) -> list[str]:
    return [f"data.sources=['folders:{dataset}']", f"data.classes={CLASSES}",
            "data.split=stratified", "data.ratios=[0.6,0.2,0.2]", "model.input_size=16",
            f"train.epochs={epochs}", "train.batch_size=6", "train.eval_batch_size=64",
            "train.device=cpu", "train.threads=1", "train.fit_to_budget=false"]


def write_campaign(tmp_path: Path, dataset: Path, runs: list[str], *, epochs: int = 2,
                   results: Path | None = None, extra: dict | None = None) -> Path:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"name": "fer-vgg", "options": {"widths": [8]}},
                                   "data": {"sources": ["data/placeholder"]}}))
    doc = {"name": "t", "set": tiny_sets(dataset, epochs),
           "runs": [{"name": n, "config": str(cfg), "minutes": 30, **(extra or {}).get(n, {})}
                    for n in runs]}
    if results is not None:
        doc["results"] = str(results)
    camp = tmp_path / "c.yaml"
    camp.write_text(yaml.safe_dump(doc))
    return camp


class StopInSecondEpoch(StopRequest):
    """Fires a few training steps into epoch 2 of ``run`` (its first epoch row exists)."""

    def __init__(self, run: Path, steps: int = 3):
        super().__init__()
        self.rows, self.steps, self.seen = run / "metrics.jsonl", steps, 0

    def __call__(self) -> bool:
        if self.rows.is_file():
            self.seen += 1
        return self.seen > self.steps


def rows(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "img_per_s")}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_stopped_campaign_resumes_to_the_step_and_reports_status(dataset, tmp_path):
    camp = write_campaign(tmp_path, dataset, ["a", "b"])
    ref = run_campaign(camp, tmp_path / "ref")
    assert [r["status"] for r in ref["runs"]] == ["done", "done"]

    out = tmp_path / "out"
    # 54 training images / batch 6: 9 steps an epoch; a finishes, b stops in epoch 2
    first = run_campaign(camp, out, stop=StopInSecondEpoch(out / "b"))
    assert first["stopped"] is True and first["archives"] == []
    assert [r["status"] for r in first["runs"]] == ["done", "paused"]
    st = campaign_status(out)
    assert not st["running"] and [r.state for r in st["runs"]] == ["done", "paused"]
    assert st["runs"][0].test is not None and st["runs"][1].epoch == "1/2 +33%"
    table = format_status(st)
    assert "not running" in table and "paused" in table and "done" in table

    second = run_campaign(camp, out)
    assert [r["status"] for r in second["runs"]] == ["done", "done"]
    assert second["runs"][0]["note"] == "finished earlier; skipped"
    assert second["runs"][1]["resumed"] is True
    assert rows(out / "b") == rows(tmp_path / "ref" / "b")
    assert [r.state for r in campaign_status(out)["runs"]] == ["done", "done"]


def test_one_campaign_per_folder(dataset, tmp_path):
    camp = write_campaign(tmp_path, dataset, ["a"])
    out = tmp_path / "out"
    with hold(out):
        assert running_pid(out) == os.getpid()
        with pytest.raises(ConfigError, match=rf"another campaign is running.*pid {os.getpid()}"):
            run_campaign(camp, out)
    assert running_pid(out) is None
    assert not (out / "a").exists()


def test_a_config_error_is_reported_before_any_training(dataset, tmp_path):
    camp = write_campaign(tmp_path, dataset, ["good", "bad"],
                          extra={"bad": {"set": ["train.optimizer.name=nonsense"]}})
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"run 'bad'.*optimizer"):
        run_campaign(camp, out)
    assert not (out / "good").exists()  # nothing trained
    assert main(["campaign", str(camp), "--out", str(out), "--detach"]) == 2  # nor detached
    assert running_pid(out) is None


def test_finished_runs_are_published_and_count_as_done_on_an_empty_machine(dataset, tmp_path):
    results = tmp_path / "repo" / "results"
    camp = write_campaign(tmp_path, dataset, ["a", "b"], results=results)
    out = tmp_path / "out"
    summary = run_campaign(camp, out, stop=StopInSecondEpoch(out / "b"))  # b paused
    assert [r["status"] for r in summary["runs"]] == ["done", "paused"]
    pub = results / "a"
    for name in ("final_metrics.json", "metrics.csv", "train.log", "config.resolved.yaml",
                 "env.json", "predictions_test.npz", "bundle/model.onnx", "bundle/model.json",
                 "report/report.html"):
        assert (pub / name).is_file(), name
    assert not list(pub.rglob("*.pt")) and not (pub / "checkpoints").exists()
    assert not (results / "b").exists()
    # the machine comes back empty: only b trains
    fresh = run_campaign(camp, tmp_path / "fresh")
    assert [r["status"] for r in fresh["runs"]] == ["done", "done"]
    assert fresh["runs"][0]["note"] == "finished earlier; skipped"
    assert not (tmp_path / "fresh" / "a").exists()
    assert (results / "b" / "bundle" / "model.onnx").is_file()


def test_default_state_folder_is_outside_the_checkout(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_out("cpu") == tmp_path / "cache" / "ekspresi" / "campaigns" / "cpu"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_out("cpu") == Path.home() / ".cache" / "ekspresi" / "campaigns" / "cpu"


@pytest.mark.slow
def test_detach_status_stop_and_continue(dataset, tmp_path, capsys):
    """The real background process: --detach returns at once, status sees it training,
    stop ends it at the next step with a checkpoint, the same command finishes it."""
    camp = write_campaign(tmp_path, dataset, ["long"], epochs=400)
    out = tmp_path / "out"
    env_before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        assert main(["campaign", str(camp), "--out", str(out), "--detach", "--nice", "5"]) == 0
    finally:
        if env_before is None:
            os.environ.pop("OMP_NUM_THREADS")
        else:
            os.environ["OMP_NUM_THREADS"] = env_before
    printed = capsys.readouterr().out
    assert "pid" in printed and f"ekspresi campaign stop {out}" in printed
    pid = running_pid(out)
    assert pid and pid > 0
    assert "priority: " in (out / "campaign.log").read_text()
    group = Path(f"/proc/{pid}/autogroup")
    if group.is_file() and "priority: autogroup" in (out / "campaign.log").read_text():
        assert group.read_text().split()[-1] == "5"   # the campaign's share, not just a nice
    # a second start on the same folder refuses, naming the first
    assert main(["campaign", str(camp), "--out", str(out), "--detach"]) == 2
    assert f"already running here (pid {pid})" in capsys.readouterr().err
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "long" / "metrics.jsonl").is_file():
        time.sleep(0.1)
    assert main(["campaign", "status", str(out)]) == 0
    status = capsys.readouterr().out
    assert f"running (pid {pid})" in status and "training" in status
    assert main(["campaign", "stop", str(out), "--wait", "60"]) == 0
    assert "stopped the campaign" in capsys.readouterr().out
    assert running_pid(out) is None
    st = campaign_status(out)
    assert st["runs"][0].state == "paused"
    done = len((out / "long" / "metrics.jsonl").read_text().splitlines())
    assert 1 <= done < 400
    log = (out / "campaign.log").read_text()
    assert "stopped on request" in log
    # and the same command continues (not restarts) it: stop it again right after resuming
    proc = subprocess.Popen([sys.executable, "-m", "ekspresi", "campaign", str(camp),
                             "--out", str(out)], env=dict(os.environ, OMP_NUM_THREADS="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and "resumed" not in (out / "long" / "train.log").read_text():
        time.sleep(0.1)
    main(["campaign", "stop", str(out), "--wait", "60"])
    text = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, text
    assert f"resumed {out / 'long'} at epoch" in (out / "long" / "train.log").read_text()
    assert json.loads((out / "long" / "metrics.jsonl").read_text().splitlines()[0])["epoch"] == 1
