"""Stopping a training inside an epoch and resuming it to the step: a stop request and a
SIGKILL after a timed mid-epoch checkpoint both continue exactly as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
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
from ekspresi.runs import last_checkpoint
from ekspresi.train import run_training
from ekspresi.train.callbacks import StopRequest, TrainingInterrupted

torch.set_num_threads(1)
CLASSES = ["angry", "happy", "sad"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ds")
    return write_class_folders(root / "faces", {c: 40 for c in CLASSES}, size=16, seed=5)


def config(dataset: Path, **train) -> dict:
    # batch 8 of 72 training images: 9 steps an epoch, a per-step (one-cycle) schedule, EMA,
    # mixup and augmentation: every random draw and every running state must survive
    t = {"epochs": 3, "batch_size": 8, "threads": 1, "ema": 0.9, "mixup": 0.3,
         "optimizer": {"name": "adam", "lr": 0.01}, "scheduler": {"name": "onecycle"}}
    t.update(train)
    return {"name": "tiny", "seed": 2,
            "data": {"sources": [f"folders:{dataset}"], "classes": CLASSES,
                     "split": "stratified", "ratios": [0.6, 0.2, 0.2]},
            "model": {"name": "fer-vgg", "input_size": 16,
                      "options": {"widths": [8, 16], "dropout": 0.1}},
            "augment": {"hflip": True, "rotation": 5, "erasing": 0.3},
            "train": t}


def history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("seconds", "img_per_s")} for r in rows]


class StopAfter(StopRequest):
    """Fires at the n-th check (the loop checks once after every training step)."""

    def __init__(self, n: int):
        super().__init__()
        self.n, self.calls = n, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.n


def test_stop_mid_epoch_then_resume_equals_uninterrupted(dataset, tmp_path):
    cfg = config(dataset)
    ref = run_training(cfg, tmp_path / "ref", quiet=True)
    run = tmp_path / "run"
    stop = StopAfter(9 + 4)  # epoch 1's 9 steps (+ its end check), then 3 steps of epoch 2
    with pytest.raises(TrainingInterrupted) as info:
        run_training(cfg, run, quiet=True, stop=stop)
    assert (info.value.epoch, info.value.step, info.value.steps) == (1, 3, 9)
    assert not (run / "final_metrics.json").exists()
    (epoch1,) = history(run)
    state = torch.load(last_checkpoint(run), weights_only=False)
    assert state["epoch"] == 1 and state["partial"]["step"] == 3
    progress = json.loads((run / "progress.json").read_text())
    assert (progress["epoch"], progress["step"], progress["steps"]) == (1, 3, 9)

    run_training(None, run, resume=True, quiet=True)
    rows = history(run)
    assert rows[0] == epoch1                      # epoch 1 not redone (timings included)
    assert strip(rows) == strip(history(ref))     # epoch 2's sums, LR and draws continued
    a = json.loads((ref / "final_metrics.json").read_text())
    b = json.loads((run / "final_metrics.json").read_text())
    for split in ("val", "test"):
        assert a["splits"][split]["log_loss"] == b["splits"][split]["log_loss"], split
    assert "at epoch 1, step 3/9" in (run / "train.log").read_text()


def test_stop_at_the_last_step_keeps_the_finished_epoch(dataset, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted) as info:
        run_training(config(dataset), run, quiet=True, stop=StopAfter(9))  # epoch 1's last step
    assert (info.value.epoch, info.value.step) == (1, 0)  # stopped after epoch 1's checkpoint
    state = torch.load(last_checkpoint(run), weights_only=False)
    assert state["epoch"] == 1 and state["partial"] is None
    assert len(history(run)) == 1


@pytest.mark.slow
def test_sigkill_after_a_timed_checkpoint_resumes_mid_epoch(dataset, tmp_path):
    """A real kill: `ekspresi train` with a checkpoint every ~50 ms is killed inside epoch 1
    after its first mid-epoch checkpoint; the resumed run equals an uninterrupted one."""
    cfg = config(dataset, epochs=2, batch_size=4, checkpoint_minutes=0.0008)
    cfg["model"]["options"]["widths"] = [16, 32]  # slow enough to be caught mid-epoch
    ref = run_training({**cfg, "train": {**cfg["train"], "checkpoint_minutes": None}},
                       tmp_path / "ref", quiet=True)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "ekspresi", "train", str(path), "--out",
                             str(run), "--quiet", "--threads", "1"],
                            env=dict(os.environ, OMP_NUM_THREADS="1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    try:
        while time.time() < deadline and not last_checkpoint(run).is_file():
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    state = torch.load(last_checkpoint(run), weights_only=False)
    if state["partial"] is None:  # pragma: no cover - a very slow machine may pass step 18
        pytest.fail("the first checkpoint came at an epoch end; no mid-epoch checkpoint")
    assert state["epoch"] == 0 and 0 < state["partial"]["step"] < 18
    assert main(["train", "--resume", str(run), "--quiet", "--threads", "1"]) == 0
    assert strip(history(run)) == strip(history(ref))
    a = json.loads((ref / "final_metrics.json").read_text())
    b = json.loads((run / "final_metrics.json").read_text())
    assert a["splits"]["test"]["log_loss"] == b["splits"]["test"]["log_loss"]


def test_checkpoint_minutes_must_be_positive(dataset, tmp_path):
    with pytest.raises(ConfigError, match="checkpoint_minutes must be > 0"):
        run_training(config(dataset, checkpoint_minutes=0), tmp_path / "r", quiet=True)


def test_cpu_tuning_times_each_setting_records_it_and_resume_keeps_it(dataset, tmp_path,
                                                                      monkeypatch):
    """With channels_last unset the run times each CPU setting on a copy of its network,
    trains with the fastest, writes it into config.resolved.yaml (so a resume keeps it, and
    stays exact) and env.json; the timing leaves the run's random draws untouched."""
    from ekspresi.train import tuning

    cfg = config(dataset, epochs=2)
    monkeypatch.setenv("EKSPRESI_CPU_TUNE", "0")
    plain = run_training(cfg, tmp_path / "plain", quiet=True)
    monkeypatch.setenv("EKSPRESI_CPU_TUNE", "1")
    seen = []
    real = tuning.time_train_steps

    def fake(model, place, *a, **k):  # the memory format that is NOT the default wins
        real(model, place, *a, **k)
        seen.append((place.precision, place.channels_last))
        return 100.0 if place.channels_last else 10.0

    monkeypatch.setattr(tuning, "time_train_steps", fake)
    run = tmp_path / "tuned"
    with pytest.raises(TrainingInterrupted):
        run_training(cfg, run, quiet=True, stop=StopAfter(9 + 2))
    assert ("fp32", False) in seen and ("fp32", True) in seen
    assert all(p == "fp32" for p, _ in seen)  # bf16 not allowed by this config
    resolved = yaml.safe_load((run / "config.resolved.yaml").read_text())
    assert resolved["train"]["channels_last"] is True
    assert resolved["train"]["precision"] == "fp32"
    env = json.loads((run / "env.json").read_text())
    assert env["channels_last"] is True and env["cpu_tuning"]["channels_last"] is True
    assert len(env["cpu_tuning"]["candidates"]) == len(seen)
    n = len(seen)
    run_training(None, run, resume=True, quiet=True)
    assert len(seen) == n                       # no second tuning on resume
    env = json.loads((run / "env.json").read_text())
    assert env["channels_last"] is True and env["cpu_tuning"]["channels_last"] is True
    # the same draws as the untuned run (channels-last changes float rounding only)
    a, b = history(plain), history(run)
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert ra["train_acc"] == pytest.approx(rb["train_acc"], abs=0.05)
