"""`ekspresi predict PATH...`: expressions in images, folders and videos.

No face is an empty result, not an error. A file that cannot be read is reported (stderr,
and in the output) and the others continue; the exit status is 1 when any input failed.
Nothing heavy is imported at module level (``ekspresi --help`` stays instant).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ekspresi.infer.sources import IMAGE_EXTENSIONS, expand_paths  # noqa: F401 (API)


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """Options shared by predict, webcam and benchmark."""
    p.add_argument("--model", metavar="BUNDLE", default=None,
                   help="model bundle directory (default: the bundled model)")
    p.add_argument("--detector", default="default",
                   help="face detector: default (retinaface), retinaface, haar, blazeface, "
                        "blazeface-fast, blazeface-full, blazeface-tiled")
    p.add_argument("--sensitivity", choices=("low", "normal", "high"), default="normal",
                   help="low: larger faces only, fewest false boxes, fastest (live video); "
                        "high: smaller and fainter faces, slower, more false boxes "
                        "(default normal)")
    p.add_argument("--min-face-size", type=int, default=None, metavar="PX",
                   help="ignore faces smaller than this (pixels; default 20). With the "
                        "multi-scale detectors (retinaface, blazeface-tiled) it is also the "
                        "smallest face searched for: larger is faster (default: set by "
                        "--sensitivity)")
    p.add_argument("--score-threshold", type=float, default=None, metavar="S",
                   help="detector score threshold (backend's scale; default: its own)")
    p.add_argument("--max-faces", type=int, default=None, metavar="N",
                   help="keep at most N faces per image (best first)")
    p.add_argument("--margin", type=float, default=None,
                   help="crop margin per side as a fraction of the face box "
                        "(default: the detector's calibrated value)")
    p.add_argument("--no-align", action="store_true", help="do not level the eyes")
    p.add_argument("--threads", type=int, default=None,
                   help="ONNX Runtime threads (default 1, or $EKSPRESI_THREADS)")


def make_recognizer(args: argparse.Namespace):
    from ekspresi.infer.recognizer import Recognizer

    return Recognizer(args.model, args.detector, threads=args.threads,
                      min_face_size=args.min_face_size, score_threshold=args.score_threshold,
                      max_faces=args.max_faces, margin=args.margin,
                      sensitivity=getattr(args, "sensitivity", "normal"),
                      align=not args.no_align)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="recognise expressions in images, folders and videos",
        description="Detect faces and classify their expressions. PATH may be an image, a "
                    "folder of images/videos or a video (every N-th frame is analysed).")
    p.add_argument("paths", nargs="+", metavar="PATH")
    add_engine_options(p)
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("-o", "--output", metavar="FILE", help="write results here (default stdout)")
    p.add_argument("--annotate", metavar="OUT",
                   help="draw boxes, labels and probability bars: a file for one input "
                        "(image, or a video: .mp4 is H.264 where this OpenCV can encode it, "
                        "else a .webm (VP8) is written beside it; .webm), else a folder")
    p.add_argument("--every", type=int, default=1, metavar="N",
                   help="videos: analyse every N-th frame (default 1)")
    p.add_argument("--timeline", metavar="OUT.csv|OUT.json",
                   help="videos: write the per-frame timeline here")
    p.add_argument("-r", "--recursive", action="store_true",
                   help="look for images and videos in sub-folders too")
    faces = p.add_mutually_exclusive_group()
    faces.add_argument("--no-face-ok", action="store_true",
                       help="an input without faces is an empty result (the default)")
    faces.add_argument("--require-face", action="store_true",
                       help="count an input without faces as a failure (exit status 1)")
    from ekspresi.distributed.cli import add_options

    add_options(p)      # --engine/--address/...; -o X.parquet goes to ekspresi.distributed
    p.set_defaults(func=run)


def _annotate_target(args: argparse.Namespace, path: Path, video: bool, single: bool
                     ) -> Path | None:
    if not args.annotate:
        return None
    out = Path(args.annotate)
    if single and out.suffix and not out.is_dir():
        return out
    if video:
        from ekspresi.infer.video import browser_video_suffix

        return out / (path.stem + ".annotated" + browser_video_suffix())
    return out / (path.stem + ".annotated.png")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ekspresi.distributed.cli import run_batch, wants_batch
    from ekspresi.errors import BadInputError, EkspresiError
    from ekspresi.infer import output
    from ekspresi.infer.results import FailedInput
    from ekspresi.infer.stream import analyze_video
    from ekspresi.infer.video import is_video, video_info

    if wants_batch(args):
        return run_batch(args)
    if args.every < 1:
        print("error: --every must be >= 1", file=sys.stderr)
        return 2
    recognizer = make_recognizer(args)
    inputs = expand_paths(args.paths, args.recursive)
    single = len(inputs) == 1
    results: list[output.Result] = []
    failed = 0
    bar = tqdm(inputs, desc="predict", unit="file", disable=None if len(inputs) > 1 else True,
               file=sys.stderr)
    for path, problem in bar:
        name = str(path)
        try:
            if problem:
                raise BadInputError(name, problem)
            target = _annotate_target(args, path, is_video(path), single)
            if is_video(path):
                with tqdm(total=video_info(path)[3] or None, desc=path.name, unit="frame",
                          leave=False, disable=None, file=sys.stderr) as fbar:
                    results.append(analyze_video(recognizer, path, every=args.every,
                                                 annotate=target, progress=fbar.update))
            else:
                results.append(recognizer.analyze(path, name=name))
                if target is not None:
                    results[-1].save(target)
            if args.require_face and not output.faces_of(results[-1]):
                failed += 1
                print(f"error: {name}: {output.no_face_text(results[-1])}", file=sys.stderr)
        except EkspresiError as exc:
            failed += 1
            # BadInputError names its file; report just the problem next to our file name
            same_file = isinstance(exc, BadInputError) and exc.path == name
            problem_text = exc.problem if same_file else str(exc)
            results.append(FailedInput(name, problem_text))
            print(f"error: {name}: {problem_text}", file=sys.stderr)
    if args.timeline:
        output.write_timeline(args.timeline, results)
    text = {"json": output.to_json, "csv": output.to_csv, "table": output.to_table}[
        args.format](results)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    if failed:
        print(f"{failed} of {len(inputs)} input(s) failed", file=sys.stderr)
    return 1 if failed else 0
