"""Video benchmark: frames/s analysed and annotated, the annotate/analyse ratio, decoding
speed (PyAV vs OpenCV), box accuracy of optical-flow tracking vs detecting every frame,
track count vs the truth, label changes with and without smoothing, output size vs input,
peak memory (JSON).

    .venv/bin/python benchmarks/video.py [--clip CLIP] [--seconds 10] [--repeat 2]
        [--concurrent-training] [-o benchmarks/results/video.json]

Without ``--clip`` a 1280x720 25 fps H.264 clip with three faces is made
(``benchmarks/video_clip.py``: the third face is gone for a second and comes back, so the
truth is three tracks). Each mode runs ``--repeat`` times and the fastest run counts; CPU
seconds per frame are recorded beside wall-clock rates, since a busy machine (say, a
training run on the same cores: ``--concurrent-training``) slows wall-clock rates most.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from machine import machine_info  # noqa: E402

from ekspresi.infer.video import iou  # noqa: E402


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _best(fn, repeat: int):
    runs = [_timed(fn) for _ in range(repeat)]
    return min(runs, key=lambda r: r[1])


def _match(ref: list, got: list) -> list[float]:
    """Greedy IoU matching of one frame's boxes: the IoU of each reference box (0 = none)."""
    pairs = sorted(((iou(r, g), i, j) for i, r in enumerate(ref) for j, g in enumerate(got)),
                   reverse=True)
    best = [0.0] * len(ref)
    used_r, used_g = set(), set()
    for v, i, j in pairs:
        if v > 0 and i not in used_r and j not in used_g:
            best[i] = v
            used_r.add(i)
            used_g.add(j)
    return best


def _label_changes(video) -> float:
    """Label changes per track per second of video (flicker)."""
    last: dict = {}
    changes = 0
    for row in video.frames:
        for f in row.faces:
            if f.track_id in last and last[f.track_id] != f.label:
                changes += 1
            last[f.track_id] = f.label
    seconds = video.frames_read / (video.fps or 25.0)
    return round(changes / max(len(last), 1) / seconds, 3)


def _decode_fps(path: Path) -> dict[str, float]:
    import av
    import cv2

    out = {}
    t = time.perf_counter()
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    out["opencv"] = round(n / (time.perf_counter() - t), 1)
    t = time.perf_counter()
    n = 0
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for frame in c.decode(s):
            frame.to_ndarray(format="bgr24")
            n += 1
    out["pyav"] = round(n / (time.perf_counter() - t), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", type=Path, help="a video to use instead of the synthetic one")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--model", default=None)
    ap.add_argument("--concurrent-training", action="store_true",
                    help="record that a training run shared the CPU while this ran")
    ap.add_argument("-o", "--out", type=Path, default=HERE / "results" / "video.json")
    args = ap.parse_args(argv)

    import av

    from ekspresi.infer.recognizer import Recognizer
    from ekspresi.infer.stream import analyze_video
    from ekspresi.infer.tracking import SMOOTHING_S, auto_detect_every

    tmp = Path(tempfile.mkdtemp(prefix="ekspresi-bench-video-"))
    truth_tracks = None
    if args.clip:
        clip = args.clip
    else:
        import video_clip

        clip = tmp / "clip.mp4"
        truth = video_clip.write(clip, seconds=args.seconds)
        truth_tracks = len(truth[0])
    load_before = os.getloadavg()
    rec = Recognizer(args.model)
    rec.analyze(_first_frame(clip))   # warm-up

    analysed, a_wall, a_cpu = _best(lambda: analyze_video(rec, clip), args.repeat)
    out_mp4 = tmp / "annotated.mp4"
    annotated, n_wall, n_cpu = _best(lambda: analyze_video(rec, clip, annotate=out_mp4),
                                     args.repeat)
    per_frame, p_wall, p_cpu = _timed(lambda: analyze_video(rec, clip, detect_every=1,
                                                            smoothing=0))
    raw, _, _ = _timed(lambda: analyze_video(rec, clip, smoothing=0))
    n = analysed.frames_read
    ious, missed, extra = [], 0, 0
    for ref, got in zip(per_frame.frames, analysed.frames):
        best = _match([f.box for f in ref.faces], [f.box for f in got.faces])
        ious += [v for v in best if v > 0]
        missed += sum(1 for v in best if v == 0)
        extra += max(0, len(got.faces) - (len(best) - best.count(0.0)))
    with av.open(str(out_mp4)) as c:
        s = c.streams.video[0]
        written = {"codec": s.codec_context.name, "pix_fmt": s.codec_context.pix_fmt,
                   "frames": sum(1 for _ in c.decode(s))}
    result = {
        "clip": str(args.clip) if args.clip else
        f"synthetic {analysed.width}x{analysed.height} {analysed.fps:g} fps H.264, "
        f"{n} frames, 3 faces (one gone 1 s)",
        "frames": n,
        "faces_used": None if args.clip else (
            "the committed photo + 2 JAFFE faces (data/jaffe_dev)" if video_clip.JAFFE.is_dir()
            else "the committed photo, 3 times (no data/jaffe_dev)"),
        "detect_every": auto_detect_every(analysed.fps),
        "smoothing_s": SMOOTHING_S,
        "analyse_fps": round(n / a_wall, 1),
        "annotate_fps": round(n / n_wall, 1),
        "annotate_over_analyse": round(n_wall / a_wall, 3),
        "cpu_ms_per_frame": {"analyse": round(1000 * a_cpu / n, 2),
                             "annotate": round(1000 * n_cpu / n, 2),
                             "detect_every_frame": round(1000 * p_cpu / n, 2)},
        # what one otherwise idle core would do: frames per CPU second (the annotating run's
        # CPU includes drawing and encoding, which overlap with analysing on a second core)
        "frames_per_cpu_second": {"analyse": round(n / a_cpu, 1), "annotate": round(n / n_cpu, 1),
                                  "detect_every_frame": round(n / p_cpu, 1)},
        "detect_every_frame_fps": round(n / p_wall, 1),
        "speedup_vs_detect_every_frame": round(p_wall / a_wall, 2),
        "box_iou_vs_detect_every_frame": {
            "mean": round(sum(ious) / max(len(ious), 1), 4),
            "min": round(min(ious), 4) if ious else None,
            "faces_missed": missed, "extra_faces": extra,
            "faces_in_reference": missed + len(ious)},
        "tracks": len(analysed.tracks),
        "tracks_detect_every_frame": len(per_frame.tracks),
        "tracks_truth": truth_tracks,
        "label_changes_per_track_second": {"smoothed": _label_changes(analysed),
                                           "raw": _label_changes(raw),
                                           "detect_every_frame_raw": _label_changes(per_frame)},
        "decode_fps": _decode_fps(clip),
        "input_bytes": clip.stat().st_size,
        "output_bytes": out_mp4.stat().st_size,
        "output_over_input": round(out_mp4.stat().st_size / clip.stat().st_size, 3),
        "output": written,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "concurrent_training": bool(args.concurrent_training),
        "note": ("a training run shared the two cores: wall-clock rates are pessimistic, "
                 "see frames_per_cpu_second") if args.concurrent_training else "",
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "machine": machine_info(),
        "pyav": av.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


def _first_frame(path: Path):
    import av

    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="bgr24")


if __name__ == "__main__":
    sys.exit(main())
