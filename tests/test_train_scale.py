"""Training at scale: devices, torchrun/DDP on CPU (gloo), distillation, weight averaging.

CUDA-only behaviour is tested where a GPU exists and skipped (with the reason) elsewhere;
the CPU tests run the same code paths with ``device: cpu``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ekspresi.data.synthetic import write_class_folders
from ekspresi.errors import ConfigError
from ekspresi.train import run_training
from ekspresi.train.devices import resolve_device
from ekspresi.train.distributed import DistContext, per_rank_batch

torch.set_num_threads(1)
CLASSES = ["angry", "happy", "sad"]
HAS_CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ds")
    return write_class_folders(root / "faces", {c: 40 for c in CLASSES}, size=16, seed=3)


def config(dataset: Path, **train) -> dict:
    t = {"epochs": 4, "batch_size": 16, "threads": 1, "device": "cpu",
         "optimizer": {"name": "adam", "lr": 0.01}}
    t.update(train)
    return {"name": "tiny", "seed": 1,
            "data": {"sources": [f"folders:{dataset}"], "classes": CLASSES,
                     "split": "stratified", "ratios": [0.6, 0.2, 0.2]},
            "model": {"name": "fer-vgg", "input_size": 16,
                      "options": {"widths": [8, 16], "dropout": 0.0}},
            "augment": {"hflip": True, "rotation": 5, "erasing": 0.3},
            "train": t}


def final(run: Path) -> dict:
    return json.loads((run / "final_metrics.json").read_text())


def history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# -- devices -----------------------------------------------------------------------------
def test_unknown_device_lists_the_valid_ones(dataset, tmp_path):
    with pytest.raises(ConfigError, match="auto, cpu, cuda, cuda:N"):
        resolve_device("tpu")
    with pytest.raises(ConfigError, match="train.device: unknown device 'gpu0'"):
        run_training(config(dataset, device="gpu0"), tmp_path / "r", quiet=True)


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a GPU: the no-GPU error cannot occur")
def test_cuda_without_a_gpu_says_what_was_found(dataset, tmp_path):
    with pytest.raises(ConfigError, match=r"device 'cuda' requested but .*(CPU-only|GPU)"):
        run_training(config(dataset), tmp_path / "r", quiet=True, device="cuda")
    assert resolve_device("auto").type == "cpu"
    assert not (tmp_path / "r").exists()  # failed before writing anything


def test_world_size_must_divide_the_global_batch():
    assert per_rank_batch(64, DistContext(0, 0, 4)) == 16
    with pytest.raises(ConfigError, match="must divide evenly over 3 processes; use 63 or 66"):
        per_rank_batch(64, DistContext(0, 0, 3))


def test_run_records_device_precision_and_throughput(dataset, tmp_path):
    run = run_training(config(dataset, epochs=2), tmp_path / "r", quiet=True)
    env = json.loads((run / "env.json").read_text())
    assert env["device"] == "cpu" and env["precision"] == "fp32" and env["world_size"] == 1
    assert env["train_img_per_s"] > 0
    f = final(run)
    assert f["device"] == "cpu" and f["precision"] == "fp32"
    assert all(h["img_per_s"] > 0 for h in history(run))
    weights = torch.load(run / "final_weights.pt", map_location="cpu", weights_only=False)
    assert "optimizer" not in weights and weights["classes"] == CLASSES
    ck = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    tensors = [v for v in ck["model"].values() if torch.is_tensor(v)]
    assert tensors and all(v.device.type == "cpu" for v in tensors)


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (none on this machine)")
def test_gpu_run_resumes_on_the_cpu_and_back(dataset, tmp_path):
    cfg = config(dataset, epochs=3, device="cuda")
    run = run_training(cfg, tmp_path / "r", quiet=True, max_minutes=1e-6)
    assert final(run)["device"].startswith("cuda") and final(run)["epochs_run"] == 1
    first = history(run)[0]      # its wall-clock seconds differ in any retrained epoch 1
    run_training(None, run, resume=True, quiet=True, device="cpu", max_minutes=1e-6)
    assert final(run)["device"] == "cpu" and final(run)["epochs_run"] == 2
    run_training(None, run, resume=True, quiet=True, device="cuda")
    assert final(run)["epochs_run"] == 3 and final(run)["stop_reason"] == "completed"
    # resumed, not restarted: the GPU epoch's row is the one written before the first stop
    assert [r["epoch"] for r in history(run)] == [1, 2, 3] and history(run)[0] == first


# -- torchrun / DDP (gloo on the CPU) ----------------------------------------------------
def _torchrun(nproc: int, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           str(nproc), "-m", "ekspresi", "train", *args, "--quiet"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_two_gloo_processes_match_one_and_resume(dataset, tmp_path):
    """2 processes x 8 images == 1 process x 16 images per update.

    With the backbone frozen (its BatchNorm layers then use fixed statistics) and no
    dropout, the two runs compute the same mathematics: identical shuffles and augmentation
    parameters (every rank draws the global batch's), gradients averaged by DDP. Only float
    summation order differs, hence the 1e-5 tolerance. With BatchNorm training, per-rank
    batch statistics differ (use train.sync_bn on GPUs) and the runs only agree loosely.
    The 2-process run is also stopped after one epoch and resumed under torchrun.
    """
    cfg = config(dataset, epochs=4)
    cfg["model"]["freeze_backbone"] = True
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    one = run_training(cfg, tmp_path / "one", quiet=True)

    two = tmp_path / "two"
    r = _torchrun(2, str(path), "--out", str(two), "--max-minutes", "1e-6")
    assert r.returncode == 0, r.stderr[-3000:]
    assert final(two)["stop_reason"] == "time_budget" and final(two)["epochs_run"] == 1
    assert final(two)["world_size"] == 2
    r = _torchrun(2, "--resume", str(two))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed" in (two / "train.log").read_text()
    a, b = history(one), history(two)
    assert [h["epoch"] for h in b] == [1, 2, 3, 4]
    for ha, hb in zip(a, b):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert hb[key] == pytest.approx(ha[key], abs=1e-5), (ha["epoch"], key)
    fa, fb = final(one), final(two)
    for split in ("val", "test"):
        for key in ("accuracy", "log_loss"):
            assert fb["splits"][split][key] == pytest.approx(fa["splits"][split][key],
                                                             abs=1e-5), (split, key)
    # only rank 0 wrote: one log line per epoch, not two
    log = (two / "train.log").read_text()
    assert log.count("epoch 4/4") == 1


def test_torchrun_world_size_that_does_not_divide_the_batch(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match="must divide evenly over 3"):
        run_training(config(dataset, batch_size=16), tmp_path / "r", quiet=True)


# -- distillation --------------------------------------------------------------------------
def _agreement(student: Path, teacher: Path) -> float:
    s = np.load(student / "predictions_test.npz")["probabilities"].argmax(1)
    t = np.load(teacher / "predictions_test.npz")["probabilities"].argmax(1)
    return float((s == t).mean())


@pytest.fixture(scope="module")
def odd_teacher(dataset, tmp_path_factory) -> Path:
    """A teacher that disagrees with the labels: trained on them for one step with a huge
    learning rate, so its answers are far from the truth the students can learn."""
    out = tmp_path_factory.mktemp("teacher") / "t"
    cfg = config(dataset, epochs=1, optimizer={"name": "sgd", "lr": 50.0, "momentum": 0.0})
    cfg["augment"] = {}
    return run_training(cfg, out, quiet=True)


def test_distilled_student_follows_its_teacher(dataset, odd_teacher, tmp_path):
    base = config(dataset, epochs=10)
    plain = run_training(base, tmp_path / "plain", quiet=True)
    kd = config(dataset, epochs=10, distill={"teachers": [str(odd_teacher)], "alpha": 1.0,
                                             "temperature": 1.0, "flip": False})
    student = run_training(kd, tmp_path / "kd", quiet=True)
    assert final(student)["distilled_from"] == [str(odd_teacher)]
    assert "distilling from 1 teacher" in (student / "train.log").read_text()
    teacher_acc = final(odd_teacher)["splits"]["test"]["accuracy"]
    assert teacher_acc < 0.8
    assert _agreement(student, odd_teacher) >= _agreement(plain, odd_teacher) + 0.3
    # the ONNX bundle of the teacher works as a teacher too (same answers on the CPU)
    kd["train"]["distill"]["teachers"] = [str(odd_teacher / "bundle")]
    onnx_student = run_training(kd, tmp_path / "kd-onnx", quiet=True)
    assert _agreement(onnx_student, odd_teacher) >= _agreement(plain, odd_teacher) + 0.3


def test_teacher_with_other_classes_is_an_error(dataset, odd_teacher, tmp_path):
    cfg = config(dataset, distill={"teachers": [str(odd_teacher)]})
    cfg["data"]["classes"] = ["angry", "happy"]
    with pytest.raises(ConfigError, match=r"predicts classes \['angry', 'happy', 'sad'\] but "
                                          r"the student is trained on \['angry', 'happy'\]"):
        run_training(cfg, tmp_path / "r", quiet=True)


def test_not_a_teacher_folder(dataset, tmp_path):
    from ekspresi.errors import ModelError

    with pytest.raises(ModelError, match="not a teacher"):
        run_training(config(dataset, distill={"teachers": [str(tmp_path)]}),
                     tmp_path / "r", quiet=True)


# -- weight averaging ------------------------------------------------------------------------
def test_swa_averages_the_last_epochs_and_resumes(dataset, tmp_path):
    cfg = config(dataset, epochs=4, swa={"start": 0.5})
    run = run_training(cfg, tmp_path / "r", quiet=True, max_minutes=1e-6)
    assert final(run)["epochs_run"] == 1
    run_training(None, run, resume=True, quiet=True)
    f = final(run)
    assert f["weights_used"] == "swa (epochs 2-4, 3 averaged)"
    ref = run_training(cfg, tmp_path / "ref", quiet=True)
    assert final(ref)["weights_used"] == f["weights_used"]
    assert final(ref)["splits"]["test"]["log_loss"] == pytest.approx(
        f["splits"]["test"]["log_loss"], abs=1e-6)
    # the exported bundle is the averaged model
    swa = torch.load(run / "final_weights.pt", map_location="cpu", weights_only=False)
    last = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    key = next(k for k in swa["model"] if k.endswith("weight") and swa["model"][k].ndim == 4)
    assert not torch.equal(swa["model"][key], last["model"][key])


# -- fitting a run to its time budget ----------------------------------------------------------
def test_planned_epochs():
    from ekspresi.train.loop import planned_epochs

    assert planned_epochs(1, 100.0, 12.0, 10.0) == 9
    assert planned_epochs(1, 100.0, 120.0, 10.0) == 1


def test_fit_to_budget_replans_the_one_cycle_schedule(dataset, tmp_path, monkeypatch):
    """A 4-epoch one-cycle run fitted to 2 epochs after its first anneals like a 2-epoch
    run: from epoch 2 on its learning rates are those of a run planned for 2 epochs."""
    import ekspresi.train.loop as loop

    monkeypatch.setattr(loop, "planned_epochs", lambda *a: 2)
    sched = {"name": "onecycle", "pct_start": 0.3}
    cfg = config(dataset, epochs=4, fit_to_budget=True, scheduler=sched)
    run = run_training(cfg, tmp_path / "fit", quiet=True, max_minutes=60)
    f = final(run)
    assert f["epochs_run"] == 2 and f["epochs_planned"] == 2 and f["epochs_configured"] == 4
    assert f["stop_reason"] == "completed"
    assert "fitting to the time budget: 2 epochs instead of 4" in (run / "train.log").read_text()
    assert yaml.safe_load((run / "config.resolved.yaml").read_text())["train"]["epochs"] == 2
    short = run_training(config(dataset, epochs=2, scheduler=sched), tmp_path / "two",
                         quiet=True)
    assert history(run)[1]["lr"] == pytest.approx(history(short)[1]["lr"], rel=1e-9)
    assert history(run)[0]["lr"] == pytest.approx(history(short)[0]["lr"], rel=1e-9)
