"""Inference benchmark: classifier, detectors, end-to-end frames/s, memory, footprint (JSON).

    .venv/bin/python benchmarks/inference.py [--model BUNDLE] [--compare BUNDLE ...]
        [--photos data/jaffe_dev] [--negatives DIR] [-o benchmarks/results/inference.json]

Same as `ekspresi benchmark`; by default the 640x480 test frame holds the committed
public-domain face photo (tests/fixtures/photos/astronaut.jpg).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ekspresi.cli import main

PHOTO = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "photos" / "astronaut.jpg"

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--image" not in args and PHOTO.is_file():
        args += ["--image", str(PHOTO)]
    sys.exit(main(["benchmark", *args]))
