"""Safe decoding of every image input (files, bytes, arrays, PIL) through read_image."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ekspresi.errors import BadInputError
from ekspresi.imaging import array_to_uint8, read_image

FIX = Path(__file__).parent / "fixtures" / "datasets"


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_dataset_files_decode_to_uint8():
    jpg = read_image(next((FIX / "fer2013" / "train" / "happy").iterdir()))
    assert jpg.shape == (48, 48) and jpg.dtype == np.uint8
    tiff = read_image(FIX / "jaffe" / "KA.AN1.39.tiff")
    assert tiff.shape == (64, 64) and tiff.dtype == np.uint8


def test_color_comes_back_as_bgr():
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200  # red
    out = read_image(encode(Image.fromarray(rgb)))
    assert out.shape == (4, 5, 3)
    assert out[0, 0].tolist() == [0, 0, 200]


def test_alpha_and_palette_are_flattened():
    rgba = Image.new("RGBA", (3, 3), (10, 20, 30, 0))
    assert read_image(encode(rgba))[0, 0].tolist() == [30, 20, 10]
    pal = Image.new("L", (3, 3), 77).convert("P")
    out = read_image(encode(pal))
    assert out.ndim == 3 and out[0, 0].tolist() == [77, 77, 77]


def test_16_bit_png_is_scaled_to_8_bits():
    arr = np.full((4, 4), 65535, np.uint16)
    arr[0, 0] = 0
    out = read_image(encode(Image.fromarray(arr)))
    assert out.dtype == np.uint8 and out[1, 1] == 255 and out[0, 0] == 0


def test_exif_orientation_is_applied():
    img = Image.new("L", (30, 10), 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = read_image(encode(img, "JPEG", exif=exif.tobytes()))
    assert out.shape == (30, 10)


def test_pil_image_input():
    assert read_image(Image.new("L", (7, 5), 9)).shape == (5, 7)


@pytest.mark.parametrize("data, problem", [
    (b"", "empty file"),
    (b"hello, not an image", "not an image"),
    (encode(Image.new("L", (64, 64), 3), "JPEG")[:60], "corrupt or truncated"),
])
def test_bad_bytes(data, problem):
    with pytest.raises(BadInputError, match=problem) as err:
        read_image(data, name="upload.jpg")
    assert "upload.jpg" in str(err.value)


def test_bad_files_are_named(tmp_path):
    with pytest.raises(BadInputError, match="no such file"):
        read_image(tmp_path / "missing.png")
    p = tmp_path / "x.png"
    p.write_bytes(b"")
    with pytest.raises(BadInputError, match=f"{p}: empty file"):
        read_image(p)


def test_decompression_bomb_is_refused_before_decoding():
    with pytest.raises(BadInputError, match="decompression bomb"):
        read_image(encode(Image.new("L", (100, 100))), max_pixels=5000)


@pytest.mark.parametrize("arr, want", [
    (np.full((2, 2), 0.5, np.float32), 128),
    (np.full((2, 2), 65535, np.uint16), 255),
    (np.ones((2, 2), bool), 255),
    (np.full((2, 2), 300, np.int32), 255),
    (np.full((2, 2, 1), 7, np.uint8), 7),
])
def test_arrays_are_normalised(arr, want):
    out = array_to_uint8(arr)
    assert out.dtype == np.uint8 and out.shape == (2, 2) and int(out[0, 0]) == want


def test_bgra_array_drops_alpha_and_bad_shapes_fail():
    assert read_image(np.zeros((3, 3, 4), np.uint8)).shape == (3, 3, 3)
    with pytest.raises(BadInputError, match="unsupported array shape"):
        read_image(np.zeros((3, 3, 2), np.uint8))
    with pytest.raises(BadInputError, match="empty"):
        read_image(np.zeros((0, 3), np.uint8))
