"""`ekspresi benchmark`: inference speed, memory and install footprint as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ekspresi.cli.options import add_detector, add_model, add_output


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "benchmark", help="measure inference speed, memory and footprint (JSON)",
        description="Classifier ms/face (batch 1 and 32, 1 and 2 threads), detector ms per "
                    "640x480 frame per backend, end-to-end frames/s, peak memory, install "
                    "footprint without torch; with --photos, the detector comparison.")
    add_model(p)
    add_detector(p, tuning=False, when=" of the end-to-end measurement")
    p.add_argument("--compare", metavar="MODEL", action="append",
                   help="also time this model's classifier in the same run (repeatable), "
                        "e.g. the float and int8 exports of one model")
    p.add_argument("--image", metavar="PHOTO",
                   help="face photo pasted into the 640x480 test frame (default: none, "
                        "an empty frame)")
    p.add_argument("--photos", metavar="DIR",
                   help="folder of real uncropped one-face photos for the detector "
                        "comparison (e.g. data/jaffe_dev)")
    p.add_argument("--negatives", metavar="DIR",
                   help="folder of face-free images: false positives per detector")
    p.add_argument("--repeat", type=int, default=50, help="timed calls per measurement")
    add_output(p, metavar="FILE.json", help="also write the JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ekspresi.infer.benchmark import run_benchmark

    res = run_benchmark(args.model, image=args.image, photo_dir=args.photos,
                        negatives_dir=args.negatives,
                        compare=args.compare, repeat=args.repeat, detector=args.detector)
    text = json.dumps(res, indent=2) + "\n"
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    sys.stdout.write(text)
    return 0
