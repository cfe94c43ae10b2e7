"""Model zoo: the registry (data: name -> input, weights, paper, size and builder) and the
builders that make each ``torch.nn.Module``.

Every model starts with an :class:`InputAdapter` (see :mod:`ekspresi.preprocess`): inputs are
float32 ``(N, 1, H, W)`` pixels in 0..255 and the scaling, mean/std and 1->3 channel repeat
happen inside the network, hence inside its ONNX export.

The package and its registry import no torch, so that ``ekspresi models`` and the
inference-only install keep working; the torch-backed names are loaded on first access.
"""

from __future__ import annotations

__all__ = ["InputAdapter", "FERModel", "ModelInfo", "build_model", "get_info", "list_models",
           "count_params", "resolve_weights"]

_LAZY = {
    "InputAdapter": "ekspresi.models.base",
    "FERModel": "ekspresi.models.base",
    "count_params": "ekspresi.models.base",
    "ModelInfo": "ekspresi.models.registry",
    "build_model": "ekspresi.models.registry",
    "get_info": "ekspresi.models.registry",
    "list_models": "ekspresi.models.registry",
    "resolve_weights": "ekspresi.models.weights",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
