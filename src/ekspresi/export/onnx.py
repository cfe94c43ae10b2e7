"""ONNX export of a trained PyTorch model into a bundle (see :mod:`ekspresi.infer.bundle`).

The legacy TorchScript-based exporter (``dynamo=False``) gives compact, well-supported
graphs for these CNNs; the batch axis is dynamic, the input is float32 ``(N, 1, H, W)``
pixels 0..255 named ``input`` and the output ``logits``.
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path
from typing import Any

import torch

from ekspresi.infer.bundle import INPUT_NAME, OUTPUT_NAME, Bundle, write_bundle
from ekspresi.models.base import FERModel

OPSET = 17


def onnx_bytes(model: FERModel) -> bytes:
    model = copy.deepcopy(model).float().eval()
    model = model.to(memory_format=torch.contiguous_format)
    size = model.input_spec.size
    dummy = torch.zeros(1, 1, size, size)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (dummy,), buf, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], opset_version=OPSET, dynamo=False,
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    return buf.getvalue()


def export_bundle(model: FERModel, out_dir: Path, *, name: str, classes: tuple[str, ...],
                  training: dict[str, Any] | None = None,
                  metrics: dict[str, Any] | None = None) -> Bundle:
    return write_bundle(out_dir, onnx_bytes(model), name=name, classes=classes,
                        input_spec=model.input_spec, training=training, metrics=metrics)
