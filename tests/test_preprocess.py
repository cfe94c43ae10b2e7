"""The one preprocessing path shared by training and inference."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ekspresi.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    InputSpec,
    crop,
    prepare_face,
    preprocess,
    resize,
    to_gray,
    to_model_input,
)


def test_to_gray_uses_bt601_on_bgr():
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 2] = 255  # pure red in BGR
    assert int(to_gray(bgr)[0, 0]) == 76  # 0.299 * 255
    assert to_gray(np.zeros((2, 2, 4), np.uint8)).shape == (2, 2)
    g = np.arange(4, dtype=np.uint8).reshape(2, 2)
    assert to_gray(g) is g
    with pytest.raises(ValueError):
        to_gray(np.zeros((2, 2, 2), np.uint8))


def test_crop_with_margin_and_edge_padding():
    img = np.arange(100, dtype=np.uint8).reshape(10, 10)
    np.testing.assert_array_equal(crop(img, (2, 3, 4, 5)), img[3:8, 2:6])
    grown = crop(img, (4, 4, 2, 2), margin=0.5)
    np.testing.assert_array_equal(grown, img[3:7, 3:7])
    outside = crop(img, (-2, -2, 4, 4))
    assert outside.shape == (4, 4)
    assert outside[0, 0] == img[0, 0] and outside[3, 3] == img[1, 1]
    with pytest.raises(ValueError):
        crop(img, (0, 0, 0, 3))


def test_resize_area_when_shrinking_linear_when_enlarging():
    rng = np.random.default_rng(0)
    big = rng.integers(0, 255, (96, 96), dtype=np.uint8)
    np.testing.assert_array_equal(resize(big, 48),
                                  cv2.resize(big, (48, 48), interpolation=cv2.INTER_AREA))
    small = big[:24, :24]
    np.testing.assert_array_equal(resize(small, 48),
                                  cv2.resize(small, (48, 48), interpolation=cv2.INTER_LINEAR))
    assert resize(big, 96) is big


def test_prepare_face_and_model_input():
    bgr = np.full((100, 80, 3), 200, np.uint8)
    face = prepare_face(bgr, 48, box=(10, 10, 50, 60), margin=0.1)
    assert face.shape == (48, 48) and face.dtype == np.uint8 and face.flags.c_contiguous
    x = to_model_input([face, face])
    assert x.shape == (2, 1, 48, 48) and x.dtype == np.float32 and x.max() == 200.0
    assert to_model_input(face).shape == (1, 1, 48, 48)


def test_preprocess_batch_matches_prepare_face():
    rng = np.random.default_rng(1)
    imgs = [rng.integers(0, 255, (60, 70, 3), dtype=np.uint8) for _ in range(3)]
    spec = InputSpec(size=32)
    boxes = [None, (5, 5, 30, 30), None]
    out = preprocess(imgs, spec, boxes)
    assert out.shape == (3, 1, 32, 32)
    np.testing.assert_array_equal(out[1, 0], prepare_face(imgs[1], 32, boxes[1]))
    assert preprocess([], spec).shape == (0, 1, 32, 32)
    with pytest.raises(ValueError):
        preprocess(imgs, spec, boxes[:2])


def test_input_spec_round_trip():
    spec = InputSpec(size=224, channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    assert InputSpec.from_dict(spec.to_dict()) == spec
    assert InputSpec.from_dict({"size": 48}) == InputSpec()


def test_single_channel_images_are_their_own_gray():
    """(H, W, 1) arrays (what some decoders give for gray files) are the gray image."""
    g = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    np.testing.assert_array_equal(to_gray(g), g[:, :, 0])
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 2], bgra[..., 3] = 255, 7      # pure red, the alpha channel is ignored
    assert int(to_gray(bgra)[0, 0]) == 76


def test_crop_box_sides_must_be_positive():
    img = np.arange(100, dtype=np.uint8).reshape(10, 10)
    for box in [(0, 0, 0, 3), (0, 0, 3, 0), (0, 0, -1, 3), (0, 0, 3, -1)]:
        with pytest.raises(ValueError, match="empty crop box"):
            crop(img, box)
    np.testing.assert_array_equal(crop(img, (4, 2, 1, 1)), img[2:3, 4:5])   # one pixel
    # a margin grows each side by its own fraction of width and height
    np.testing.assert_array_equal(crop(img, (2, 3, 4, 2), margin=0.5), img[2:6, 0:8])


@pytest.mark.parametrize("shape, interp", [
    ((96, 24), cv2.INTER_AREA),     # one side shrinks: area averaging
    ((24, 96), cv2.INTER_AREA),
    ((48, 24), cv2.INTER_LINEAR),   # nothing shrinks: bilinear
    ((24, 48), cv2.INTER_LINEAR),
])
def test_resize_of_non_square_faces(shape, interp):
    rng = np.random.default_rng(2)
    img = rng.integers(0, 255, shape, dtype=np.uint8)
    np.testing.assert_array_equal(resize(img, 48), cv2.resize(img, (48, 48),
                                                              interpolation=interp))


@pytest.mark.parametrize("box", [(-2, 3, 4, 4), (3, -2, 4, 4), (8, 3, 4, 4), (3, 8, 4, 4),
                                 (-3, -3, 16, 16)])
def test_crop_off_any_one_edge_replicates_that_edge(box):
    """A box that leaves the image on one side only (left, top, right, bottom) or on all
    of them is filled by edge replication, and the face stays where the box says."""
    img = np.arange(100, dtype=np.uint8).reshape(10, 10)
    x, y, w, h = box
    padded = np.pad(img, 10, mode="edge")
    np.testing.assert_array_equal(crop(img, box), padded[y + 10:y + 10 + h, x + 10:x + 10 + w])
