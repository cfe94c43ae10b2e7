"""Faces at every scale (issue 14): suppression across tiles, tiles covering the image, a
face on a tile border found once, group photos in large images, bad inputs answered in
bounded work, reading-order numbering, and the detector/sensitivity options being the
same in the CLI, the HTTP API and ``Recognizer``."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from infer_support import HEAD, photo_bgr

from ekspresi.cli import main
from ekspresi.detect import get_detector, reading_order
from ekspresi.detect.retinaface import LARGEST_INPUT_FACE
from ekspresi.detect.scales import MAX_WORK_PIXELS, nms, tile_origins, tiles

# -- building blocks ---------------------------------------------------------------------


def head(side: int, mirror: bool = False) -> np.ndarray:
    """The test photo's head (face ~ 0.5 x side) resized to side x side."""
    x0, y0, x1, y1 = HEAD
    img = cv2.resize(photo_bgr()[y0:y1, x0:x1], (side, side), interpolation=cv2.INTER_AREA)
    return img[:, ::-1].copy() if mirror else img


def scene(width: int, height: int, places: list[tuple[int, int, int]]) -> np.ndarray:
    """A grey-textured width x height image with a head of ``side`` px centred on each
    (cx, cy, side)."""
    rng = np.random.default_rng(0)
    img = (rng.normal(110, 6, (height, width, 3))).clip(0, 255).astype(np.uint8)
    for i, (cx, cy, side) in enumerate(places):
        x, y = cx - side // 2, cy - side // 2
        img[y:y + side, x:x + side] = head(side, mirror=bool(i % 2))
    return img


def centres(dets) -> list[tuple[float, float]]:
    return [(d.box[0] + d.box[2] / 2, d.box[1] + d.box[3] / 2) for d in dets]


def each_found_once(dets, places, tol: float = 0.35) -> bool:
    """Exactly one detection near each placed head, none elsewhere."""
    if len(dets) != len(places):
        return False
    for cx, cy, side in places:
        near = [c for c in centres(dets)
                if abs(c[0] - cx) < tol * side and abs(c[1] - cy) < tol * side]
        if len(near) != 1:
            return False
    return True


def test_nms_keeps_the_best_and_drops_overlaps_and_cut_faces():
    boxes = np.array([[0, 0, 100, 100],      # best
                      [30, 0, 130, 100],     # same face, shifted (IoU 0.54)
                      [0, 0, 40, 100],       # the same face cut by a tile edge: inside it
                      [300, 300, 380, 380]])  # another face
    # the shifted copy overlaps the best by IoU > 0.4, the cut one lies inside it
    assert list(nms(boxes, np.array([0.95, 0.8, 0.9, 0.7]), iou=0.4)) == [0, 3]
    # with a stricter IoU only containment removes the cut box
    assert list(nms(boxes, np.array([0.95, 0.8, 0.9, 0.7]), iou=0.95)) == [0, 1, 3]
    assert len(nms(np.zeros((0, 4)), np.zeros(0))) == 0


def test_tiles_cover_the_image_with_the_overlap_asked_for():
    for length, tile, overlap in [(1000, 300, 100), (300, 300, 50), (301, 300, 50),
                                  (5000, 777, 250)]:
        starts = tile_origins(length, tile, overlap)
        assert starts[0] == 0 and starts[-1] + tile == max(length, tile) or length <= tile
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))
    grid = tiles(1000, 500, 300, 100)
    covered = np.zeros((500, 1000), bool)
    for x, y, w, h in grid:
        covered[y:y + h, x:x + w] = True
    assert covered.all()


