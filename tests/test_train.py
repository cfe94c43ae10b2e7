"""The training engine end to end on tiny synthetic datasets (1 thread, 16 px images)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml

from ekspresi.cli import main
from ekspresi.data.synthetic import write_class_folders
from ekspresi.errors import ConfigError
from ekspresi.infer.bundle import load_bundle
from ekspresi.train import run_training
from ekspresi.train.checkpoint import load as load_checkpoint

torch.set_num_threads(1)
CLASSES = ["angry", "happy", "sad"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ds")
    return write_class_folders(root / "faces", {c: 40 for c in CLASSES}, size=16, seed=3)


def config(dataset: Path, **train) -> dict:
    t = {"epochs": 4, "batch_size": 16, "threads": 1,
         "optimizer": {"name": "adam", "lr": 0.01}}
    t.update(train)
    return {"name": "tiny", "seed": 1,
            "data": {"sources": [f"folders:{dataset}"], "classes": CLASSES,
                     "split": "stratified", "ratios": [0.6, 0.2, 0.2]},
            "model": {"name": "fer-vgg", "input_size": 16,
                      "options": {"widths": [8, 16], "dropout": 0.1}},
            "augment": {"hflip": True, "rotation": 5},
            "train": t}


def history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_run_directory_contents_and_overfitting(dataset, tmp_path):
    cfg = config(dataset, epochs=12)
    cfg["augment"] = {}
    run = run_training(cfg, tmp_path / "run", quiet=True)
    for name in ("config.resolved.yaml", "env.json", "metrics.jsonl", "metrics.csv",
                 "checkpoints/last.pt", "checkpoints/best.pt", "final_metrics.json",
                 "predictions_test.npz", "train.log", "bundle/model.onnx", "bundle/model.json"):
        assert (run / name).is_file(), name
    h = history(run)
    assert [r["epoch"] for r in h] == list(range(1, 13))
    assert h[-1]["train_loss"] < 0.5 * h[0]["train_loss"]  # it learns the synthetic bars
    csv_lines = (run / "metrics.csv").read_text().splitlines()
    assert csv_lines[0] == "epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds"
    assert len(csv_lines) == 13
    final = json.loads((run / "final_metrics.json").read_text())
    assert final["stop_reason"] == "completed" and final["classes"] == CLASSES
    assert final["counts"]["train"] == {"angry": 24, "happy": 24, "sad": 24}
    assert final["splits"]["test"]["accuracy"] > 0.6 and final["best_epoch"] >= 1
    preds = np.load(run / "predictions_test.npz")
    assert preds["probabilities"].shape == (24, 3) and len(preds["paths"]) == 24
    hits = preds["probabilities"].argmax(1) == preds["labels"]
    assert np.isclose(final["splits"]["test"]["accuracy"], hits.mean())
    env = json.loads((run / "env.json").read_text())
    assert env["threads"] == 1 and "torch" in env and "git_commit" in env
    resolved = yaml.safe_load((run / "config.resolved.yaml").read_text())
    assert resolved["train"]["epochs"] == 12 and resolved["train"]["optimizer"]["lr"] == 0.01


def test_onnx_bundle_matches_pytorch(dataset, tmp_path):
    cfg = config(dataset, epochs=2, ema=0.9)
    cfg["model"] = {"name": "mobilenetv2", "input_size": 32, "options": {"head": "a"}}
    run = run_training(cfg, tmp_path / "run", quiet=True)
    bundle = load_bundle(run / "bundle")
    assert bundle.classes == tuple(CLASSES) and bundle.input_spec.channels == 3
    state = torch.load(run / "checkpoints" / "best.pt", weights_only=False)
    from ekspresi.models import build_model

    model = build_model("mobilenetv2", 3, input_size=32, head="a")
    model.load_state_dict(state["model"])
    model.eval()
    x = np.random.default_rng(0).integers(0, 256, (5, 1, 32, 32)).astype(np.float32)
    sess = ort.InferenceSession(str(bundle.onnx_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input"]
    assert [o.name for o in sess.get_outputs()] == ["logits"]
    got = sess.run(["logits"], {"input": x})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
    assert bundle.metrics["splits"]["test"] == json.loads(
        (run / "final_metrics.json").read_text())["splits"]["test"]


def test_every_training_option_runs(dataset, tmp_path):
    cfg = config(dataset, epochs=3, ema=0.9, mixup=0.4, cutmix=1.0, label_smoothing=0.1,
                 grad_clip=1.0, optimizer={"name": "sgd", "lr": 0.05, "nesterov": True},
                 scheduler={"name": "cosine", "warmup_epochs": 1})
    cfg["data"]["balance"] = "oversample"
    cfg["data"]["class_weights"] = True
    cfg["augment"] = {"rotation": 10, "width_shift": 0.1, "shear": 5, "zoom": 0.1,
                      "hflip": True, "brightness": 0.1, "contrast": 0.1, "erasing": 0.5}
    run = run_training(cfg, tmp_path / "a", quiet=True)
    assert len(history(run)) == 3
    for opt, sched in (("rmsprop", "plateau"), ("adamw", "onecycle")):
        c = config(dataset, epochs=2, optimizer={"name": opt, "lr": 0.001},
                   scheduler={"name": sched})
        c["model"] = {"name": "paper-cnn", "input_size": 16}
        assert len(history(run_training(c, tmp_path / opt, quiet=True))) == 2


def test_freeze_and_unfreeze_after(dataset, tmp_path):
    cfg = config(dataset, epochs=2)
    cfg["model"] = {"name": "fer-resnet", "input_size": 16, "freeze_backbone": True,
                    "unfreeze_after": 1, "options": {"widths": [8, 16], "depths": [1, 1]}}
    run = run_training(cfg, tmp_path / "run", quiet=True)
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    first = torch.load(run / "checkpoints" / "best.pt", weights_only=False)
    assert state["epoch"] == 2 and first["epoch"] >= 1


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ekspresi", *args]


def test_resume_after_kill_equals_uninterrupted(dataset, tmp_path):
    cfg = config(dataset, epochs=25, ema=0.95, mixup=0.3, label_smoothing=0.05,
                 scheduler={"name": "onecycle"})
    cfg["augment"] = {"rotation": 10, "zoom": 0.1, "hflip": True, "erasing": 0.3}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    ref = run_training(cfg, tmp_path / "ref", quiet=True)

    killed = tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(_cmd("train", str(path), "--out", str(killed), "--quiet",
                                 "--threads", "1"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            m = killed / "metrics.jsonl"
            if m.is_file() and len(m.read_text().splitlines()) >= 3:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert not (killed / "final_metrics.json").exists(), "run finished before it was killed"
    done = len(history(killed))
    assert 3 <= done < 25
    assert main(["train", "--resume", str(killed), "--quiet", "--threads", "1"]) == 0

    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("seconds", "img_per_s")}  # noqa: E731
                          for r in rows]
    assert strip(history(killed)) == strip(history(ref))
    a = json.loads((ref / "final_metrics.json").read_text())
    b = json.loads((killed / "final_metrics.json").read_text())
    assert a["best_epoch"] == b["best_epoch"]
    for split in ("val", "test"):
        for key in ("accuracy", "log_loss"):
            assert a["splits"][split][key] == b["splits"][split][key], (split, key)
    assert "resumed" in (killed / "train.log").read_text()


def test_early_stopping_stops_and_restores_best(dataset, tmp_path):
    # lr 0 => nothing improves after the first epoch: stop after 1 + patience epochs.
    cfg = config(dataset, epochs=20, optimizer={"name": "sgd", "lr": 1e-12, "momentum": 0.0},
                 early_stopping={"patience": 2, "monitor": "val_loss", "min_delta": 0.01})
    run = run_training(cfg, tmp_path / "run", quiet=True)
    final = json.loads((run / "final_metrics.json").read_text())
    assert final["stop_reason"] == "early_stopping"
    assert final["epochs_run"] == 3 and final["best_epoch"] == 1
    assert final["weights_used"] == "best (epoch 1)"


def test_time_budget_stops_resumably(dataset, tmp_path):
    cfg = config(dataset, epochs=6)
    run = run_training(cfg, tmp_path / "run", quiet=True, max_minutes=1e-6)
    final = json.loads((run / "final_metrics.json").read_text())
    assert final["stop_reason"] == "time_budget" and final["resumable"]
    assert final["epochs_run"] == 1
    run_training(None, run, resume=True, quiet=True)
    final = json.loads((run / "final_metrics.json").read_text())
    assert final["stop_reason"] == "completed" and final["epochs_run"] == 6
    assert [r["epoch"] for r in history(run)] == list(range(1, 7))


def test_resume_applies_the_checkpoint(dataset, tmp_path, monkeypatch):
    """Resuming continues from the checkpoint's state: the finished epoch is not trained
    again, and its metrics row (wall-clock seconds included) and the accumulated training
    time come from the checkpoint, not from a silent restart that happens to give the same
    seeded history."""
    from ekspresi.train import loop
    from ekspresi.train.checkpoint import save as save_checkpoint

    run = run_training(config(dataset, epochs=3), tmp_path / "run", quiet=True,
                       max_minutes=1e-6)
    assert [r["epoch"] for r in history(run)] == [1]
    # stamp the checkpoint so its state is recognisable once applied
    last = run / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    state["history"][0]["seconds"] = 4242.42
    state["train_seconds"] = 5000.0
    save_checkpoint(last, state)

    trained = []
    train_epoch = loop._Trainer.train_epoch

    def counting(self, *args, **kwargs):
        trained.append(self.epoch + 1)
        return train_epoch(self, *args, **kwargs)

    monkeypatch.setattr(loop._Trainer, "train_epoch", counting)
    run_training(None, run, resume=True, quiet=True)
    assert trained == [2, 3]                       # epoch 1 is not redone
    rows = history(run)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[0]["seconds"] == 4242.42           # epoch 1's row is the checkpoint's
    final = json.loads((run / "final_metrics.json").read_text())
    assert final["train_time_seconds"] >= 5000.0
    assert final["epochs_run"] == 3


def test_cli_train_set_and_errors(dataset, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config(dataset)))
    out = tmp_path / "run"
    assert main(["train", str(path), "--set", "train.epochs=1", "--out", str(out), "--quiet"]) == 0
    assert "test acc" in capsys.readouterr().out
    assert len(history(out)) == 1
    assert main(["train", str(path), "--out", str(out), "--quiet"]) == 2  # already a run
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", str(path), "--set", "train.epochs=zero"]) == 2
    assert "train.epochs: expected an integer" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2


def test_sweep_runs_grid_and_skips_finished(dataset, tmp_path, capsys):
    cfg = config(dataset, epochs=1)
    cfg["grid"] = {"train.batch_size": [8, 16]}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(cfg))
    runs = tmp_path / "runs"
    assert main(["sweep", str(path), "--runs", str(runs), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "tiny_batch_size-8" in out and "tiny_batch_size-16" in out
    stamp = (runs / "tiny_batch_size-8" / "final_metrics.json").stat().st_mtime_ns
    assert main(["sweep", str(path), "--runs", str(runs), "--dry-run"]) == 0
    assert "done" in capsys.readouterr().out
    assert main(["sweep", str(path), "--runs", str(runs), "--quiet"]) == 0
    assert (runs / "tiny_batch_size-8" / "final_metrics.json").stat().st_mtime_ns == stamp


def test_empty_split_is_a_config_error(dataset, tmp_path):
    cfg = config(dataset)
    cfg["data"]["classes"] = ["angry", "happy", "sad", "surprise"]
    cfg["data"]["split"] = "official"
    with pytest.raises(ConfigError, match="no official split"):
        run_training(cfg, tmp_path / "run", quiet=True)


@pytest.mark.parametrize("native", [False, True])
def test_bf16_only_where_the_cpu_has_it(dataset, tmp_path, monkeypatch, caplog, native):
    """Emulated bf16 is ~15x slower than float32: without native support it is not used."""
    import ekspresi.train.devices as devices

    monkeypatch.setattr(devices, "native_bf16", lambda: native)
    cfg = config(dataset, epochs=1, bf16=True)
    with caplog.at_level("WARNING", logger="ekspresi.train"):
        run = run_training(cfg, tmp_path / "run", quiet=True)
    assert json.loads((run / "final_metrics.json").read_text())["bf16_used"] is native
    assert ("no native bfloat16" in caplog.text) is (not native)


def test_one_test_accuracy_everywhere(dataset, tmp_path):
    """The test accuracy a run records (final_metrics.json, one vocabulary) is the number
    compare, the model card, the Experiments page and the report show."""
    from fastapi.testclient import TestClient

    from ekspresi.evaluate.compare import build_comparison
    from ekspresi.evaluate.report import write_run_report
    from ekspresi.web.app import create_app
    from ekspresi.web.engine import Engine
    from ekspresi.web.modelcard import build_card
    from ekspresi.web.settings import WebSettings

    runs = tmp_path / "runs"
    run = run_training(config(dataset, epochs=2), runs / "tiny", quiet=True)
    acc = json.loads((run / "final_metrics.json").read_text())["splits"]["test"]["accuracy"]
    assert acc == load_bundle(run / "bundle").metrics["splits"]["test"]["accuracy"]
    pct = f"{100 * acc:.2f} %"
    table, _, _ = build_comparison([run])
    assert table.display_rows()[0][table.columns.index("test acc.")] == pct
    card = build_card(load_bundle(run / "bundle"))
    assert [(t.name, t.metrics["accuracy"]) for t in card.test_sets] == [("test", acc)]
    s = WebSettings(model=run / "bundle", threads=1, runs_dir=runs)
    client = TestClient(create_app(s, engine=Engine(s)))
    assert f"{100 * acc:.1f} %" in client.get("/about").text
    page = client.get("/experiments").text
    runs_table = page[page.index('id="runs"'):page.index('id="comparison"')]
    assert f"{acc:.4f}" in runs_table and pct in page[page.index('id="comparison"'):]
    write_run_report(run)
    report = (run / "report" / "report.html").read_text()
    summary = report[report.index("<h2>Summary</h2>"):report.index("<h2>Training run")]
    assert f"<td>{pct}</td>" in summary
