"""Face-detection benchmark: recall per face size and image size, false boxes, speed (JSON).

    PYTHONPATH=src .venv/bin/python benchmarks/detection.py [--data data] \\
        [--detectors all] [-o benchmarks/results/detection.json]

Scenes are composed, with a fixed seed, from face photos pasted at many scales onto real
face-free pictures (scikit-image's sample images: ``pip install scikit-image``, needed by
this benchmark only):

* face sources: the 67 uncropped JAFFE dev photos (``DATA/jaffe_dev``), CK+ 48 px crops
  (``DATA/ckplus48``, padded with their replicated border as context, only up to 2x their
  size) and the committed public-domain test photo; ground-truth boxes of the JAFFE
  photos are the mean of the RetinaFace and BlazeFace boxes on the native 256x256 photo
  (the two detectors agree there), of CK+ crops the central 80 % of the crop;
* scenes at 320x240, 640x480, 1280x720, 1920x1080, 4000x3000 and 1780x240 / 1600x600 "group
  strips" like those of issue 14, each with 1..100 non-overlapping faces of 24 px up to
  the image's short side;
* face-free images: every sample picture as it is and resized/cropped to several sizes;
* "tight" faces (issue 22): faces cut at the hairline and the chin, no context, pasted with
  a hard edge at 40-90 px into 640x480 and 1280x720 scenes (their own random stream, so
  the other scenes are those of earlier runs); reported as the face source ``tight``.

A detection matches a true face when its centre lies inside the true box and the sides
differ by less than 2x; each true face matches at most one detection; every unmatched
detection is a false box. Speed: median ms per call on a scene at 640x480, 1920x1080 and
4000x3000 (after a warm-up). The machine is noted in the JSON (it may be shared).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from machine import cpu_model

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from ekspresi.detect import BACKENDS, DEFAULT_DETECTOR, get_detector  # noqa: E402

ASTRONAUT = ROOT / "tests" / "fixtures" / "photos" / "astronaut.jpg"
ASTRONAUT_FACE = (170, 60, 280, 180)
#: scikit-image samples with no human face (camera.png and astronaut.png show people)
BACKGROUNDS = ["brick", "cell", "chelsea", "clock_motion", "coffee", "coins", "color",
               "grass", "gravel", "horse", "hubble_deep_field", "ihc", "logo",
               "microaneurysms", "moon", "motorcycle_left", "page", "retina", "rocket",
               "text"]
#: context pasted around each face, as a fraction of its side on each side
CONTEXT = 0.25
SIZE_BINS = [(24, 32), (32, 40), (40, 64), (64, 128), (128, 256), (256, 512), (512, 10**6)]
#: (width, height, scenes, faces per scene)
SCENES = [(320, 240, 6, 2), (640, 480, 10, 4), (1280, 720, 8, 10), (1920, 1080, 8, 16),
          (4000, 3000, 5, 30), (1780, 240, 3, 8), (1600, 600, 3, 5), (1920, 1080, 1, 100)]


@dataclass
class Source:
    image: np.ndarray            # BGR
    box: tuple[float, float, float, float]   # x0, y0, x1, y1 of the face
    kind: str
    max_face: float = 1e9        # largest face size (px) it may be scaled to


def _sample_images() -> dict[str, np.ndarray]:
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    out = {}
    for name in BACKGROUNDS:
        files = sorted(folder.glob(name + ".*"))
        if files:
            im = cv2.imread(str(files[0]), cv2.IMREAD_COLOR)
            if im is not None:
                out[name] = im
    return out


def _jaffe_sources(folder: Path) -> list[Source]:
    ref_a = get_detector("retinaface", sensitivity="high")
    ref_b = get_detector("blazeface")
    out = []
    for f in sorted(folder.glob("*.tiff")):
        im = cv2.imread(str(f), cv2.IMREAD_COLOR)
        a, b = ref_a.detect(im), ref_b.detect(im)
        if not a or not b:
            continue
        boxes = [np.array([d.box[0], d.box[1], d.box[0] + d.box[2], d.box[1] + d.box[3]],
                          float) for d in (a[0], b[0])]
        out.append(Source(im, tuple((boxes[0] + boxes[1]) / 2), "jaffe"))
    return out


def _ck_sources(folder: Path, per_class: int = 6) -> list[Source]:
    out = []
    for cls in sorted(p for p in folder.iterdir() if p.is_dir()):
        for f in sorted(cls.glob("*.png"))[:: max(1, len(list(cls.glob("*.png"))) //
                                                 per_class)][:per_class]:
            im = cv2.imread(str(f), cv2.IMREAD_COLOR)
            h, w = im.shape[:2]
            # padded with context: the crop's border replicated outwards, so the paste's
            # feathered edge falls outside the face
            p = int(0.3 * h)
            im = cv2.copyMakeBorder(im, p, p, p, p, cv2.BORDER_REPLICATE)
            out.append(Source(im, (p + 0.1 * w, p + 0.1 * h, p + 0.9 * w, p + 0.9 * h),
                              "ckplus", 0.8 * 2 * h))
    return out


def _paste(scene: np.ndarray, src: Source, face: float, cx: float, cy: float
           ) -> tuple[float, float, float, float] | None:
    """Paste ``src`` scaled so that its face box side is ``face`` px with the face centre at
    (cx, cy), feathered into the scene. Returns the face box in the scene."""
    x0, y0, x1, y1 = src.box
    side = math.sqrt((x1 - x0) * (y1 - y0))
    # the face with CONTEXT x its side around it (hair, neck, background of the photo)
    c = CONTEXT * side
    h, w = src.image.shape[:2]
    cx0, cy0 = max(0, int(x0 - c)), max(0, int(y0 - c))
    cx1, cy1 = min(w, int(math.ceil(x1 + c))), min(h, int(math.ceil(y1 + c)))
    image = src.image[cy0:cy1, cx0:cx1]
    x0, y0, x1, y1 = x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0
    k = face / side
    h, w = image.shape[:2]
    nw, nh = max(2, round(w * k)), max(2, round(h * k))
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC
    img = cv2.resize(image, (nw, nh), interpolation=interp)
    fx, fy = (x0 + x1) / 2 * k, (y0 + y1) / 2 * k
    ox, oy = round(cx - fx), round(cy - fy)
    H, W = scene.shape[:2]
    sx0, sy0, sx1, sy1 = max(ox, 0), max(oy, 0), min(ox + nw, W), min(oy + nh, H)
    if sx1 <= sx0 or sy1 <= sy0:
        return None
    # feathered rectangle: photo edges fade into the scene
    mask = np.zeros((nh, nw), np.float32)
    b = max(1, int(min(nw, nh) * 0.08))
    mask[b:nh - b, b:nw - b] = 1
    mask = cv2.GaussianBlur(mask, (0, 0), b / 2 + 0.1)[..., None]
    part = img[sy0 - oy:sy1 - oy, sx0 - ox:sx1 - ox].astype(np.float32)
    m = mask[sy0 - oy:sy1 - oy, sx0 - ox:sx1 - ox]
    roi = scene[sy0:sy1, sx0:sx1].astype(np.float32)
    scene[sy0:sy1, sx0:sx1] = (part * m + roi * (1 - m)).astype(np.uint8)
    return (ox + x0 * k, oy + y0 * k, ox + x1 * k, oy + y1 * k)


def _background(bgs: list[np.ndarray], rng, w: int, h: int) -> np.ndarray:
    bg = bgs[rng.integers(len(bgs))]
    k = max(w / bg.shape[1], h / bg.shape[0])
    big = cv2.resize(bg, (max(w, round(bg.shape[1] * k)), max(h, round(bg.shape[0] * k))),
                     interpolation=cv2.INTER_CUBIC if k > 1 else cv2.INTER_AREA)
    y = rng.integers(big.shape[0] - h + 1)
    x = rng.integers(big.shape[1] - w + 1)
    return np.ascontiguousarray(big[y:y + h, x:x + w])


def make_scene(sources: list[Source], bgs: list[np.ndarray], rng, w: int, h: int,
               n_faces: int) -> tuple[np.ndarray, list[tuple[float, float, float, float]]]:
    """A scene with up to ``n_faces`` faces whose sizes are log-uniform between 24 px and
    ~0.6 x the short side, placed without overlapping (the pasted photos may overlap)."""
    scene = _background(bgs, rng, w, h)
    boxes: list[tuple[float, float, float, float]] = []
    biggest = max(24.0, 0.6 * min(w, h) if n_faces <= 2 else min(w, h) / math.sqrt(n_faces))
    for _ in range(n_faces):
        for _attempt in range(60):
            src = sources[rng.integers(len(sources))]
            face = float(math.exp(rng.uniform(math.log(24), math.log(max(25.0, min(
                biggest, src.max_face))))))
            cx, cy = rng.uniform(face / 2, w - face / 2), rng.uniform(face / 2, h - face / 2)
            cand = (cx - face / 2, cy - face / 2, cx + face / 2, cy + face / 2)
            if face > min(w, h) or any(_iou_gap(cand, b) for b in boxes):
                continue
            got = _paste(scene, src, face, cx, cy)
            if got:
                boxes.append((*got, src.kind))
            break
    return scene, boxes


def tight_scenes(sources: list[Source], bgs, seed: int) -> list:
    """Faces cropped at the hairline and chin (the true box, its top moved down to where
    hair starts to be cut off, no context) pasted with a hard edge, 40-90 px: what a
    collage or a screenshot of a video call looks like (issue 22: such a 57 px face was
    missed by the default detector). Own random stream: the other scenes do not change."""
    rng = np.random.default_rng(seed + 1000)
    faces = [s for s in sources if s.kind in ("jaffe", "fixture")]
    out = []
    for w, h, n_scenes, n_faces in [(640, 480, 10, 3), (1280, 720, 6, 6)]:
        for _ in range(n_scenes):
            scene = _background(bgs, rng, w, h)
            boxes: list = []
            for _k in range(n_faces):
                src = faces[rng.integers(len(faces))]
                x0, y0, x1, y1 = src.box
                crop = src.image[int(y0 + 0.06 * (y1 - y0)):int(y1), int(x0):int(x1)]
                side = float(math.exp(rng.uniform(math.log(40), math.log(90))))
                ch, cw = crop.shape[:2]
                tw, th = side, side * ch / cw
                for _attempt in range(60):
                    cx, cy = rng.uniform(tw / 2, w - tw / 2), rng.uniform(th / 2, h - th / 2)
                    cand = (cx - tw / 2, cy - th / 2, cx + tw / 2, cy + th / 2)
                    if not any(_iou_gap(cand, b) for b in boxes):
                        break
                else:
                    continue
                img = cv2.resize(crop, (round(tw), round(th)), interpolation=cv2.INTER_AREA)
                ox, oy = round(cand[0]), round(cand[1])
                scene[oy:oy + img.shape[0], ox:ox + img.shape[1]] = \
                    img[:h - oy, :w - ox]
                boxes.append((ox, oy, ox + img.shape[1], oy + img.shape[0], "tight"))
            out.append((f"{w}x{h}", scene, boxes))
    return out


def _iou_gap(a, b, gap: float = 0.55) -> bool:
    """True when boxes a and b come closer than ``gap`` x the larger side."""
    g = gap * max(a[2] - a[0], b[2] - b[0])
    return not (a[2] + g < b[0] or b[2] + g < a[0] or a[3] + g < b[1] or b[3] + g < a[1])


def group_strip(sources: list[Source], bgs, rng, w: int, h: int, n: int, face: float):
    """People side by side in one row (issue 14's strips and group photos)."""
    scene = _background(bgs, rng, w, h)
    boxes = []
    gap = w / n
    for i in range(n):
        src = sources[rng.integers(len(sources))]
        cx = gap * (i + 0.5) + rng.uniform(-0.1, 0.1) * gap
        cy = h / 2 + rng.uniform(-0.1, 0.1) * h
        got = _paste(scene, src, face * rng.uniform(0.9, 1.1), cx, cy)
        if got:
            boxes.append((*got, src.kind))
    return scene, boxes


def match(dets, truth) -> tuple[list[bool], int]:
    """Which true faces were found, and how many detections are false boxes."""
    found = [False] * len(truth)
    false = 0
    for d in sorted(dets, key=lambda d: -d.score):
        x, y, w, h = d.box
        cx, cy, side = x + w / 2, y + h / 2, math.sqrt(max(w * h, 1))
        best = None
        for i, (x0, y0, x1, y1, *_) in enumerate(truth):
            tside = math.sqrt((x1 - x0) * (y1 - y0))
            if found[i] or not (x0 <= cx <= x1 and y0 <= cy <= y1):
                continue
            if 0.5 < side / tside < 2.0:
                best = i
                break
        if best is None:
            false += 1
        else:
            found[best] = True
    return found, false


def _bin(size: float) -> str:
    for lo, hi in SIZE_BINS:
        if lo <= size < hi:
            return f"{lo}-{hi}" if hi < 10**6 else f">={lo}"
    return "<24"


def build(data: Path, seed: int):
    rng = np.random.default_rng(seed)
    samples = _sample_images()
    bgs = list(samples.values())
    sources = [Source(cv2.imread(str(ASTRONAUT)), ASTRONAUT_FACE, "fixture")]
    if (data / "jaffe_dev").is_dir():
        sources += _jaffe_sources(data / "jaffe_dev")
    if (data / "ckplus48").is_dir():
        sources += _ck_sources(data / "ckplus48")
    scenes = []
    for w, h, n, faces in SCENES:
        for _ in range(n):
            img, truth = make_scene(sources, bgs, rng, w, h, faces)
            scenes.append((f"{w}x{h}", img, truth))
    # issue 14's three photos, rebuilt: 4 faces of ~150 px in 1920x1080, 8 of ~120 px in a
    # 1780x240 strip, 5 in 1600x600
    big = [s for s in sources if s.kind != "ckplus"]
    for w, h, n, face in [(1920, 1080, 4, 150), (1780, 240, 8, 120), (1600, 600, 5, 200)]:
        for _ in range(2):
            img, truth = group_strip(big, bgs, rng, w, h, n, face)
            scenes.append((f"{w}x{h}", img, truth))
    scenes += tight_scenes(sources, bgs, seed)
    negatives = []
    for name, im in samples.items():
        negatives.append((name, im))
        for w, h in [(320, 240), (640, 480), (1280, 720), (1920, 1080), (2400, 300)]:
            negatives.append((f"{name}@{w}x{h}", _background([im], rng, w, h)))
    for i in range(6):
        negatives.append((f"4000x3000#{i}", _background(bgs, rng, 4000, 3000)))
    return sources, scenes, negatives


def evaluate(name: str, scenes, negatives, timing, repeat: int) -> dict:
    """One detector (``name`` or ``name@sensitivity``) over every scene and face-free
    image, then timed."""
    backend, _, level = name.partition("@")
    det = get_detector(backend, sensitivity=level or "normal")
    per_bin: dict[str, list[int]] = {}
    per_image: dict[str, list[int]] = {}
    per_kind: dict[str, list[int]] = {}
    false_scene = 0
    t0 = time.perf_counter()
    for size, img, truth in scenes:
        found, false = match(det.detect(img), truth)
        false_scene += false
        for ok, (x0, y0, x1, y1, kind) in zip(found, truth):
            b = _bin(math.sqrt((x1 - x0) * (y1 - y0)))
            per_kind.setdefault(kind, [0, 0])[0] += ok and b not in ("<24", "24-32", "32-40")
            per_kind[kind][1] += b not in ("<24", "24-32", "32-40")
            per_bin.setdefault(b, [0, 0])[0] += ok
            per_bin[b][1] += 1
            if b not in ("<24", "24-32", "32-40"):
                per_image.setdefault(size, [0, 0])[0] += ok
                per_image[size][1] += 1
    neg_boxes = [len(det.detect(img)) for _, img in negatives]
    wall = time.perf_counter() - t0
    ge40 = [sum(v[i] for k, v in per_bin.items() if k not in ("<24", "24-32", "32-40"))
            for i in (0, 1)]
    speed, cpu = {}, {}
    for label, img in timing.items():
        det.detect(img)
        times, cpu_times = [], []
        for _ in range(repeat if img.shape[1] < 3000 else max(2, repeat // 3)):
            s, c = time.perf_counter(), time.process_time()
            det.detect(img)
            times.append(time.perf_counter() - s)
            cpu_times.append(time.process_time() - c)
        speed[label] = round(statistics.median(times) * 1000, 1)
        cpu[label] = round(statistics.median(cpu_times) * 1000, 1)
    return {
        "detector": name,
        "resolves_to": det.name,
        "recall_faces_ge40": round(ge40[0] / max(ge40[1], 1), 4),
        "faces_ge40": ge40[1],
        "recall_by_face_size": {k: {"found": v[0], "faces": v[1],
                                    "recall": round(v[0] / v[1], 4)}
                                for k, v in sorted(per_bin.items(),
                                                   key=lambda kv: _bin_key(kv[0]))},
        "recall_ge40_by_image_size": {k: {"found": v[0], "faces": v[1],
                                          "recall": round(v[0] / v[1], 4)}
                                      for k, v in per_image.items()},
        "recall_ge40_by_face_source": {k: {"found": v[0], "faces": v[1],
                                           "recall": round(v[0] / max(v[1], 1), 4)}
                                       for k, v in per_kind.items()},
        "false_boxes_in_scenes": false_scene,
        "false_boxes_on_face_free": int(sum(neg_boxes)),
        "face_free_images": len(negatives),
        "face_free_images_with_a_box": int(sum(1 for n in neg_boxes if n)),
        "ms_per_image": speed,
        # CPU time of the process per call (all threads): unlike wall time it does not
        # grow while other jobs hold the shared cores
        "cpu_ms_per_image": cpu,
        "min_face_px": {k: det.min_face_px(*v) for k, v in
                        {"640x480": (640, 480), "1920x1080": (1920, 1080),
                         "4000x3000": (4000, 3000), "6000x4000": (6000, 4000)}.items()},
        "wall_s": round(wall, 1),
    }


def calibrate(name: str, folder: Path, n: int = 400) -> dict:
    """Crop framing vs FER2013 (how docs/detectors.md's margins were measured): each test
    face (48x48) upscaled 4x and padded with grey; the detector's box is compared with the
    48x48 frame. ``margin`` = (48 / box side - 1) / 2 and the box centre's offset from the
    frame centre, as a fraction of the box side (positive = the box sits low), medians."""
    det = get_detector(name)
    files = sorted(folder.rglob("*.jpg")) + sorted(folder.rglob("*.png"))
    files = files[:: max(1, len(files) // n)][:n]
    margins, dx, dy, found = [], [], [], 0
    for f in files:
        gray = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        big = cv2.resize(gray, (192, 192), interpolation=cv2.INTER_CUBIC)
        img = cv2.copyMakeBorder(big, 96, 96, 96, 96, cv2.BORDER_CONSTANT, value=128)
        dets = [d for d in det.detect(img)
                if abs(d.box[0] + d.box[2] / 2 - 192) < 48 and abs(d.box[1] + d.box[3] / 2
                                                                    - 192) < 48]
        if not dets:
            continue
        found += 1
        x, y, w, h = dets[0].box
        side = math.sqrt(w * h) / 4
        margins.append((48 / side - 1) / 2)
        dx.append((x + w / 2 - 192) / 4 / side)
        dy.append((y + h / 2 - 192) / 4 / side)
    return {"detector": name, "faces": len(files), "found": found,
            "margin": round(float(np.median(margins)), 4) if margins else None,
            "centre_offset_x": round(float(np.median(dx)), 4) if dx else None,
            "centre_offset_y": round(float(np.median(dy)), 4) if dy else None}


def group_picture(path: Path, name: str = "default") -> dict:
    """docs' example: a group photo composed from the committed public-domain test photo
    (dataset photos may not be redistributed) in three rows of different sizes on a
    scikit-image sample background, every detected face boxed with its number."""
    rng = np.random.default_rng(3)
    samples = _sample_images()
    bg = samples.get("motorcycle_left", next(iter(samples.values())))
    w, h = 1600, 900
    scene = _background([bg], rng, w, h)
    src = Source(cv2.imread(str(ASTRONAUT)), ASTRONAUT_FACE, "fixture")
    truth = []
    for row, (cy, face, n) in enumerate([(150, 60, 9), (420, 110, 6), (730, 190, 4)]):
        for i in range(n):
            cx = w * (i + 0.5) / n + rng.uniform(-0.05, 0.05) * w / n
            img = src.image if (i + row) % 2 else src.image[:, ::-1].copy()
            box = src.box if (i + row) % 2 else (512 - src.box[2], src.box[1],
                                                   512 - src.box[0], src.box[3])
            tone = rng.uniform(0.75, 1.2)
            s = Source(np.clip(img.astype(np.float32) * tone, 0, 255).astype(np.uint8),
                       box, "fixture")
            got = _paste(scene, s, face * rng.uniform(0.85, 1.15), cx,
                         cy + rng.uniform(-0.1, 0.1) * face)
            if got:
                truth.append((*got, "fixture"))
    from ekspresi.detect import reading_order

    det = get_detector(name)
    dets = det.detect(scene)
    dets = [dets[i] for i in reading_order([d.box for d in dets])]
    found, false = match(dets, truth)
    out = scene.copy()
    for n, d in enumerate(dets, start=1):
        x, y, bw, bh = d.box
        cv2.rectangle(out, (x, y), (x + bw, y + bh), (0, 220, 255), 2)
        cv2.putText(out, str(n), (x, max(14, y - 5)), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(out, str(n), (x, max(14, y - 5)), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (0, 220, 255), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = cv2.resize(out, (1200, 675), interpolation=cv2.INTER_AREA)   # a small file
    cv2.imwrite(str(path), out, [cv2.IMWRITE_JPEG_QUALITY, 75])
    return {"picture": str(path), "detector": det.name, "faces": len(truth),
            "found": int(sum(found)), "false_boxes": false}


def _bin_key(label: str) -> int:
    digits = "".join(c if c.isdigit() else " " for c in label).split()
    return int(digits[0]) if digits else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(ROOT / "data"))
    p.add_argument("--detectors", default="all",
                   help="comma-separated names (NAME@low / NAME@high for a sensitivity), or "
                        "'all': every shipped backend, plus the default at low and high")
    p.add_argument("--seed", type=int, default=14)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--calibrate", metavar="N", type=int, default=0,
                   help="instead: crop framing of each detector vs N FER2013 test faces")
    p.add_argument("--picture", metavar="OUT.jpg",
                   help="instead: write docs' group picture with the default detector")
    p.add_argument("-o", "--out", default=str(ROOT / "benchmarks" / "results" /
                                                 "detection.json"))
    args = p.parse_args(argv)
    names = (list(BACKENDS) + [f"{DEFAULT_DETECTOR}@low", f"{DEFAULT_DETECTOR}@high"]
             if args.detectors == "all" else args.detectors.split(","))
    if args.picture:
        print(json.dumps(group_picture(Path(args.picture))))
        return 0
    if args.calibrate:
        for name in names:
            print(json.dumps(calibrate(name, Path(args.data) / "fer2013" / "test",
                                       args.calibrate)))
        return 0
    t0 = time.perf_counter()
    load_start = _load()
    sources, scenes, negatives = build(Path(args.data), args.seed)
    by_size = {}
    for size, img, truth in scenes:
        by_size.setdefault(size, (img, truth))
    timing = {k: by_size[k][0] for k in ("640x480", "1920x1080", "4000x3000")}
    n_faces = sum(len(t) for _, _, t in scenes)
    print(f"{len(sources)} face sources, {len(scenes)} scenes with {n_faces} faces, "
          f"{len(negatives)} face-free images ({time.perf_counter() - t0:.0f} s)",
          file=sys.stderr)
    rows = []
    for name in names:
        row = evaluate(name, scenes, negatives, timing, args.repeat)
        rows.append(row)
        print(json.dumps({k: row[k] for k in ("detector", "recall_faces_ge40",
                                               "false_boxes_in_scenes",
                                               "false_boxes_on_face_free", "ms_per_image",
                                               "wall_s")}), file=sys.stderr)
    out = {
        "command": "PYTHONPATH=src python benchmarks/detection.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "default_detector": DEFAULT_DETECTOR,
        "machine": {"cpu": _cpu(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "note": "2-core VM shared with other engineers' jobs during the run; "
                            "the load average at the start and end is recorded",
                    "load_average_start": load_start},
        "data": {"face_sources": {k: sum(1 for s in sources if s.kind == k)
                                  for k in ("jaffe", "ckplus", "fixture")}
                 | {"tight (cut at hairline and chin, from jaffe + fixture)": sum(
                     1 for _, _, t in scenes for b in t if b[4] == "tight")},
                 "scenes": len(scenes), "faces": n_faces, "face_free_images": len(negatives),
                 "seed": args.seed},
        "targets_for_default": {"recall_faces_ge40": 0.97,
                                "false_boxes_per_50_face_free": 1.0,
                                "ms_per_1920x1080": 150},
        "detectors": rows,
    }
    out["machine"]["load_average_end"] = _load()
    out["machine"]["peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(table(out))
    return 0


def _cpu() -> str:
    """The CPU model, marked "(AVX2)" when it has those instructions (the detectors'
    speed depends on them)."""
    try:
        avx2 = " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        avx2 = False
    return cpu_model() + (" (AVX2)" if avx2 else "")


def _load() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def table(out: dict) -> str:
    """The Markdown table of docs/detectors.md."""
    bins = [f"{lo}-{hi}" if hi < 10**6 else f">={lo}" for lo, hi in SIZE_BINS]
    head = (["detector", "recall >=40 px"] + [f"{b} px" for b in bins]
            + ["false boxes in scenes", "false boxes / face-free images",
               "ms 640x480", "ms 1920x1080", "ms 4000x3000",
               "CPU ms 640x480", "CPU ms 1920x1080", "CPU ms 4000x3000"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in out["detectors"]:
        rb = r["recall_by_face_size"]
        cells = [r["detector"] + (" (default)" if r["detector"] == out["default_detector"]
                                  else ""),
                 f"{r['recall_faces_ge40']:.1%}"]
        cells += [f"{rb[b]['recall']:.0%}" if b in rb else "-" for b in bins]
        cells += [str(r["false_boxes_in_scenes"]),
                  f"{r['false_boxes_on_face_free']} / {r['face_free_images']}"]
        cells += [str(r[key].get(k, "-")) for key in ("ms_per_image", "cpu_ms_per_image")
                  for k in ("640x480", "1920x1080", "4000x3000")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