def test_a_face_on_a_tile_border_is_found_once():
    det = get_detector("blazeface-tiled")
    width, height = 1400, 500
    tile, overlap = det.levels(width, height)[0]
    starts = tile_origins(width, tile, overlap)
    border = starts[1]                        # where the second tile starts
    places = [(border, 250, 150), (border + tile // 2 + 200, 250, 150)]
    dets = det.detect(scene(width, height, places))
    assert each_found_once(dets, places), [d.box for d in dets]


# -- the default detector on issue 14's photos -------------------------------------------

@pytest.fixture(scope="module")
def default():
    return get_detector("default")


def test_four_people_in_a_full_hd_photo(default):
    places = [(300 + 440 * i, 500, 300) for i in range(4)]       # faces ~150 px
    assert each_found_once(default.detect(scene(1920, 1080, places)), places)


def test_a_strip_of_eight_faces(default):
    places = [(110 + 222 * i, 120, 220) for i in range(8)]       # faces ~110 px
    assert each_found_once(default.detect(scene(1780, 240, places)), places)


def test_small_and_whole_frame_faces(default):
    small = [(200 + 160 * i, 300 + 400 * (i % 2), 96) for i in range(8)]   # faces ~48 px
    assert each_found_once(default.detect(scene(1600, 900, small)), small)
    whole = [(600, 450, 900)]                                    # one face ~450 px
    assert each_found_once(default.detect(scene(1200, 900, whole)), whole)


def test_min_face_px_states_the_real_limit(default):
    assert default.min_face_px(640, 480) <= 40
    assert default.min_face_px(1920, 1080) <= 40
    assert default.min_face_px(6000, 4000) > default.min_face_px(1920, 1080)
    blaze = get_detector("blazeface")
    assert blaze.min_face_px(4000, 3000) > 5 * blaze.min_face_px(640, 480) // 2
    # a larger min_face_size searches less (and says so)
    assert get_detector("default", min_face_size=100).min_face_px(1920, 1080) == 100


# -- bad input: an answer, bounded work, no error ------------------------------------------

@pytest.mark.parametrize("shape", [(8, 8, 3), (31, 20), (1, 1, 3), (40, 9000, 3),
                                   (9000, 40, 3), (3, 5000)])
def test_tiny_and_panorama_images_give_an_answer(default, shape):
    img = np.full(shape, 128, np.uint8)
    assert default.detect(img) == []
    assert default.min_face_px(shape[1], shape[0]) >= 1


def test_work_is_bounded_for_huge_images(default):
    for w, h in [(6000, 4000), (30000, 300), (12000, 12000)]:
        passes = default.passes(w, h)
        assert passes, (w, h)            # an empty plan would pass the bound vacuously
        for p in passes:
            assert w * h * p.scale ** 2 <= MAX_WORK_PIXELS * 1.01
        # the coarsest pass still sees the whole image: a face as large as its short side
        assert passes[-1].scale * min(w, h) <= LARGEST_INPUT_FACE


def test_sixteen_bit_and_many_faces(default):
    places = [(40 + 80 * (i % 25), 40 + 80 * (i // 25), 76) for i in range(200)]
    img = scene(2000, 640, places)
    img16 = img.astype(np.uint16) * 257
    found = default.detect(img16)
    assert len(found) >= 180          # 200 faces of ~38 px, none on top of another
    assert len(get_detector("default", max_faces=50).detect(img)) == 50


# -- reading order -------------------------------------------------------------------------

def test_reading_order_rows_then_left_to_right():
    boxes = [(300, 12, 50, 50), (10, 30, 50, 50), (150, 200, 50, 50), (10, 190, 50, 50),
             (160, 0, 50, 50)]
    assert reading_order(boxes) == [1, 4, 0, 3, 2]
    # a slanted row (heads lower to the right) stays one row; a small face between rows
    # joins the row it overlaps most
    slant = [(i * 100, 100 + i * 12, 60, 60) for i in range(6)]
    assert reading_order(slant[::-1]) == [5, 4, 3, 2, 1, 0]
    assert reading_order([]) == []


def test_recognizer_numbers_faces_in_reading_order(conv_bundle):
    from ekspresi.infer import Recognizer

    places = [(1300, 220, 260), (300, 260, 260), (800, 700, 260), (300, 700, 260)]
    faces = Recognizer(conv_bundle, threads=1).analyze(scene(1600, 900, places))
    assert [f.number for f in faces] == [1, 2, 3, 4]
    xs = [(f.box[0] + f.box[2] / 2, f.box[1] + f.box[3] / 2) for f in faces]
    assert xs[0][0] < 500 and xs[1][0] > 1000          # top row: left, then right
    assert xs[2][0] < 500 and 600 < xs[3][0] < 1000     # bottom row
    assert [f.to_dict()["number"] for f in faces] == [1, 2, 3, 4]


# -- options: the same in the CLI, the API and Recognizer ----------------------------------

def test_cli_numbers_and_options(capsys, conv_bundle, tmp_path):
    path = tmp_path / "group.png"
    places = [(900, 200, 240), (300, 230, 240), (600, 600, 240)]
    cv2.imwrite(str(path), scene(1200, 800, places))
    assert main(["predict", str(path), "--model", str(conv_bundle), "--format", "json",
                 "--detector", "retinaface", "--sensitivity", "high"]) == 0
    out = json.loads(capsys.readouterr().out)[0]
    assert [f["number"] for f in out["faces"]] == [1, 2, 3]
    assert out["faces"][0]["box"][0] < 500 and out["min_face_px"] >= 1
    assert main(["predict", str(path), "--model", str(conv_bundle)]) == 0
    table = capsys.readouterr().out.splitlines()
    # the file name is on the first face's row only
    assert [table[2].split()[1], table[3].split()[0], table[4].split()[0]] == ["1", "2", "3"]
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((1080, 1920, 3), 120, np.uint8))
    assert main(["predict", str(blank), "--model", str(conv_bundle)]) == 0
    text = capsys.readouterr().out
    assert "no face found" in text and "1920x1080" in text
    assert main(["predict", str(path), "--sensitivity", "extreme"]) == 2
    assert "invalid choice: 'extreme'" in capsys.readouterr().err


def test_recognizer_detector_and_sensitivity_per_call(conv_bundle):
    from ekspresi.infer import Recognizer

    rec = Recognizer(conv_bundle, "blazeface", sensitivity="low", threads=1)
    assert rec.detector.name == "blazeface" and rec.detector.sensitivity == "low"
    assert rec.detector_for() is rec.detector
    high = rec.detector_for("retinaface", "high")
    assert high.sensitivity == "high" and high is rec.detector_for("retinaface", "high")
    assert rec.min_face_px(1920, 1080, detector="retinaface") < rec.min_face_px(1920, 1080)
    img = scene(1920, 1080, [(400, 500, 300), (1400, 500, 300)])
    assert len(rec.analyze(img, detector="retinaface")) == 2
    with pytest.raises(ValueError):
        rec.detector_for(sensitivity="extreme")


def test_api_takes_the_same_options(web_engine, tiny_bundle):
    from fastapi.testclient import TestClient

    from ekspresi.web.app import create_app
    from ekspresi.web.settings import WebSettings

    client = TestClient(create_app(WebSettings(model=tiny_bundle, threads=1),
                                   engine=web_engine))
    ok, buf = cv2.imencode(".png", scene(1920, 1080, [(1400, 500, 300), (400, 520, 300)]))
    files = {"file": ("g.png", buf.tobytes(), "image/png")}
    out = client.post("/api/v1/analyze", files=files,
                      params={"detector": "retinaface", "sensitivity": "high"}).json()
    assert [f["number"] for f in out["faces"]] == [1, 2]
    assert out["faces"][0]["box"][0] < out["faces"][1]["box"][0]
    assert out["min_face_px"] == web_engine.recognizer.min_face_px(
        1920, 1080, detector="retinaface", sensitivity="high")
    low = client.post("/api/v1/analyze", files=files,
                      params={"detector": "blazeface", "sensitivity": "low"}).json()
    assert low["min_face_px"] == get_detector("blazeface").min_face_px(1920, 1080)
    bad = client.post("/api/v1/analyze", files=files, params={"detector": "yolo"})
    assert bad.status_code == 422 and "unknown face detector" in bad.text
    assert client.post("/api/v1/analyze", files=files,
                       params={"sensitivity": "extreme"}).status_code == 422


def test_cmyk_and_16_bit_files_are_decoded_and_searched(default):
    import io

    from PIL import Image

    from ekspresi.imaging import read_image

    places = [(300, 200, 240)]
    rgb = cv2.cvtColor(scene(600, 400, places), cv2.COLOR_BGR2RGB)
    buf = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(buf, "JPEG", quality=90)
    ok, png16 = cv2.imencode(".png", scene(600, 400, places).astype(np.uint16) * 257)
    for data in (buf.getvalue(), png16.tobytes()):
        assert each_found_once(default.detect(read_image(data)), places)
