"""`ekspresi predict PATH...`: expressions in images, folders and videos.

No face is an empty result, not an error. A file that cannot be read is reported (stderr,
and in the output) and the others continue; the exit status is 1 when any input failed.
Nothing heavy is imported at module level (``ekspresi --help`` stays instant).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ekspresi.cli.options import (
    add_detector,
    add_engine,
    add_format,
    add_model,
    add_output,
    make_recognizer,
    positive_int,
)
from ekspresi.cli.predict_batch import add_batch_options


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="recognise expressions in images, folders and videos",
        description="Detect faces and classify their expressions. PATH may be an image, a "
                    "folder of images/videos or a video (every N-th frame is analysed).")
    p.add_argument("paths", nargs="+", metavar="PATH")
    add_model(p)
    add_engine(p)
    add_detector(p)
    add_format(p, ("table", "json", "csv"))
    add_output(p, metavar="FILE", help="write results here (default stdout); a .parquet "
                                       "file is written by the batch engines below")
    p.add_argument("--annotate", metavar="OUT",
                   help="draw boxes, labels and probability bars: a file for one input "
                        "(an image, or a video: .mp4/.mov are H.264 that browsers and phones "
                        "play; .webm, .avi), else a folder")
    p.add_argument("--every", type=positive_int, default=1, metavar="N",
                   help="videos: analyse every N-th frame (default 1: every frame gets a "
                        "result)")
    p.add_argument("--detect-every", type=positive_int, default=None, metavar="N",
                   help="videos: run the face detector on every N-th analysed frame and "
                        "follow the faces by optical flow in between (default: about every "
                        "0.4 s, and early when a face is lost; 1 = detect on every frame)")
    p.add_argument("--smoothing", type=_seconds, default=None, metavar="SECONDS",
                   help="videos: time constant of each face track's probability smoothing "
                        "(default 0.5; 0 = off)")
    p.add_argument("--timeline", metavar="OUT.csv|OUT.json",
                   help="videos: write the per-frame timeline here")
    p.add_argument("-r", "--recursive", action="store_true",
                   help="look for images and videos in sub-folders too")
    faces = p.add_mutually_exclusive_group()
    faces.add_argument("--no-face-ok", action="store_true",
                       help="an input without faces is an empty result (the default)")
    faces.add_argument("--require-face", action="store_true",
                       help="count an input without faces as a failure (exit status 1)")
    add_batch_options(p)  # --engine/--address/...; -o X.parquet goes to ekspresi.distributed
    p.set_defaults(func=run)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 60:
        raise argparse.ArgumentTypeError(f"expected seconds from 0 to 60, got {text!r}")
    return value


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

    from ekspresi.cli.predict_batch import run_batch, wants_batch
    from ekspresi.errors import BadInputError, EkspresiError
    from ekspresi.infer import output
    from ekspresi.infer.results import FailedInput
    from ekspresi.infer.sources import expand_paths
    from ekspresi.infer.stream import analyze_video
    from ekspresi.infer.video import is_video, video_info

    if wants_batch(args):
        return run_batch(args)
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
                                                 annotate=target, progress=fbar.update,
                                                 detect_every=args.detect_every,
                                                 smoothing=args.smoothing))
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
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    if failed:
        print(f"{failed} of {len(inputs)} input(s) failed", file=sys.stderr)
    return 1 if failed else 0
