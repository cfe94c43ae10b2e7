"""Real-time video: detect faces on some frames, carry them between detections by optical
flow, classify every frame, smooth each person's probabilities over time.

Detecting faces is what costs (about 90 ms for a 1280x720 frame with the default detector on
one core); following a face that was found costs about a millisecond. :class:`FaceFollower`
therefore runs the detector every ``detect_every`` analysed frames (``None``: about every
:data:`DETECT_INTERVAL_S` seconds of video) and, in between, moves each face's box and
landmarks with the median motion of corner points inside it (pyramidal Lucas-Kanade flow,
checked forwards and backwards, on a copy of the frame at most :data:`FLOW_SIDE` pixels
wide). A face whose points cannot be followed, or that leaves the picture, triggers an early
detection on the next frame. Every frame's faces are cropped and classified.

Track ids come from :class:`~ekspresi.infer.video.IouTracker` (``for_video``): a detection
joins the track whose current (flow-carried) box it overlaps, or, after a gap, the nearby
unseen track of similar size, so one person keeps one id across a missed detection or a
second out of the picture.

``smoothing`` (seconds; :data:`SMOOTHING_S` by default for videos and cameras, 0 = off)
replaces each face's probabilities by an exponential moving average over its track with that
time constant: a change of expression shows at 63 % after ``smoothing`` seconds, and one
odd frame no longer flips the label. Such faces say ``"smoothed": true``, and with
``raw_scores=True`` (the web app's real-time stream) also carry the frame's own
probabilities as ``raw_scores``. The time between frames is taken from their timestamps
(``step``'s ``t``), so frames dropped or arriving unevenly do not change the time constant.
"""

from __future__ import annotations

import dataclasses
import math
import time

import cv2
import numpy as np

from ekspresi.detect import reading_order
from ekspresi.detect.types import Detection
from ekspresi.infer.results import ImageResult
from ekspresi.infer.types import Face
from ekspresi.infer.video import IouTracker, iou

#: Detect about this often (seconds of video) when ``detect_every`` is not given.
DETECT_INTERVAL_S = 0.4
#: Time constant (seconds) of the per-track probability smoothing for videos and cameras.
SMOOTHING_S = 0.5
#: Optical flow runs on the frame scaled down to at most this many pixels on its long side.
FLOW_SIDE = 640
#: A carried face whose detection is missed this many times in a row is dropped.
MAX_MISSES = 1

