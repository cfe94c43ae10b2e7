"""Shared pieces of the web tests: a tiny but real model bundle, face photos, a shared
engine and a live uvicorn server in a thread. (No tests here; imported by test_web_*.py and
test_browser_*.py.)"""

from __future__ import annotations

import io
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ekspresi.labels import CLASSES

FIXTURES = Path(__file__).parent / "fixtures"


def make_tiny_onnx(size: int = 48, n_classes: int = 7, seed: int = 0) -> bytes:
    """A real ONNX classifier honouring the bundle contract (input ``input`` float32
    (N, 1, size, size) 0..255 -> ``logits`` (N, C)): flatten, one dense layer. Its outputs
    depend on the pixels, so different faces give different probabilities."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = (rng.normal(0, 1, (size * size, n_classes)) / (255.0 * size)).astype(np.float32)
    b = rng.normal(0, 0.3, n_classes).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
         helper.make_node("MatMul", ["flat", "W"], ["mm"]),
         helper.make_node("Add", ["mm", "B"], ["logits"])],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", n_classes])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_tiny_bundle(out_dir: Path, *, with_metrics: bool = True) -> Path:
    from ekspresi.infer.bundle import write_bundle
    from ekspresi.preprocess import InputSpec

    metrics = None
    if with_metrics:
        k = len(CLASSES)
        cm = (np.eye(k, dtype=int) * 40 + 3).tolist()
        metrics = {"schema": "ekspresi.metrics/1", "classes": list(CLASSES), "n_samples": 7 * 61,
                   "accuracy": 0.656, "accuracy_ci95": [0.61, 0.70], "balanced_accuracy": 0.64,
                   "macro_f1": 0.63,
                   "per_class": {c: {"precision": 0.6, "recall": 0.5 + i / 20, "f1": 0.55,
                                     "support": 61} for i, c in enumerate(CLASSES)},
                   "confusion_matrix": cm}
    write_bundle(out_dir, make_tiny_onnx(), name="tiny-test-model", classes=CLASSES,
                 input_spec=InputSpec(size=48),
                 training={"dataset": "synthetic (test fixture)", "split": "none"},
                 metrics=metrics, extra={"limitations": ["A random test model: its answers "
                                                         "mean nothing."]})
    return out_dir


def face_photo_path() -> Path | None:
    """A real photo with one frontal face, from the committed fixtures when present."""
    for pattern in ("photos/*.jpg", "photos/*.png", "web/*.jpg", "web/*.png"):
        found = sorted(FIXTURES.glob(pattern))
        if found:
            return found[0]
    return None


def face_jpeg() -> bytes:
    path = face_photo_path()
    if path is None:
        pytest.skip("no face photo fixture under tests/fixtures/photos")
    return path.read_bytes()


def png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


@pytest.fixture(scope="session")
def web_engine(tiny_bundle):
    from ekspresi.web.engine import Engine
    from ekspresi.web.settings import WebSettings

    engine = Engine(WebSettings(model=tiny_bundle, threads=1))
    assert engine.available, engine.error
    return engine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving ``app`` on a free loopback port in a daemon thread, configured as
    `ekspresi serve` configures it (timeouts, connection limit)."""

    def __init__(self, app, header_timeout: float = 10.0):
        import uvicorn

        from ekspresi.web.serving import uvicorn_config

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn_config(app, host="127.0.0.1", port=self.port,
                                ws_max_size=16 * 1024 * 1024, header_timeout=header_timeout)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
