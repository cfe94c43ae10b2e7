"""Batch prediction benchmark: the local engine vs Ray with 1 and 2 workers, in one run (JSON).

    PYTHONPATH=src .venv/bin/python benchmarks/batch.py [--photos data/jaffe_dev]
        [--video-frames 100 300] [--copies 2] [--workers 1 2] [--chunk-frames 50]
        [--rounds 2] [-o benchmarks/results/batch.json]

Images/s on the photos and video frames/s on an MP4 made here from them (640x480, a face
moving across the frame, its expression changing every 25 frames), each job through
``ekspresi.distributed.predict`` into a fresh Parquet folder. Ray runs on a local Ray started
once with ``--cpus`` cores (its start-up is reported apart).

Every configuration runs a small and a large job of each kind (the photos once and
``--copies`` times; the video at both ``--video-frames`` lengths):

* ``per_s``: items / wall time of the large job, what a user sees (for Ray including the
  start of its actors, one Recognizer each, which a job pays once);
* ``marginal_per_s``: (large - small items) / (large - small wall time), pooled over the
  rounds: the throughput once running, with every fixed cost taken out;
* ``fixed_s``: what is left of the small job's time after its items at the marginal rate
  (Ray: starting the actors; local: loading the model).

The configurations run in interleaved rounds (local, Ray 1, Ray 2, local, ...) so that load
from other processes hits them alike. The Ray rows are compared with the local engine's
(equal = same rows, boxes, labels and bit-identical probabilities).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from machine import cpu_model

ROOT = Path(__file__).resolve().parent.parent


def make_video(photos: list[Path], path: Path, frames: int, fps: float = 25.0) -> None:
    w, h, side = 640, 480, 220
    faces = [cv2.resize(cv2.imread(str(p), cv2.IMREAD_COLOR), (side, side),
                        interpolation=cv2.INTER_AREA) for p in photos[:24]]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not vw.isOpened():
        raise SystemExit(f"cannot write {path}")
    for i in range(frames):
        frame = np.full((h, w, 3), 110, np.uint8)
        x = 40 + int((w - side - 80) * (0.5 + 0.5 * np.sin(i / 40)))
        frame[130:130 + side, x:x + side] = faces[(i // 25) % len(faces)]
        vw.write(frame)
    vw.release()


def sorted_rows(out: Path):
    import pyarrow.parquet as pq

    return pq.read_table(out).to_pandas().sort_values(["source", "frame", "face"]) \
        .reset_index(drop=True)


def timed(predict, sources: list[str], out: Path, **kw) -> dict:
    t0 = time.perf_counter()
    job = predict(sources, out, progress=False, **kw)
    wall = time.perf_counter() - t0
    return {"wall_s": round(wall, 3), "items": job.items,
            "faces": sum(r["faces"] for r in job.summary)}


def figures(small: list[dict], large: list[dict]) -> dict:
    d_items = sum(b["items"] - a["items"] for a, b in zip(small, large))
    d_wall = sum(b["wall_s"] - a["wall_s"] for a, b in zip(small, large))
    marginal = d_items / d_wall if d_wall > 0 else None
    best = min(large, key=lambda r: r["wall_s"])
    fixed = [a["wall_s"] - a["items"] / marginal for a in small] if marginal else []
    return {"items_small": small[0]["items"], "items_large": best["items"],
            "faces_large": best["faces"],
            "per_s": round(best["items"] / best["wall_s"], 2),
            "marginal_per_s": round(marginal, 2) if marginal else None,
            "fixed_s": round(sum(fixed) / len(fixed), 2) if fixed else None,
            "wall_s_small": [a["wall_s"] for a in small],
            "wall_s_large": [b["wall_s"] for b in large]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", default=str(ROOT / "data" / "jaffe_dev"))
    ap.add_argument("--copies", type=int, default=2, help="photo copies in the large job")
    ap.add_argument("--video-frames", type=int, nargs=2, default=[100, 300])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--chunk-frames", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--note", default="", help="free text stored in the JSON (e.g. load)")
    ap.add_argument("-o", "--out", default=str(ROOT / "benchmarks" / "results" / "batch.json"))
    args = ap.parse_args()

    import ray

    from ekspresi.distributed import predict
    from ekspresi.infer.sources import IMAGE_EXTENSIONS

    photos = sorted(p.resolve() for p in Path(args.photos).iterdir()
                    if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not photos:
        raise SystemExit(f"{args.photos}: no photos (unzip jaffe_dev into data/, see README)")
    tmp = Path(tempfile.mkdtemp(prefix="ekspresi-batch-bench-"))
    copies = []
    for i in range(args.copies):                 # the same photos under other names
        (tmp / f"photos{i}").mkdir()
        for p in photos:
            (tmp / f"photos{i}" / p.name).symlink_to(p)
        copies.append(str(tmp / f"photos{i}"))
    videos = []
    for n in args.video_frames:
        videos.append(str(tmp / f"clip{n}.mp4"))
        make_video(photos, Path(videos[-1]), n)
    jobs = {"images": (copies[:1], copies), "video": ([videos[0]], [videos[1]])}
    load_before = os.getloadavg()
    configs = {"local": {}} | {f"ray_{n}_worker{'s' * (n > 1)}":
                               {"engine": "ray", "workers": n, "chunk_frames": args.chunk_frames}
                               for n in args.workers}
    done: dict[str, dict[str, dict[str, list[dict]]]] = {
        c: {k: {"small": [], "large": []} for k in jobs} for c in configs}
    outs: dict[str, dict[str, Path]] = {}
    t0 = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="ERROR")
    ray_start = time.perf_counter() - t0
    for i in range(args.rounds):
        for name, kw in configs.items():
            outs[name] = {}
            for kind, (small, large) in jobs.items():
                for size, sources in (("small", small), ("large", large)):
                    out = tmp / f"{name}-{kind}-{size}-{i}.parquet"
                    done[name][kind][size].append(timed(predict, sources, out, **kw))
                outs[name][kind] = out
            print(f"round {i + 1} {name}", json.dumps(
                {k: [v["small"][-1]["wall_s"], v["large"][-1]["wall_s"]]
                 for k, v in done[name].items()}), file=sys.stderr, flush=True)
    ray.shutdown()
    runs = {name: {kind: figures(v["small"], v["large"]) for kind, v in by.items()}
            for name, by in done.items()}

    local = {k: sorted_rows(v) for k, v in outs["local"].items()}
    equal = {name: all(sorted_rows(o[k]).equals(local[k]) for k in o)
             for name, o in outs.items() if name != "local"}
    result = {
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "cpu": cpu_model(), "ray": ray.__version__, "opencv": cv2.__version__,
                    "shared": "yes: other engineers' jobs ran on the same cores; load "
                              f"average {load_before[0]:.1f} before, "
                              f"{os.getloadavg()[0]:.1f} after",
                    "note": args.note},
        "inputs": {"photos": f"{args.photos} ({len(photos)} files; large job: "
                             f"{args.copies} copies)",
                   "video": f"{args.video_frames} frames, 640x480 mp4v at 25 fps, made from "
                            "the photos",
                   "chunk_frames": args.chunk_frames, "ray_cpus": args.cpus,
                   "rounds": args.rounds},
        "ray_start_s": round(ray_start, 3),
        "runs": runs,
        "ray_rows_equal_local": equal,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
