"""The paper configs carry the papers' full budgets and settings (so a GPU campaign runs them
unchanged) and say which protocol they follow."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ekspresi.models import count_params
from ekspresi.train.callbacks import Plateau
from ekspresi.train.config import expand_grid, parse_config, read_config_file
from ekspresi.train.loop import apply_freeze, make_model
from ekspresi.train.optim import build_optimizer, build_scheduler

PAPERS = Path(__file__).resolve().parents[1] / "configs" / "papers"
torch.set_num_threads(1)


def runs(name: str) -> list:
    return [parse_config(d) for _, d in expand_grid(read_config_file(PAPERS / name))]


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def test_every_paper_config_states_its_protocol():
    for path in sorted(PAPERS.glob("*.yaml")):
        for _, data in expand_grid(read_config_file(path)):
            protocol = parse_config(data).data.protocol
            assert protocol.split(":")[0] in ("paper", "ours"), path.name


@pytest.mark.parametrize("name, budgets", [
    ("p1-mobilenetv2-3class.yaml", {(50, 16)}),
    ("p2-resnet50-vgg19-oversampling.yaml", {(100, 32)}),
    ("p3-papercnn-optimizers.yaml", {(200, 64)}),
    ("p3-papercnn-optimizers-ours.yaml", {(200, 64)}),
    ("p3-papercnn-adam-500.yaml", {(500, 64)}),
    ("p4-cnn-epochs-batch.yaml", {(50, 64), (50, 128), (100, 64), (100, 128)}),
    ("p5-mobilenetv2-96-balanced.yaml", {(45, 32)}),
    ("p5-mobilenetv2-224-frozen.yaml", {(45, 32)}),
])
def test_full_budgets(name, budgets):
    assert {(c.train.epochs, c.train.batch_size) for c in runs(name)} == budgets


def test_p1_plateau_freeze_and_optimizer_follow_the_notebook():
    (cfg,) = runs("p1-mobilenetv2-3class.yaml")
    s = cfg.train.scheduler
    assert (s.name, s.monitor, s.factor, s.patience, s.min_delta, s.min_lr) == (
        "plateau", "val_acc", 0.25, 4, 1e-4, 1e-7)
    cfg.model.pretrained = False
    model = make_model(cfg, 3)
    total = count_params(model)
    apply_freeze(model, cfg, 0)
    assert total - count_params(model) == 4608   # Keras' layers[:15]
    opt = build_optimizer(model, cfg.train)
    assert opt.param_groups[0]["eps"] == pytest.approx(1e-7)
    assert isinstance(build_scheduler(opt, cfg.train, 10)[0], Plateau)


def test_p2_last_epoch_and_labelled_scratch_without_weights():
    for cfg in runs("p2-resnet50-vgg19-oversampling.yaml"):
        assert cfg.train.select == "last" and cfg.model.pretrained == "if-available"
        assert cfg.data.split == "official"
    cfg = runs("p2-resnet50-vgg19-oversampling.yaml")[0]
    model = make_model(cfg, 7)   # no weight files in an empty TORCH_HOME
    assert model.init.startswith("scratch: ImageNet weights resnet50")


def test_p3_paper_protocol_and_keras_defaults():
    cfgs = runs("p3-papercnn-optimizers.yaml")
    assert [c.train.optimizer.name for c in cfgs] == ["adam", "sgd", "rmsprop"]
    for c in cfgs + runs("p3-papercnn-adam-500.yaml"):
        d = c.data
        assert (d.balance, d.balance_scope, d.frames_per_sequence) == ("undersample", "pooled", 1)
        assert d.relabel == {"contempt": "neutral"} and d.kdef_views == ["S"]
        assert d.optional_sources == ["kdef:data/kdef"] and d.protocol.startswith("paper:")
        assert c.train.select == "last" and c.model.options["init"] == "glorot"
    rms = build_optimizer(torch.nn.Linear(2, 2), cfgs[2].train).param_groups[0]
    assert (rms["alpha"], rms["eps"], rms["momentum"]) == (0.9, 1e-7, 0.0)
    ours = runs("p3-papercnn-optimizers-ours.yaml")
    assert all(c.data.balance_scope == "train" and c.train.select == "best" for c in ours)


def test_p4_p5_say_what_is_assumed():
    p4 = (PAPERS / "p4-cnn-epochs-batch.yaml").read_text()
    assert "STAND-IN" in p4 and "macro recall" in p4
    p5 = (PAPERS / "p5-mobilenetv2-96-balanced.yaml").read_text()
    assert "ASSUMPTIONS" in p5 and "ReLU" in p5 and "batch 32" in p5
    p5b = (PAPERS / "p5-mobilenetv2-224-frozen.yaml").read_text()
    assert "DOUBTFUL" in p5b and "20-class" in p5b
    for name in ("p4-cnn-epochs-batch.yaml", "p5-mobilenetv2-96-balanced.yaml",
                 "p5-mobilenetv2-224-frozen.yaml"):
        assert all(c.train.select == "last" for c in runs(name))
