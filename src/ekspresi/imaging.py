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

# Register the allowed formats' plugins (Pillow's lazy start-up loads only a few of them).
from PIL import (  # noqa: F401
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    JpegImagePlugin,
    PngImagePlugin,
    PpmImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

from ekspresi.errors import BadInputError

#: Refuse images above this many pixels before decoding them (decompression bombs).
MAX_PIXELS = 50_000_000

#: The only formats Pillow may open. Everything else (EPS, which would run Ghostscript, DDS,
#: ICO, PSD, ...) is "not an image" for ekspresi: fewer decoders, fewer ways to crash or
#: to be exploited. JPEG includes the MPO phone photos it opens; PPM covers .pgm/.ppm/.pbm.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM")
#: Problem text of an unrecognised file; the web server answers 415 for it (422 otherwise).
NOT_AN_IMAGE = ("not an image (format not recognised; ekspresi reads JPEG, PNG, WebP, BMP, "
                "TIFF, GIF and PGM/PPM)")
#: Decoded pixels are converted to uint8 in horizontal bands of about this many bytes, so
#: the conversion never holds more than one extra band besides the decoded image.
BAND_BYTES = 4 * 1024 * 1024

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, Image.Image]

# Pillow's own bomb guard raises a warning first and an error at 2x; we check size ourselves.
Image.MAX_IMAGE_PIXELS = None

_GRAY_MODES = ("1", "L", "LA")
_INT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _check_size(img: Image.Image, name: str | None, max_pixels: int,
                max_side: int | None = None) -> None:
    w, h = img.size
    if w * h > max_pixels:
        raise BadInputError(name, f"image is {w}x{h} = {w * h:,} pixels, above the limit of "
                                  f"{max_pixels:,} (possible decompression bomb)")
    if max_side is not None and max(w, h) > max_side:
        raise BadInputError(name, f"image is {w}x{h}: its longer side is above the limit of "
                                  f"{max_side:,} pixels")
    if w == 0 or h == 0:
        raise BadInputError(name, "image has zero width or height")


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1 = upright). A broken EXIF block is ignored, as browsers
    do: the pixels are still usable."""
    try:
        value = img.getexif().get(0x0112, 1)
        return int(value) if int(value) in range(1, 9) else 1
    except Exception:  # noqa: BLE001 - any EXIF parser failure means "no orientation"
        return 1


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Turn ``arr`` upright the way :func:`PIL.ImageOps.exif_transpose` would, but on the
    uint8 array (one copy of 8-bit pixels instead of a transposed copy of the decoded
    image in its native depth)."""
    if orientation == 1:
        return arr
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
           7: lambda a: np.rot90(a, 2).swapaxes(0, 1), 8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(ops[orientation](arr))


def _decode(img: Image.Image, name: str | None, max_pixels: int,
            max_side: int | None = None) -> tuple[np.ndarray, int]:
    _check_size(img, name, max_pixels, max_side)
    orientation = _orientation(img)
    img.load()
    return pil_to_array(img), orientation


def _bands(img: Image.Image, bytes_per_pixel: int):
    w, h = img.size
    rows = max(1, BAND_BYTES // max(1, w * bytes_per_pixel))
    for y in range(0, h, rows):
        yield y, img.crop((0, y, w, min(h, y + rows)))


def pil_to_array(img: Image.Image) -> np.ndarray:
    """PIL image -> uint8 array, gray (H, W) or BGR (H, W, 3); alpha is dropped, 16-bit
    and float images are scaled to 8 bits, palettes expanded.

    Converted band by band with integer arithmetic where possible: a 49-megapixel 16-bit
    PNG needs its decoded 98 MB plus the 49 MB result, not gigabytes of float64
    temporaries."""
    img.load()
    mode = img.mode
    w, h = img.size
    if mode in _INT_MODES or mode == "F":
        if mode.startswith("I;16"):
            top: float = 65535
        else:
            hi = img.getextrema()[1]
            if mode == "F":
                top = 1.0 if not hi > 1.0 else 255.0  # NaN extrema count as 0..1 data
            else:
                top = 65535 if hi > 255 else 255
        out = np.empty((h, w), np.uint8)
        for y, band in _bands(img, 4):
            a = np.asarray(band)
            if mode == "F":
                a = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=top, neginf=0.0)
                part = np.clip(a * np.float32(255.0 / top) + np.float32(0.5), 0, 255)
            elif top == 65535:
                # round(v * 255 / 65535) in uint32 (65535 * 255 + 32767 < 2**32), in place
                part = np.clip(a, 0, 65535).astype(np.uint32)
                part *= 255
                part += 32767
                part //= 65535
            else:
                part = np.clip(a, 0, 255)
            out[y:y + part.shape[0]] = part
        return out
    if mode == "L":
        return np.asarray(img, dtype=np.uint8).copy()
    gray = mode in _GRAY_MODES
    out = np.empty((h, w) if gray else (h, w, 3), np.uint8)
    for y, band in _bands(img, 4):
        if gray:
            out[y:y + band.size[1]] = np.asarray(band.convert("L"))
        else:
            out[y:y + band.size[1]] = np.asarray(band.convert("RGB"))[:, :, ::-1]
    return out


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
               max_pixels: int = MAX_PIXELS, max_side: int | None = None) -> np.ndarray:
    """Decode ``source`` into a uint8 array: (H, W) gray or (H, W, 3) BGR, EXIF-upright.

    Accepts a path, encoded bytes, a numpy array (gray/BGR/BGRA, 8/16-bit, float) or a PIL
    image. Raises :class:`BadInputError` naming the file for anything it cannot decode.
    ``max_pixels`` and ``max_side`` (longer side) are checked from the header, before any
    pixel is decoded.
    """
    if isinstance(source, np.ndarray):
        return array_to_uint8(source, name)
    if isinstance(source, Image.Image):
        return _guarded(lambda: _apply_orientation(*_decode(source, name, max_pixels,
                                                            max_side)), name)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise BadInputError(name, "empty file")
        stream: Any = io.BytesIO(source)
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

    def decode() -> np.ndarray:
        try:
            img = Image.open(stream, formats=ALLOWED_FORMATS)
        except UnidentifiedImageError:
            raise BadInputError(name, NOT_AN_IMAGE) from None
        with img:
            arr, orientation = _decode(img, name, max_pixels, max_side)
        # the decoded image is released before the upright copy is made
        return _apply_orientation(arr, orientation)

    return _guarded(decode, name)


def _guarded(decode, name: str | None) -> np.ndarray:
    """Run ``decode``; every failure of a decoder, whatever its type (Pillow raises
    OSError, SyntaxError, ValueError, but also NotImplementedError, struct.error,
    IndexError, ZeroDivisionError, MemoryError... on crafted files), becomes one
    :class:`BadInputError` naming the file, so no caller can be crashed by a bad image."""
    try:
        return decode()
    except BadInputError:
        raise
    except MemoryError:
        raise BadInputError(name, "not enough memory to decode this image") from None
    except Exception as exc:  # noqa: BLE001 - see the docstring
        detail = f"{type(exc).__name__}: {exc}"[:200]
        raise BadInputError(name, f"corrupt or truncated image ({detail})") from None
