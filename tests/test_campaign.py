"""`ekspresi campaign`: the shipped campaign file as a CPU dry run with tiny budgets, the
archive limits, resuming, and one failing run not stopping the others."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import torch
import yaml

from ekspresi.cli import main
from ekspresi.data.pack_writer import write_pack
from ekspresi.data.synthetic import write_class_folders
from ekspresi.errors import ConfigError
from ekspresi.train import run_training
from ekspresi.train.campaign import pack_results, read_campaign

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["angry", "happy", "sad"]
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ds")
    return write_class_folders(root / "faces", {c: 30 for c in CLASSES}, size=16, seed=4)


def tiny_sets(dataset: Path) -> list[str]:
    return [f"data.sources=['folders:{dataset}']", f"data.classes={CLASSES}",
            "data.split=stratified", "data.ratios=[0.6,0.2,0.2]", "model.input_size=16",
            "train.epochs=2", "train.batch_size=16", "train.eval_batch_size=64",
            "train.device=cpu", "train.threads=1"]


def archive_members(folder: Path) -> dict[str, bytes]:
    """Join the parts (as `cat results.tar.xz.* > results.tar.xz` does) and read them."""
    data = b"".join(p.read_bytes() for p in sorted(folder.glob("results.tar.xz*")))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:xz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


@pytest.mark.slow
def test_shipped_campaign_dry_run_on_cpu(dataset, tmp_path, monkeypatch, capsys):
    """The real configs/campaign/default-model.yaml end to end: teachers, then the student
    distilled from them, then the archives; a rerun skips what is finished."""
    monkeypatch.chdir(ROOT)
    out, arch = tmp_path / "camp", tmp_path / "archives"
    args = ["campaign", "configs/campaign/default-model.yaml", "--budget-minutes", "10",
            "--out", str(out), "--archive-dir", str(arch), "--archive-mb", "16",
            "--max-archives", "6"]
    for s in [*tiny_sets(dataset), "model.options.widths=[8,16,16,32]"]:  # small nets
        args += ["--set", s]
    assert main(args) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "campaign.json").read_text())
    assert [r["name"] for r in summary["runs"]] == ["teacher-resnet18", "teacher-vgg-wide",
                                                    "student-fer-vgg"]
    assert all(r["status"] == "done" for r in summary["runs"]), summary
    student = json.loads((out / "student-fer-vgg" / "final_metrics.json").read_text())
    assert student["distilled_from"] == [str(out / "teacher-resnet18"),
                                         str(out / "teacher-vgg-wide")]
    files = sorted(arch.glob("results.tar.xz*"))
    assert 1 <= len(files) <= 6 and all(f.stat().st_size <= 16 * 2**20 for f in files)
    members = archive_members(arch)
    for run in ("teacher-resnet18", "teacher-vgg-wide", "student-fer-vgg"):
        for name in ("final_metrics.json", "train.log", "metrics.csv", "bundle/model.onnx",
                     "bundle/model.json", "final_weights.fp16.pt"):
            assert f"{run}/{name}" in members, (run, name)
    assert not any("checkpoints" in m or m.endswith("last.pt") for m in members)
    w = torch.load(io.BytesIO(members["student-fer-vgg/final_weights.fp16.pt"]),
                   weights_only=False)
    assert "optimizer" not in w
    assert all(v.dtype == torch.float16 for v in w["model"].values() if v.is_floating_point())
    assert "campaign.json" in members and "archives.json" in members
    assert "student-fer-vgg" in printed and "MiB" in printed

    # a rerun finds everything finished and trains nothing
    assert main(args) == 0
    again = json.loads((out / "campaign.json").read_text())
    assert all(r["note"] == "finished earlier; skipped" for r in again["runs"])


def test_failed_run_and_empty_budget_do_not_stop_the_campaign(dataset, tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"name": "fer-vgg",
                                             "options": {"widths": [8, 16]}},
                                   "data": {"sources": ["data/placeholder"]}}))
    camp = tmp_path / "c.yaml"
    camp.write_text(yaml.safe_dump({"name": "t", "set": tiny_sets(dataset), "runs": [
        {"name": "broken", "config": str(cfg),
         "set": ["train.distill.teachers=['{out}/nowhere']"]},
        {"name": "ok", "config": str(cfg), "minutes": 2},
        {"name": "needs-broken", "config": str(cfg), "after": ["broken"]}]}))
    out = tmp_path / "out"
    assert main(["campaign", str(camp), "--budget-minutes", "5", "--out", str(out)]) == 1
    runs = {r["name"]: r for r in json.loads((out / "campaign.json").read_text())["runs"]}
    assert runs["broken"]["status"] == "failed" and "not a teacher" in runs["broken"]["error"]
    assert runs["ok"]["status"] == "done"
    assert runs["needs-broken"]["status"] == "skipped"
    out2 = tmp_path / "out2"
    assert main(["campaign", str(camp), "--budget-minutes", "0.01", "--out", str(out2),
                 "--only", "ok"]) == 0                       # skipped is not failed
    (only,) = json.loads((out2 / "campaign.json").read_text())["runs"]
    assert only["status"] == "skipped" and only["note"] == "no time left in the budget"


@pytest.mark.slow
def test_an_interrupted_run_resumes_on_the_next_call(dataset, tmp_path):
    """A run stopped by its cap keeps its checkpoint; the same command run again continues
    it (epoch 2 after epoch 1, not a fresh start) and finishes it."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"name": "fer-vgg", "options": {"widths": [8]}},
                                   "data": {"sources": ["data/placeholder"]}}))
    camp, out = tmp_path / "c.yaml", tmp_path / "out"

    def call(minutes: float) -> dict:
        camp.write_text(yaml.safe_dump({"name": "t", "set": tiny_sets(dataset), "runs": [
            {"name": "r", "config": str(cfg), "minutes": minutes,
             "set": ["train.fit_to_budget=false"]}]}))   # the cap stops it, not shortens it
        assert main(["campaign", str(camp), "--budget-minutes", "5", "--out", str(out)]) == 0
        (entry,) = json.loads((out / "campaign.json").read_text())["runs"]
        return entry

    first = call(1e-4)                      # the cap ends the run after its first epoch
    assert (first["status"], first["resumed"]) == ("stopped", False)
    history = out / "r" / "metrics.jsonl"
    (epoch1,) = history.read_text().splitlines()
    second = call(2)
    assert (second["status"], second["resumed"]) == ("done", True)
    rows = history.read_text().splitlines()
    assert rows[0] == epoch1                  # epoch 1 kept as it was (timings included)
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2]


