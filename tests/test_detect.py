"""Face detectors on a real photo, a many-face collage, a face-free image and tiny faces;
their options; eye alignment; thread safety."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from infer_support import collage, in_face_region, no_face_image, photo_bgr

from ekspresi.detect import (
    BACKENDS,
    DEFAULT_DETECTOR,
    align_crop,
    align_face,
    available_detectors,
    eye_angle,
    get_detector,
)
from ekspresi.detect.types import Detection
from ekspresi.errors import ConfigError
from ekspresi.preprocess import prepare_face

ALL = sorted(BACKENDS)


@pytest.fixture(scope="module")
def detectors():
    return {name: get_detector(name) for name in ALL}


@pytest.mark.parametrize("name", ALL)
def test_finds_the_one_face_in_a_real_photo(detectors, name):
    faces = detectors[name].detect(photo_bgr())
    assert len(faces) == 1
    assert in_face_region(faces[0].box)
    assert 60 <= faces[0].box[2] <= 140          # the face is ~95 px wide


@pytest.mark.parametrize("name", ALL)
def test_face_free_image_gives_empty_list(detectors, name):
    assert detectors[name].detect(no_face_image()) == []


@pytest.mark.parametrize("name", ["blazeface", "blazeface-fast", "blazeface-full"])
def test_many_faces_are_all_found(detectors, name):
    faces = detectors[name].detect(collage(4))
    assert len(faces) == 4
    tiles = {(int((f.box[0] + f.box[2] / 2) // 200), int((f.box[1] + f.box[3] / 2) // 200))
             for f in faces}
    assert tiles == {(0, 0), (0, 1), (1, 0), (1, 1)}   # one face in each 200-px tile


def test_haar_finds_every_face_of_the_collage(detectors):
    faces = detectors["haar"].detect(collage(4))
    tiles = {(int((f.box[0] + f.box[2] / 2) // 200), int((f.box[1] + f.box[3] / 2) // 200))
             for f in faces if f.box[2] > 60}
    assert tiles == {(0, 0), (0, 1), (1, 0), (1, 1)}


@pytest.mark.parametrize("sensitivity", ["normal", "high"])
@pytest.mark.parametrize("size,x,y", [(50, 300, 300), (57, 300, 300), (50, 500, 200)])
def test_default_detector_finds_a_face_cut_at_hairline_and_chin(size, x, y, sensitivity):
    """Issue 22: a clearly visible face cropped at the hairline and chin and pasted into a
    photo (here onto the fixture photo's dark suit) was missed at `normal` sensitivity:
    boxed larger than its pixels, it looked too small at the second look. A closer look
    finds it; the photo's own face is still the only other box."""
    photo = photo_bgr()
    crop = photo[78:160, 183:263]                     # hairline to chin, cheek to cheek
    scene = cv2.resize(photo, (640, 640))[80:560].copy()
    face = cv2.resize(crop, (size, round(size * 82 / 80)), interpolation=cv2.INTER_AREA)
    scene[y:y + face.shape[0], x:x + face.shape[1]] = face
    found = get_detector(DEFAULT_DETECTOR, sensitivity=sensitivity).detect(scene)
    centres = [(d.box[0] + d.box[2] / 2, d.box[1] + d.box[3] / 2) for d in found]
    assert any(abs(cx - x - size / 2) < size / 2 and abs(cy - y - size / 2) < size / 2
               for cx, cy in centres), [d.box for d in found]
    assert len(found) == 2


def test_high_sensitivity_closer_look_adds_no_box_on_a_face_free_photo():
    """Issue 22: at `high` (threshold 0.6) the closer look kept a texture of scikit-image's
    face-free motorcycle photo that the second look had half accepted (0.55) and that
    scored 0.94 up close: a false box at (522, 136), one of the 5 it added in
    benchmarks/detection.py. The photo ships with scikit-image (not committed here: its
    licence is not stated)."""
    skimage = pytest.importorskip("skimage")
    from pathlib import Path

    path = Path(skimage.__file__).parent / "data" / "motorcycle_left.png"
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        pytest.skip("scikit-image without its sample photos")
    assert get_detector(DEFAULT_DETECTOR, sensitivity="high").detect(image) == []


def test_results_are_sorted_and_return_all_is_a_superset(detectors):
    det = detectors["blazeface"]
    image = collage(4)
    kept = det.detect(image)
    every = det.detect(image, return_all=True)
    assert [d.score for d in every] == sorted((d.score for d in every), reverse=True)
    assert set(kept) <= set(every)
    assert len(every) > len(kept)   # weaker candidates are exposed for the step-by-step page


def test_tiny_face_is_below_min_face_size():
    small = cv2.resize(photo_bgr(), (96, 96), interpolation=cv2.INTER_AREA)  # face ~18 px
    for name in ALL:
        assert get_detector(name).detect(small) == []
    # the default minimum (20 px) is what rejects it: lowering it finds the face
    found = get_detector("blazeface", min_face_size=8).detect(small)
    assert len(found) == 1 and found[0].box[2] < 20
    assert in_face_region([v * 512 / 96 for v in found[0].box])


def test_options_filter_candidates():
    image = collage(4)
    assert len(get_detector("blazeface", max_faces=2).detect(image)) == 2
    assert get_detector("blazeface", score_threshold=0.999).detect(image) == []
    assert get_detector("blazeface", min_face_size=200).detect(image) == []
    big = get_detector("haar", min_face_size=80).detect(image)
    assert big and all(min(d.box[2:]) >= 80 for d in big)


def test_detector_names_and_errors():
    assert get_detector("default").name == DEFAULT_DETECTOR
    assert set(available_detectors()) == {"default", *BACKENDS}
    with pytest.raises(ConfigError, match="unknown face detector 'yolo'"):
        get_detector("yolo")
    with pytest.raises(ValueError):
        get_detector("blazeface", min_face_size=0)


def test_gray_and_color_inputs_agree(detectors):
    bgr = photo_bgr()
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    for name in ALL:
        a, b = detectors[name].detect(bgr), detectors[name].detect(gray)
        assert len(a) == len(b) == 1
        assert max(abs(u - v) for u, v in zip(a[0].box, b[0].box)) <= 10


def test_blazeface_landmarks_are_eyes_nose_mouth(detectors):
    face = detectors["blazeface"].detect(photo_bgr())[0]
    (rx, ry), (lx, ly), (nx, ny), (mx, my) = face.landmarks[:4]
    x, y, w, h = face.box
    assert x < rx < nx < lx < x + w           # person's right eye on the image's left
    assert max(ry, ly) < ny < my < y + h      # eyes above nose above mouth
    assert abs(eye_angle(face)) < 6           # her eyes are nearly level


def test_tilted_head_gives_the_tilt_angle(detectors):
    image = photo_bgr()
    base = eye_angle(detectors["blazeface"].detect(image)[0])
    centre = (225, 120)
    rot = cv2.warpAffine(image, cv2.getRotationMatrix2D(centre, 15, 1.0), image.shape[1::-1],
                         borderMode=cv2.BORDER_REPLICATE)
    tilted = eye_angle(detectors["blazeface"].detect(rot)[0])
    assert tilted == pytest.approx(base - 15, abs=4)


def _two_dots(angle_deg: float) -> tuple[np.ndarray, Detection]:
    img = np.full((200, 200), 100, np.uint8)
    c, r = (100, 100), 30
    dx, dy = r * math.cos(math.radians(angle_deg)), r * math.sin(math.radians(angle_deg))
    right, left = (c[0] - dx, c[1] - dy), (c[0] + dx, c[1] + dy)
    for px, py in (right, left):
        cv2.circle(img, (int(round(px)), int(round(py))), 5, 255, -1)
    return img, Detection(box=(40, 40, 120, 120), score=1.0, landmarks=(right, left))


def test_alignment_levels_the_eyes():
    img, det = _two_dots(20.0)
    assert eye_angle(det) == pytest.approx(20.0, abs=0.5)
    crop, angle = align_crop(img, det)
    assert angle == pytest.approx(20.0, abs=0.5)
    ys, xs = np.nonzero(crop > 200)
    left_half, right_half = ys[xs < crop.shape[1] / 2], ys[xs >= crop.shape[1] / 2]
    assert abs(left_half.mean() - right_half.mean()) < 1.5
    # the unaligned crop has them 2 * 30 * sin(20 deg) ~ 20 px apart vertically
    out = align_face(img, det, 48)
    assert out.shape == (48, 48) and out.dtype == np.uint8


def test_level_face_alignment_is_exactly_the_training_preprocessing():
    img, det = _two_dots(0.3)
    assert np.array_equal(align_face(img, det, 48, margin=0.1),
                          prepare_face(img, 48, det.box, margin=0.1))
    no_marks = Detection(box=(10, 20, 90, 80), score=1.0)
    assert np.array_equal(align_face(img, no_marks, 48, 0.2),
                          prepare_face(img, 48, (10, 20, 90, 80), 0.2))


def test_a_detector_can_be_shared_between_threads(detectors):
    det = detectors["blazeface"]
    images = [photo_bgr(), collage(4), no_face_image(), collage(2)] * 4
    serial = [det.detect(im) for im in images]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(det.detect, images))
    assert parallel == serial
