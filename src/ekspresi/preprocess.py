"""The one preprocessing path shared by training and inference (no train/serve skew).

Design: everything that depends on the *image* (grayscale, optional crop box, resize) is
done here in numpy/OpenCV and yields uint8 faces of the model's size; everything that
depends on the *model* (scaling to 0-1, mean/std, 1->3 channels for ImageNet backbones)
lives inside the network as its first layer (``ekspresi.models.InputAdapter``) and is
therefore exported into the ONNX graph. Training caches :func:`prepare_face` outputs as
uint8, augments them as float tensors in the 0-255 range, and feeds them to the model;
inference calls :func:`preprocess` which is ``prepare_face`` + a cast. The model input is
always float32 ``(N, 1, H, W)`` with pixel values in 0..255.

``PREPROCESS_VERSION`` is recorded in every bundle; bump it when this file's output changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

PREPROCESS_VERSION = 1

Box = tuple[int, int, int, int]  # x, y, w, h in pixels


@dataclass(frozen=True)
class InputSpec:
    """What a model expects. ``size`` is the square side in pixels; ``channels`` is what the
    network's backbone sees after its built-in adapter (the ONNX input is always 1 channel);
    ``mean``/``std`` apply to pixel/255 and are applied inside the model."""

    size: int = 48
    channels: int = 1
    mean: tuple[float, ...] = field(default=(0.0,))
    std: tuple[float, ...] = field(default=(1.0,))
    version: int = PREPROCESS_VERSION

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "InputSpec":
        return cls(size=int(d["size"]), channels=int(d.get("channels", 1)),
                   mean=tuple(float(v) for v in d.get("mean", (0.0,))),
                   std=tuple(float(v) for v in d.get("std", (1.0,))),
                   version=int(d.get("version", PREPROCESS_VERSION)))


#: ImageNet statistics (for backbones initialised from ImageNet weights).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 gray (H, W) from gray, BGR or BGRA uint8 input (OpenCV's BT.601 weights)."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"unsupported image shape {image.shape}")


def crop(image: np.ndarray, box: Box, margin: float = 0.0) -> np.ndarray:
    """Crop ``box`` (x, y, w, h) grown by ``margin`` (fraction of the box side on each side).
    Parts outside the image are filled by edge replication so the face stays centred."""
    x, y, w, h = (int(round(v)) for v in box)
    if w <= 0 or h <= 0:
        raise ValueError(f"empty crop box {box}")
    mx, my = int(round(w * margin)), int(round(h * margin))
    x0, y0, x1, y1 = x - mx, y - my, x + w + mx, y + h + my
    H, W = image.shape[:2]
    pad = max(0, -x0, -y0, x1 - W, y1 - H)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    return image[y0:y1, x0:x1]


def resize(gray: np.ndarray, size: int) -> np.ndarray:
    """Square resize: area averaging when shrinking (no aliasing), bilinear when enlarging."""
    h, w = gray.shape[:2]
    if (h, w) == (size, size):
        return gray
    interp = cv2.INTER_AREA if (h > size or w > size) else cv2.INTER_LINEAR
    return cv2.resize(gray, (size, size), interpolation=interp)


def prepare_face(image: np.ndarray, size: int, box: Box | None = None,
                 margin: float = 0.0) -> np.ndarray:
    """Image (gray/BGR/BGRA uint8) -> uint8 (size, size) gray face. The cached training
    images and the inference inputs both come from this function."""
    gray = to_gray(image)
    if box is not None:
        gray = crop(gray, box, margin)
    return np.ascontiguousarray(resize(gray, size))


def to_model_input(faces: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """uint8 faces (N, H, W) -> float32 (N, 1, H, W) in 0..255, the ONNX/torch input."""
    arr = np.asarray(faces)
    if arr.ndim == 2:
        arr = arr[None]
    return arr.astype(np.float32)[:, None, :, :]


def preprocess(images: Sequence[np.ndarray], spec: InputSpec,
               boxes: Sequence[Box | None] | None = None, margin: float = 0.0) -> np.ndarray:
    """Images (+ optional face boxes) -> model input batch, float32 (N, 1, size, size)."""
    boxes = boxes if boxes is not None else [None] * len(images)
    if len(boxes) != len(images):
        raise ValueError("images and boxes differ in length")
    faces = [prepare_face(im, spec.size, b, margin) for im, b in zip(images, boxes)]
    if not faces:
        return np.zeros((0, 1, spec.size, spec.size), np.float32)
    return to_model_input(np.stack(faces))
