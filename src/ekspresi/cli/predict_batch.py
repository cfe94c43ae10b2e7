"""The ``ekspresi predict`` options of the batch engines and the dispatch into them.

``cli/predict.py`` adds these options and hands over when the output is Parquet or the
engine is Ray; this module imports nothing heavy (``ekspresi --help`` stays instant).
"""

from __future__ import annotations

import argparse
import sys

from ekspresi.errors import ConfigError


def add_batch_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("batch engines (-o RESULTS.parquet: one row per face, resumable)")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process; ray: a Ray cluster, one Recognizer per "
                        "worker (pip install 'ekspresi[distributed]'); needs -o X.parquet")
    g.add_argument("--address", metavar="ADDR", default=None,
                   help="Ray cluster to join (host:port, ray://host:port or auto; default: "
                        "start a local Ray with this machine's cores)")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="Ray actors, one Recognizer each (default: one per cluster CPU)")
    g.add_argument("--chunk-frames", type=int, default=None, metavar="N",
                   help="Ray: frames per video piece sent to one worker (default 300)")


def wants_batch(args: argparse.Namespace) -> bool:
    out = getattr(args, "out", None)
    return getattr(args, "engine", "local") != "local" or bool(
        out and str(out).lower().rstrip("/").endswith(".parquet"))


def run_batch(args: argparse.Namespace) -> int:
    from ekspresi.distributed.job import format_summary, predict
    from ekspresi.distributed.plan import DEFAULT_CHUNK_FRAMES

    out = args.out
    if not out or not str(out).lower().rstrip("/").endswith(".parquet"):
        raise ConfigError("--engine ray writes Parquet: add -o RESULTS.parquet")
    unsupported = [flag for flag, used in (("--annotate", args.annotate),
                                           ("--timeline", args.timeline),
                                           ("--format", args.format != "table")) if used]
    if unsupported:
        raise ConfigError(f"{', '.join(unsupported)} cannot be combined with Parquet output "
                          "(the Parquet rows hold every frame's faces)")
    if args.address and args.engine != "ray":
        raise ConfigError("--address needs --engine ray")
    try:
        job = predict(args.paths, out, engine=args.engine, address=args.address,
                      workers=args.workers, model=args.model, detector=args.detector,
                      min_face_size=args.min_face_size, sensitivity=args.sensitivity,
                      score_threshold=args.score_threshold,
                      max_faces=args.max_faces, margin=args.margin, align=not args.no_align,
                      threads=args.threads, every=args.every, recursive=args.recursive,
                      chunk_frames=args.chunk_frames or DEFAULT_CHUNK_FRAMES)
    except KeyboardInterrupt:
        print(f"interrupted: finished sources are saved in {out}; run the same command "
              "again to resume", file=sys.stderr)
        return 130
    sys.stdout.write(format_summary(job))
    failed = job.failed
    if args.require_face:
        failed += sum(1 for r in job.summary if r["status"] == "ok" and not r["faces"])
    if failed:
        print(f"{failed} of {len(job.summary)} source(s) failed", file=sys.stderr)
    return 1 if failed else 0