def test_campaign_substitutes_a_pack_when_present(dataset, tmp_path, caplog):
    pack = tmp_path / "faces.ekpack"
    write_pack([f"folders:{dataset}"], pack)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"name": "fer-vgg", "options": {"widths": [8]}},
                                   "data": {"sources": [f"folders:{dataset}"]}}))
    camp = tmp_path / "c.yaml"
    sets = [s for s in tiny_sets(dataset) if not s.startswith("data.sources")]
    camp.write_text(yaml.safe_dump({"name": "t", "set": sets,
                                    "data": {f"folders:{dataset}": f"pack:{pack}"},
                                    "runs": [{"name": "a", "config": str(cfg)}]}))
    out = tmp_path / "out"
    assert main(["campaign", str(camp), "--budget-minutes", "5", "--out", str(out)]) == 0
    resolved = yaml.safe_load((out / "a" / "config.resolved.yaml").read_text())
    assert resolved["data"]["sources"] == [f"pack:{pack}"]


def test_archives_shed_weights_before_metrics(dataset, tmp_path):
    runs = tmp_path / "runs"
    cfg = {"name": "x", "data": {"sources": [f"folders:{dataset}"], "classes": CLASSES,
                                 "split": "stratified", "ratios": [0.6, 0.2, 0.2]},
           "model": {"name": "fer-vgg", "input_size": 16, "options": {"widths": [32, 64]}},
           "train": {"epochs": 1, "batch_size": 16, "threads": 1, "device": "cpu"}}
    for name in ("a", "b"):
        run_training(cfg, runs / name, quiet=True)
    full = pack_results(runs, ["a", "b"], tmp_path / "big", limit_mb=16, max_files=8)
    assert len(full) == 1 and Path(full[0]["file"]).name == "results.tar.xz"
    total = full[0]["bytes"]
    # split: parts of a third of the archive each, all of it still travels
    split = pack_results(runs, ["a", "b"], tmp_path / "split", limit_mb=total / 3 / 2**20,
                         max_files=8)
    assert len(split) in (3, 4) and all(Path(a["file"]).name.startswith("results.tar.xz.")
                                        for a in split)
    index = json.loads(archive_members(tmp_path / "split")["archives.json"])
    assert set(index["runs"].values()) == {"metrics+logs+bundle+fp16 weights"}
    # too small for everything: the weights stay behind, the metrics do not
    small = pack_results(runs, ["a", "b"], tmp_path / "small", limit_mb=total * 0.6 / 2**20,
                         max_files=1)
    assert len(small) == 1 and small[0]["bytes"] <= total * 0.6
    members = archive_members(tmp_path / "small")
    index = json.loads(members["archives.json"])
    assert "metrics+logs+bundle+fp16 weights" not in index["runs"].values()
    assert "a/final_metrics.json" in members and "b/train.log" in members
    with pytest.raises(ConfigError, match="do not fit"):
        pack_results(runs, ["a", "b"], tmp_path / "none", limit_mb=0.001, max_files=1)


def test_campaign_file_errors(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("runs: [{name: a, config: nowhere.yaml}]")
    with pytest.raises(ConfigError, match="nowhere.yaml not found"):
        read_campaign(bad)
    bad.write_text("runs: []")
    with pytest.raises(ConfigError, match="non-empty `runs:`"):
        read_campaign(bad)
