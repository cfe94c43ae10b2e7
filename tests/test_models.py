"""Model zoo: exact paper architectures, every builder, the input adapter, freezing, CLI."""

from __future__ import annotations

import json

import pytest
import torch

from ekspresi.cli import main
from ekspresi.errors import ConfigError
from ekspresi.models import build_model, count_params
from ekspresi.models.base import InputAdapter
from ekspresi.models.registry import model_names
from ekspresi.preprocess import IMAGENET_MEAN, IMAGENET_STD, InputSpec

torch.set_num_threads(1)


def keras_count(model: torch.nn.Module) -> int:
    """Parameters as Keras counts them: BN moving mean/variance included."""
    bn = sum(b.numel() for n, b in model.named_buffers() if "running_" in n)
    return count_params(model, trainable_only=False) + bn


def test_paper_cnn_has_the_thesis_parameter_count():
    model = build_model("paper-cnn", 7)
    assert count_params(model) == 4_474_759
    # Keras' total adds the BN moving statistics: 4,478,727 in the thesis.
    assert keras_count(model) == 4_478_727


def test_mobilenetv2_paper_heads_match_the_papers_counts():
    assert keras_count(build_model("mobilenetv2", 3, head="a")) == 1_364_707    # paper 1
    assert keras_count(build_model("mobilenetv2", 7, head="b", input_size=96)) == 3_741_383  # p5


def test_mobilenetv2_head_a_taps_block_15_projection():
    model = build_model("mobilenetv2", 3, head="a").eval()
    with torch.no_grad():
        feats = model.backbone(model.adapter(torch.zeros(1, 1, 48, 48)))
    assert feats.shape == (1, 160, 2, 2)  # Keras block_15_project at 48x48x3


@pytest.mark.parametrize("name", ["paper-cnn", "mobilenetv2", "resnet50", "vgg19",
                                  "efficientnet-lite0", "fer-vgg", "fer-resnet"])
def test_every_model_maps_pixels_to_logits(name):
    size = 64 if name == "efficientnet-lite0" else 48
    model = build_model(name, 5, input_size=size).eval()
    x = torch.randint(0, 256, (2, 1, size, size)).float()
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 5)
    assert torch.isfinite(out).all()
    assert model.input_spec.size == size


def test_registry_lists_all_models():
    assert {"paper-cnn", "mobilenetv2", "resnet50", "vgg19", "efficientnet-lite0",
            "fer-vgg", "fer-resnet"} <= set(model_names())


def test_input_adapter_normalises_inside_the_model():
    spec = InputSpec(size=4, channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    x = torch.full((1, 1, 4, 4), 255.0)
    y = InputAdapter(spec)(x)
    assert y.shape == (1, 3, 4, 4)
    expected = [(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
    assert torch.allclose(y[0, :, 0, 0], torch.tensor(expected), atol=1e-5)
    unit = InputAdapter(InputSpec(size=4))(x)
    assert torch.allclose(unit, torch.ones_like(unit))


def test_freezing_first_blocks_backbone_and_unfreezing():
    model = build_model("mobilenetv2", 3, head="a")
    total = count_params(model)
    model.freeze(2)
    assert not any(p.requires_grad for b in model.blocks()[:2] for p in b.parameters())
    assert all(p.requires_grad for p in model.blocks()[2].parameters())
    model.train()
    assert not model.blocks()[0].training and model.blocks()[2].training  # frozen BN fixed
    model.freeze(backbone=True)
    assert count_params(model) == 160 * 3 + 3  # only the head trains
    model.freeze(0)
    assert count_params(model) == total


def test_head_c_freezes_the_backbone():
    model = build_model("mobilenetv2", 7, head="c")
    assert count_params(model) == 1280 * 7 + 7


def test_bad_model_requests_are_config_errors():
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        build_model("nope")
    with pytest.raises(ConfigError, match="no option"):
        build_model("fer-vgg", 7, depth=3)
    with pytest.raises(ConfigError, match="no pre-trained weights"):
        build_model("paper-cnn", 7, pretrained=True)
    with pytest.raises(ConfigError, match="head"):
        build_model("mobilenetv2", 7, head="z")


def test_models_command_json(capsys):
    assert main(["models", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert by_name["paper-cnn"]["trainable_params"] == 4_474_759
    assert by_name["efficientnet-lite0"]["input_size"] == 64
    assert all({"name", "trainable_params", "input_size", "channels"} <= set(r) for r in rows)
