"""Shared pieces of the detector/inference/predict tests: tiny but real ONNX classifiers
written as bundles, and face images built from the committed public-domain photo.
(No tests here; imported by test_detect*.py, test_infer*.py and test_predict_cli*.py.)"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ekspresi.labels import CLASSES

FIXTURES = Path(__file__).parent / "fixtures"
PHOTO = FIXTURES / "photos" / "astronaut.jpg"
#: Where the face is in PHOTO (x0, y0, x1, y1), read off the picture by eye: brows to chin.
FACE_REGION = (170, 60, 280, 180)


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


def conv_onnx(size: int = 48, n_classes: int = 7, seed: int = 0) -> bytes:
    """A small real CNN (x/255 -> conv 3x3 s2 -> relu -> conv 3x3 s2 -> relu -> global
    pool -> dense) with random weights: enough structure for int8 quantisation to matter."""
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


def write_test_bundle(out_dir: Path, onnx_bytes: bytes | None = None, *, size: int = 48,
                      classes=CLASSES) -> Path:
    from ekspresi.infer.bundle import write_bundle
    from ekspresi.preprocess import InputSpec

    write_bundle(out_dir, onnx_bytes if onnx_bytes is not None else conv_onnx(size, len(classes)),
                 name="tiny-conv-test", classes=tuple(classes), input_spec=InputSpec(size=size),
                 training={"dataset": "none (random weights, test fixture)"},
                 metrics={"accuracy": 0.0})
    return out_dir


def photo_bgr() -> np.ndarray:
    img = cv2.imread(str(PHOTO), cv2.IMREAD_COLOR)
    assert img is not None, PHOTO
    return img


#: Head and shoulders around the face in PHOTO (x0, y0, x1, y1).
HEAD = (120, 10, 330, 250)


def collage(n: int = 4, tile: int = 200) -> np.ndarray:
    """n copies of the photo's head (some mirrored) on a grid: n faces."""
    cols = 2 if n > 1 else 1
    rows = (n + cols - 1) // cols
    out = np.full((rows * tile, cols * tile, 3), 90, np.uint8)
    x0, y0, x1, y1 = HEAD
    small = cv2.resize(photo_bgr()[y0:y1, x0:x1], (tile, tile), interpolation=cv2.INTER_AREA)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = small[:, ::-1] if i % 2 else small
    return out


def no_face_image(h: int = 360, w: int = 480) -> np.ndarray:
    """Smooth gradients and stripes: texture, but no face."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) % 64) * 4], axis=2)
    return img.astype(np.uint8)


def in_face_region(box, region=FACE_REGION) -> bool:
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    return region[0] <= cx <= region[2] and region[1] <= cy <= region[3]


@pytest.fixture(scope="session")
def conv_bundle(tmp_path_factory) -> Path:
    return write_test_bundle(tmp_path_factory.mktemp("bundle") / "conv")


@pytest.fixture(scope="session")
def recognizer(conv_bundle):
    from ekspresi.infer import Recognizer

    return Recognizer(conv_bundle, threads=1)
