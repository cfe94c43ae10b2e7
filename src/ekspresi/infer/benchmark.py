"""Inference speed, memory and footprint, measured (never asserted in tests).

Everything is timed with ``time.perf_counter`` over repeated calls after a warm-up, and the
median is reported (robust to the other processes sharing this 2-core CPU). The detector
comparison runs every backend over real uncropped photos (e.g. JAFFE, one face per photo),
both as they are and pasted into a 640x480 frame, and counts how often exactly the one face
is found.
"""

from __future__ import annotations

import importlib.metadata as md
import platform
import re
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ekspresi.detect import BACKENDS, DEFAULT_DETECTOR, get_detector
from ekspresi.imaging import read_image

FRAME = (480, 640)  # H, W
BASE_DISTRIBUTION = "ekspresi"


def _median_ms(fn: Callable[[], Any], repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def frame_with_face(photo: np.ndarray | None, face_frac: float = 0.5) -> np.ndarray:
    """A 640x480 BGR frame with ``photo`` scaled to ``face_frac`` of the frame height and
    centred on a mid-grey background (a stand-in for a webcam frame)."""
    H, W = FRAME
    frame = np.full((H, W, 3), 110, np.uint8)
    if photo is None:
        return frame
    bgr = cv2.cvtColor(photo, cv2.COLOR_GRAY2BGR) if photo.ndim == 2 else photo
    h = int(H * face_frac)
    w = int(bgr.shape[1] * h / bgr.shape[0])
    small = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
    y, x = (H - h) // 2, (W - w) // 2
    frame[y:y + h, x:x + w] = small
    return frame


def classifier_speed(model, repeat: int) -> dict[str, Any]:
    from ekspresi.infer.classifier import Classifier

    out: dict[str, Any] = {}
    for threads in (1, 2):
        clf = Classifier(model, threads=threads)
        size = clf.input_spec.size
        rng = np.random.default_rng(0)
        for batch in (1, 32):
            faces = rng.integers(0, 256, (batch, size, size), dtype=np.uint8)
            ms = _median_ms(lambda: clf.predict_proba(faces), repeat)
            out[f"batch{batch}_threads{threads}_ms_per_face"] = round(ms / batch, 4)
    out["model"] = clf.bundle.name
    out["input_size"] = clf.input_spec.size
    out["onnx_bytes"] = clf.bundle.metadata["onnx"]["bytes"]
    return out


def detector_speed(frame: np.ndarray, repeat: int) -> dict[str, float]:
    return {name: round(_median_ms(lambda d=get_detector(name): d.detect(frame), repeat), 3)
            for name in BACKENDS}


def _images(folder: str | Path) -> list[np.ndarray]:
    return [read_image(p) for p in sorted(Path(folder).iterdir())
            if p.suffix.lower() in (".tiff", ".tif", ".png", ".jpg", ".jpeg")]


def detector_comparison(photo_dir: str | Path, repeat: int = 20,
                        negatives_dir: str | Path | None = None) -> dict[str, Any]:
    """Per backend: detections on each real one-face photo as is, inside a 640x480 frame at
    half and at a quarter of the frame height (small faces), and false positives on
    face-free images (as they are and resized to 640x480)."""
    photos = _images(photo_dir)
    negatives = _images(negatives_dir) if negatives_dir else []
    negatives += [cv2.resize(n, (FRAME[1], FRAME[0])) for n in negatives]
    result: dict[str, Any] = {"photos": len(photos), "source": str(photo_dir),
                              "negative_images": len(negatives), "backends": {}}
    for name in BACKENDS:
        det = get_detector(name)
        row: dict[str, Any] = {}
        if negatives:
            row["false_positives_on_negatives"] = sum(len(det.detect(n)) for n in negatives)
        for label, prep in (("native", lambda im: im),
                            ("in_640x480", lambda im: frame_with_face(im, 0.5)),
                            ("small_in_640x480", lambda im: frame_with_face(im, 0.25))):
            counts = [len(det.detect(prep(im))) for im in photos]
            row[f"{label}_found"] = sum(c >= 1 for c in counts)
            row[f"{label}_exactly_one"] = sum(c == 1 for c in counts)
            row[f"{label}_extra_boxes"] = sum(max(0, c - 1) for c in counts)
        frame = frame_with_face(photos[0], 0.5) if photos else frame_with_face(None)
        row["ms_per_640x480_frame"] = round(_median_ms(lambda: det.detect(frame), repeat), 3)
        result["backends"][name] = row
    return result


def _requirement_names(dist: md.Distribution) -> list[str]:
    names = []
    for req in dist.requires or []:
        if "extra ==" in req or "extra==" in req:
            continue
        if ";" in req:
            marker = req.split(";", 1)[1]
            try:
                from packaging.markers import Marker

                if not Marker(marker).evaluate():
                    continue
            except Exception:  # noqa: BLE001 - packaging missing or odd marker: keep it
                pass
        names.append(re.split(r"[\s\[<>=!~;(]", req.strip(), maxsplit=1)[0])
    return names


def install_footprint() -> dict[str, Any]:
    """Bytes on disk of the base install (ekspresi's non-extra dependencies, transitively),
    from each distribution's RECORD; torch is not among them."""
    seen: dict[str, int] = {}
    todo = [BASE_DISTRIBUTION]
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            seen[key] = 0
            continue
        total = 0
        for f in dist.files or []:
            try:
                total += Path(dist.locate_file(f)).stat().st_size
            except OSError:
                pass
        seen[key] = total
        todo.extend(_requirement_names(dist))
    return {"total_mb": round(sum(seen.values()) / 2**20, 1),
            "includes_torch": "torch" in seen,
            "largest_mb": {k: round(v / 2**20, 1) for k, v in
                           sorted(seen.items(), key=lambda kv: -kv[1])[:8]},
            "distributions": len(seen)}


#: CPU features that change int8/float speed (VNNI/AMX: fast int8 dot products).
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def machine() -> dict[str, Any]:
    """What the timings were measured on: int8 speed differs several-fold between CPUs."""
    import os

    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line:
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {"python": platform.python_version(), "cpu_count": os.cpu_count(), "cpu": model,
            "cpu_flags": [f for f in CPU_FLAGS if f in flags],
            "onnxruntime": md.version("onnxruntime"), "opencv": cv2.__version__}


def run_benchmark(model=None, *, image: str | Path | None = None,
                  photo_dir: str | Path | None = None, negatives_dir: str | Path | None = None,
                  compare: list[str | Path] | None = None, repeat: int = 50,
                  detector: str = "default") -> dict[str, Any]:
    from ekspresi.infer.recognizer import Recognizer

    photo = read_image(image) if image else None
    frame = frame_with_face(photo, 1.0)
    res: dict[str, Any] = {
        "machine": machine(),
        "frame": {"size": f"{FRAME[1]}x{FRAME[0]}", "face_photo": str(image) if image else None},
        "classifier": classifier_speed(model, repeat),
    }
    if compare:
        # timed in the same process and minutes as the main model: ratios are comparable
        res["classifier_compare"] = {str(m): classifier_speed(m, repeat) for m in compare}
    res["detector_ms_per_frame"] = detector_speed(frame, max(10, repeat // 2))
    rec = Recognizer(model, detector)
    faces = rec.analyze(frame)
    ms = _median_ms(lambda: rec.analyze(frame), max(10, repeat // 2))
    res["end_to_end"] = {"detector": DEFAULT_DETECTOR if detector == "default" else detector,
                         "faces_in_frame": len(faces),
                         "ms_per_frame": round(ms, 3), "frames_per_second": round(1000 / ms, 1)}
    if photo_dir:
        res["detector_comparison"] = detector_comparison(photo_dir, max(10, repeat // 2),
                                                         negatives_dir)
    res["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    res["install_footprint_without_torch"] = install_footprint()
    return res
