"""Decoding images from every form users hand us, with one set of safety checks.

Readers of datasets, the CLI, the Python API and the web server all decode through
:func:`read_image`, so a corrupt file, a decompression bomb or an EXIF-rotated phone photo is
handled the same way everywhere.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ekspresi.errors import BadInputError

#: Refuse images above this many pixels before decoding them (decompression bombs).
MAX_PIXELS = 50_000_000

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, Image.Image]

# Pillow's own bomb guard raises a warning first and an error at 2x; we check size ourselves.
Image.MAX_IMAGE_PIXELS = None


def _from_pil(img: Image.Image, name: str | None, max_pixels: int) -> np.ndarray:
    w, h = img.size
    if w * h > max_pixels:
        raise BadInputError(name, f"image is {w}x{h} = {w * h:,} pixels, above the limit of "
                                  f"{max_pixels:,} (possible decompression bomb)")
    if w == 0 or h == 0:
        raise BadInputError(name, "image has zero width or height")
    try:
        img = ImageOps.exif_transpose(img)
        img.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInputError(name, f"corrupt or truncated image ({exc})") from None
    return pil_to_array(img)


def pil_to_array(img: Image.Image) -> np.ndarray:
    """PIL image -> uint8 array, gray (H, W) or BGR (H, W, 3); alpha is dropped, 16-bit
    and float images are scaled to 8 bits, palettes expanded."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img).astype(np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        return np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        top = 1.0 if arr.max() <= 1.0 else 255.0
        return np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if mode in ("L", "1"):
        return np.asarray(img.convert("L"), dtype=np.uint8).copy()
    if mode == "LA":
        return np.asarray(img.convert("L"), dtype=np.uint8).copy()
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def array_to_uint8(arr: np.ndarray, name: str | None = None) -> np.ndarray:
    """Normalise a user array (gray, BGR, BGRA, 16-bit, float 0-1) to uint8 gray or BGR."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise BadInputError(name, f"unsupported array shape {arr.shape}; expected HxW, HxWx3 "
                                  "(BGR) or HxWx4 (BGRA)")
    if arr.size == 0:
        raise BadInputError(name, "empty image array")
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.uint16:
        return (arr.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        a = arr.astype(np.float32)
        if np.nanmax(a) <= 1.0:
            a = a * 255.0
        return np.clip(np.nan_to_num(a) + 0.5, 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        return np.clip(arr, 0, 255).astype(np.uint8)
    raise BadInputError(name, f"unsupported array dtype {arr.dtype}")


def read_image(source: ImageSource, *, name: str | None = None,
               max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode ``source`` into a uint8 array: (H, W) gray or (H, W, 3) BGR, EXIF-upright.

    Accepts a path, encoded bytes, a numpy array (gray/BGR/BGRA, 8/16-bit, float) or a PIL
    image. Raises :class:`BadInputError` naming the file for anything it cannot decode.
    """
    if isinstance(source, np.ndarray):
        return array_to_uint8(source, name)
    if isinstance(source, Image.Image):
        return _from_pil(source, name, max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise BadInputError(name, "empty file")
        stream: Any = io.BytesIO(data)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = name or str(path)
        if not path.is_file():
            raise BadInputError(name, "no such file")
        if path.stat().st_size == 0:
            raise BadInputError(name, "empty file")
        stream = path
    else:
        raise BadInputError(name, f"cannot read an image from {type(source).__name__}")
    try:
        with Image.open(stream) as img:
            return _from_pil(img, name, max_pixels)
    except UnidentifiedImageError:
        raise BadInputError(name, "not an image (format not recognised)") from None
    except Image.DecompressionBombError as exc:  # pragma: no cover - guarded above
        raise BadInputError(name, str(exc)) from None
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, BadInputError):
            raise
        raise BadInputError(name, f"corrupt or truncated image ({exc})") from None