_LK = {"winSize": (15, 15), "maxLevel": 2,
       "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)}


def auto_detect_every(fps: float, every: int = 1) -> int:
    """Analysed frames between detections for a ``fps`` video analysed every ``every``-th
    frame: about :data:`DETECT_INTERVAL_S` seconds (``fps`` 0 = unknown counts as 25)."""
    return max(1, int(round((fps or 25.0) / every * DETECT_INTERVAL_S)))


@dataclasses.dataclass
class _Live:
    """A face being followed: where it is now and what the last detection said."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]
    misses: int = 0


def _to_gray(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def _visible(box, width: int, height: int) -> float:
    x, y, w, h = box
    iw = max(0.0, min(x + w, width) - max(x, 0.0))
    ih = max(0.0, min(y + h, height) - max(y, 0.0))
    return iw * ih / max(w * h, 1e-6)


class FaceFollower:
    """``follower.step(frame, index, t)`` -> the frame's :class:`ImageResult`, faces with
    ``track_id``; see the module docstring. ``detect_every``: analysed frames between
    detections (``None``: :func:`auto_detect_every`); 1 detects on every frame (flow unused).
    ``raw_scores``: smoothed faces keep the frame's own probabilities as ``raw_scores``.
    """

    def __init__(self, recognizer, *, fps: float = 0.0, every: int = 1,
                 detect_every: int | None = None, smoothing: float | None = None,
                 raw_scores: bool = False):
        if detect_every is not None and detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        self.recognizer = recognizer
        self.detector = recognizer.detector
        self.detect_every = detect_every or auto_detect_every(fps, every)
        self.smoothing = SMOOTHING_S if smoothing is None else max(0.0, float(smoothing))
        self.fps = fps or 25.0
        self.raw_scores = raw_scores
        self.tracker = IouTracker.for_video(fps, every)
        self._live: dict[int, _Live] = {}
        self._prev: np.ndarray | None = None      # previous small gray frame
        self._scale = 1.0
        self._shape: tuple[int, ...] | None = None
        self._since = 0                           # analysed frames since the last detection
        self._due = True
        self._ema: dict[int, tuple[np.ndarray, float]] = {}
        self.detections = 0                       # how many frames ran the detector

    # -- flow -------------------------------------------------------------------------------
    def _small(self, frame: np.ndarray) -> np.ndarray:
        gray = _to_gray(frame)
        h, w = gray.shape[:2]
        self._scale = min(1.0, FLOW_SIDE / max(h, w))
        if self._scale < 1.0:
            gray = cv2.resize(gray, (int(round(w * self._scale)), int(round(h * self._scale))),
                              interpolation=cv2.INTER_AREA)
        return gray

    def _carry(self, prev: np.ndarray, cur: np.ndarray, width: int, height: int) -> bool:
        """Move every live face from ``prev`` to ``cur``; False when one was lost."""
        s = self._scale
        seeds, owners = [], []
        for tid, live in self._live.items():
            x, y, w, h = (v * s for v in live.box)
            # the inner part of the box: face texture, not the background around it
            x0, y0 = int(max(0, x + 0.15 * w)), int(max(0, y + 0.15 * h))
            x1, y1 = int(min(prev.shape[1], x + 0.85 * w)), int(min(prev.shape[0], y + 0.85 * h))
            if x1 - x0 < 6 or y1 - y0 < 6:
                continue
            pts = cv2.goodFeaturesToTrack(prev[y0:y1, x0:x1], maxCorners=40,
                                          qualityLevel=0.01, minDistance=3, blockSize=5)
            if pts is None:
                continue
            pts = pts.reshape(-1, 2) + (x0, y0)
            seeds.append(pts)
            owners.extend([tid] * len(pts))
        moved: dict[int, tuple] = {}
        if seeds:
            p0 = np.concatenate(seeds).astype(np.float32).reshape(-1, 1, 2)
            p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev, cur, p0, None, **_LK)
            back, st2, _ = cv2.calcOpticalFlowPyrLK(cur, prev, p1, None, **_LK)
            good = ((st1.ravel() == 1) & (st2.ravel() == 1)
                    & (np.linalg.norm((back - p0).reshape(-1, 2), axis=1) < 1.0))
            a, b, who = p0.reshape(-1, 2), p1.reshape(-1, 2), np.asarray(owners)
            for tid in set(owners):
                sel = good & (who == tid)
                if sel.sum() < 4:
                    continue
                pa, pb = a[sel], b[sel]
                dx, dy = np.median(pb - pa, axis=0) / s
                i, j = np.triu_indices(len(pa), 1)
                da = np.linalg.norm(pa[i] - pa[j], axis=1)
                db = np.linalg.norm(pb[i] - pb[j], axis=1)
                keep = da > 2.0
                scale = float(np.clip(np.median(db[keep] / da[keep]), 0.9, 1.1)) \
                    if keep.any() else 1.0
                moved[tid] = (float(dx), float(dy), scale)
        lost = False
        for tid in list(self._live):
            live = self._live[tid]
            if tid not in moved:
                lost = True       # keep the box where it was until the next detection
                continue
            dx, dy, k = moved[tid]
            x, y, w, h = live.box
            cx, cy = x + w / 2, y + h / 2
            ncx, ncy = cx + dx, cy + dy
            nw, nh = w * k, h * k
            live.box = (ncx - nw / 2, ncy - nh / 2, nw, nh)
            live.landmarks = tuple((ncx + k * (px - cx), ncy + k * (py - cy))
                                   for px, py in live.landmarks)
            if _visible(live.box, width, height) < 0.6:
                del self._live[tid]   # walked out of the picture
                lost = True
        return not lost

    # -- detection --------------------------------------------------------------------------
    def _detect(self, frame: np.ndarray) -> None:
        self.detections += 1
        found = self.detector.detect(frame)
        ids = self.tracker.assign([d.box for d in found])
        survivors: dict[int, _Live] = {}
        for tid, det in zip(ids, found):
            survivors[tid] = _Live(tuple(map(float, det.box)), float(det.score),
                                   tuple(det.landmarks))
        for tid, live in self._live.items():
            if tid in survivors:
                continue
            # a missed detection: keep following it for a while unless a detection took
            # its place
            live.misses += 1
            if self.detect_every > 1 and live.misses <= MAX_MISSES and not any(
                    iou(tuple(live.box), d.box) > 0.2 for d in found):
                survivors[tid] = live
                self.tracker.keep(tid, tuple(int(round(v)) for v in live.box))
        self._live = survivors

    # -- one frame ----------------------------------------------------------------------------
    def step(self, frame: np.ndarray, index: int = 0, t: float | None = None,
             name: str | None = None) -> ImageResult:
        """The faces of ``frame`` (the ``index``-th of the source, taken at ``t`` seconds;
        ``None``: ``index / fps``), each with its track id and, when smoothing, the track's
        moving average of its probabilities over ``t``."""
        clock = time.perf_counter()
        if t is None:
            t = index / self.fps
        height, width = frame.shape[:2]
        small = self._small(frame) if self.detect_every > 1 else None
        if self._shape is not None and frame.shape[:2] != self._shape:
            self._prev, self._due, self._live = None, True, {}   # another picture: start over
        self._shape = frame.shape[:2]
        detect = self._due or self._since + 1 >= self.detect_every or small is None \
            or self._prev is None
        if detect:
            self._detect(frame)
            self._since, self._due = 0, False
        else:
            ok = self._carry(self._prev, small, width, height)
            self.tracker.carry({tid: tuple(int(round(v)) for v in live.box)
                                for tid, live in self._live.items()})
            self._since += 1
            # a lost face asks for an early detection, at most one between two planned ones
            if not ok and self._since >= max(2, self.detect_every // 3):
                self._due = True
        self._prev = small
        after_detect = time.perf_counter()
        ids = list(self._live)
        dets = []
        for tid in ids:
            live = self._live[tid]
            d = Detection.clipped(live.box[0], live.box[1], live.box[0] + live.box[2],
                                  live.box[1] + live.box[3], width, height, live.score,
                                  live.landmarks)
            dets.append(d)
        pairs = [(tid, d) for tid, d in zip(ids, dets) if d is not None]
        order = reading_order([d.box for _, d in pairs])
        pairs = [pairs[i] for i in order]
        batch, _, angles = self.recognizer.crop_faces(frame, [d for _, d in pairs],
                                                      self.detector.margin)
        proba = self.recognizer.classifier.predict_proba(batch)
        faces = self.recognizer.make_faces([d for _, d in pairs], proba, angles)
        out: list[Face] = []
        for (tid, _), face in zip(pairs, faces):
            extra = dict(face.extra)
            if not detect:
                extra["tracked"] = True
            scores = face.scores
            if self.smoothing > 0:
                if self.raw_scores:
                    extra["raw_scores"] = {k: round(float(v), 6) for k, v in scores.items()}
                scores = self._smooth(tid, scores, t)
                extra["smoothed"] = True
            out.append(dataclasses.replace(face, track_id=tid, scores=scores, extra=extra))
        for tid in list(self._ema):
            if tid not in self._live and not self.tracker.knows(tid):
                del self._ema[tid]
        done = time.perf_counter()
        timings = {("detect" if detect else "track"): round((after_detect - clock) * 1000, 3),
                   "classify": round((done - after_detect) * 1000, 3)}
        return ImageResult(out, width=int(width), height=int(height), file=name,
                           min_face_px=self.detector.min_face_px(width, height),
                           timings_ms=timings, frame=index, time=t)

    def _smooth(self, tid: int, scores: dict[str, float], t: float) -> dict[str, float]:
        p = np.array(list(scores.values()), dtype=np.float64)
        if tid in self._ema:
            prev, t0 = self._ema[tid]
            alpha = 1.0 - math.exp(-max(t - t0, 1e-3) / self.smoothing)
            p = prev + alpha * (p - prev)
        self._ema[tid] = (p, t)
        return {k: float(v) for k, v in zip(scores, p)}
