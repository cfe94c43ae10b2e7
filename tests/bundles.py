"""Tiny but real ONNX classifiers for the tests, and the one function that writes them as
bundles (the ``make_bundle`` fixture in conftest.py calls it). No tests here.

Graphs (all honour the bundle contract: ``input`` float32 (N, 1, size, size) in 0..255 ->
``logits`` (N, C)):

- ``dense``: flatten, one dense layer with random weights; different faces give different
  probabilities (the web tests);
- ``conv``: a small CNN with random weights, enough structure for int8 quantisation to
  matter (the inference, predict and export tests);
- ``flip``: logits from the left/right/top brightness, so a horizontal flip changes the
  prediction (the TTA and evaluation tests);
- ``region_onnx``: class 0's logit is the brightness of one region (saliency tests).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ekspresi.labels import CLASSES

THREE = ("happy", "sad", "surprise")

#: Metrics of a plausible 7-class model, so the About page has a full card to show.
CARD_METRICS = {
    "schema": "ekspresi.metrics/1", "classes": list(CLASSES), "n_samples": 7 * 61,
    "accuracy": 0.656, "accuracy_ci95": [0.61, 0.70], "balanced_accuracy": 0.64,
    "macro_f1": 0.63,
    "per_class": {c: {"precision": 0.6, "recall": 0.5 + i / 20, "f1": 0.55, "support": 61}
                  for i, c in enumerate(CLASSES)},
    "confusion_matrix": (np.eye(len(CLASSES), dtype=int) * 40 + 3).tolist(),
}


def _model(nodes, initializers, size: int, n_classes: int) -> bytes:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", n_classes])],
        initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def dense_onnx(size: int = 48, n_classes: int = 7, seed: int = 0) -> bytes:
    from onnx import numpy_helper as nh
    from onnx.helper import make_node as node

    rng = np.random.default_rng(seed)
    w = (rng.normal(0, 1, (size * size, n_classes)) / (255.0 * size)).astype(np.float32)
    b = rng.normal(0, 0.3, n_classes).astype(np.float32)
    nodes = [node("Flatten", ["input"], ["flat"], axis=1),
             node("MatMul", ["flat", "W"], ["mm"]),
             node("Add", ["mm", "B"], ["logits"])]
    return _model(nodes, [nh.from_array(w, "W"), nh.from_array(b, "B")], size, n_classes)


def conv_onnx(size: int = 48, n_classes: int = 7, seed: int = 0) -> bytes:
    """x/255 -> conv 3x3 s2 -> relu -> conv 3x3 s2 -> relu -> global pool -> dense."""
    from onnx import numpy_helper as nh
    from onnx.helper import make_node as node

    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.5, (8, 1, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.3, (16, 8, 3, 3)).astype(np.float32)
    wd = rng.normal(0, 1.0, (16, n_classes)).astype(np.float32)
    bd = rng.normal(0, 0.1, n_classes).astype(np.float32)
    nodes = [node("Mul", ["input", "scale"], ["x"]),
             node("Conv", ["x", "w1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
             node("Relu", ["c1"], ["r1"]),
             node("Conv", ["r1", "w2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
             node("Relu", ["c2"], ["r2"]),
             node("GlobalAveragePool", ["r2"], ["g"]),
             node("Flatten", ["g"], ["f"], axis=1),
             node("MatMul", ["f", "wd"], ["m"]),
             node("Add", ["m", "bd"], ["logits"])]
    inits = [nh.from_array(np.array(1 / 255, np.float32), "scale"), nh.from_array(w1, "w1"),
             nh.from_array(w2, "w2"), nh.from_array(wd, "wd"), nh.from_array(bd, "bd")]
    return _model(nodes, inits, size, n_classes)


def region_onnx(region: tuple[int, int, int, int], size: int = 48, n_classes: int = 7) -> bytes:
    """Class 0's logit is the mean brightness of ``region`` (y0, y1, x0, x1) / 100, the others
    are 0: a model whose decision provably depends on that region only."""
    from onnx import numpy_helper as nh
    from onnx.helper import make_node as node

    y0, y1, x0, x1 = region
    mask = np.zeros((size, size), np.float32)
    mask[y0:y1, x0:x1] = 1.0
    w = np.zeros((size * size, n_classes), np.float32)
    w[:, 0] = mask.ravel() / mask.sum() / 100.0
    nodes = [node("Flatten", ["input"], ["f"], axis=1), node("MatMul", ["f", "w"], ["logits"])]
    return _model(nodes, [nh.from_array(w, "w")], size, n_classes)


def flip_onnx(size: int = 48, n_classes: int = 3) -> bytes:
    """Logits from the left, right and top brightness (exported from PyTorch)."""
    import io

    import torch

    torch.set_num_threads(1)

    class Tiny(torch.nn.Module):
        def __init__(self, k: int):
            super().__init__()
            w = torch.tensor([[4.0, -4.0, 1.0], [-4.0, 4.0, 0.5], [0.5, 0.5, -3.0],
                              [1.0, 1.0, 1.0], [2.0, -1.0, 0.0], [-1.0, 2.0, 0.0],
                              [0.0, 0.0, 2.0], [1.0, 0.0, -1.0]])[:k].T
            self.w = torch.nn.Parameter(w)

        def forward(self, x):
            h, w = x.shape[-2] // 2, x.shape[-1] // 2
            left = x[..., :w].mean(dim=(1, 2, 3))
            right = x[..., w:].mean(dim=(1, 2, 3))
            top = x[..., :h, :].mean(dim=(1, 2, 3))
            feats = torch.stack([left, right, top], 1) / 255.0
            return feats @ self.w

    buf = io.BytesIO()
    with warnings.catch_warnings():  # the legacy exporter warns that it is legacy
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(Tiny(n_classes).eval(), torch.zeros(1, 1, size, size), buf,
                          dynamo=False, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})
    return buf.getvalue()


#: What each kind of test bundle is, unless the caller says otherwise.
KINDS: dict[str, dict[str, Any]] = {
    "dense": {"graph": dense_onnx, "name": "tiny-test-model", "classes": CLASSES,
              "training": {"dataset": "synthetic (test fixture)", "split": "none"},
              "metrics": {"splits": {"test": CARD_METRICS}},
              "extra": {"limitations": ["A random test model: its answers mean nothing."]}},
    "conv": {"graph": conv_onnx, "name": "tiny-conv-test", "classes": CLASSES,
             "training": {"dataset": "none (random weights, test fixture)"},
             "metrics": {"splits": {"test": {"accuracy": 0.0}}}},
    "flip": {"graph": flip_onnx, "name": "tiny", "classes": THREE},
}


def write_test_bundle(out_dir: Path, kind: str = "conv", *, onnx: bytes | None = None,
                      size: int = 48, **fields: Any) -> Path:
    """Write a ``kind`` bundle to ``out_dir`` (its graph, or ``onnx`` bytes); ``fields``
    (name, classes, training, metrics, extra) override the kind's defaults, None drops one."""
    from ekspresi.infer.bundle import write_bundle
    from ekspresi.preprocess import InputSpec

    spec = {**KINDS[kind], **fields}
    classes = tuple(spec["classes"])
    graph = onnx if onnx is not None else spec["graph"](size=size, n_classes=len(classes))
    write_bundle(out_dir, graph, name=spec["name"], classes=classes,
                 input_spec=InputSpec(size=size), training=spec.get("training"),
                 metrics=spec.get("metrics"), extra=spec.get("extra"))
    return Path(out_dir)
