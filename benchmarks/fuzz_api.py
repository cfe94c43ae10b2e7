"""Seeded mutation fuzzer of the upload endpoints: no upload may get a 5xx answer.

A face photo (tests/fixtures/photos/astronaut.jpg, downscaled) is encoded by Pillow in many
formats (PNG, 16-bit PNG, JPEG, progressive JPEG, GIF, BMP, TIFF, WebP, DDS, ICO, PPM, TGA,
PCX, plus a hand-made EPS header), each encoding is byte-mutated (bit flips, "interesting"
byte values, header integers set to extremes, truncation, inserted/duplicated/deleted
runs), and the result is POSTed to ``/api/v1/analyze`` (one in ten to ``/api/v1/trace``)
of the app with the bundled model, in-process through FastAPI's TestClient (server
exceptions are turned into answers, as uvicorn would). Every mutation is reproducible from
``--seed`` and its index.

    python benchmarks/fuzz_api.py --count 5000 --seed 0 --out benchmarks/results/fuzz_api.json

Prints and writes JSON: answers per status and per format, the number of answers >= 500
(must be 0; exit status 1 otherwise) with the first few (index, format, mutation, detail),
the slowest request and the process's peak RSS (a 6-megapixel 96x65540 strip once took
74 s and 12 GB here, before the web server refused images with a side above 8192 px).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import resource
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from machine import machine_info

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "tests" / "fixtures" / "photos" / "astronaut.jpg"
MAX_COUNT = 100_000
INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)
EXTREMES = (b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00",
            b"\x00\x01\x00\x00", b"\xff\xff\x00\x00")


def seeds(side: int = 96) -> dict[str, bytes]:
    """format name -> a valid file of that format made from the face photo."""
    from PIL import Image

    photo = Image.open(PHOTO).convert("RGB")
    photo = photo.resize((side, side))
    gray = photo.convert("L")

    def enc(img, fmt, **kw) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format=fmt, **kw)
        return buf.getvalue()

    arr16 = (np.asarray(gray, dtype=np.uint16) * 257)
    out = {
        "png": enc(photo, "PNG"),
        "png16": enc(Image.fromarray(arr16), "PNG"),
        "png_palette": enc(photo.convert("P"), "PNG"),
        "jpeg": enc(photo, "JPEG", quality=85),
        "jpeg_progressive": enc(photo, "JPEG", quality=85, progressive=True),
        "gif": enc(photo.convert("P"), "GIF"),
        "bmp": enc(photo, "BMP"),
        "bmp_rle": enc(photo.convert("P"), "BMP"),
        "tiff": enc(photo, "TIFF"),
        "tiff_lzw": enc(photo, "TIFF", compression="tiff_lzw"),
        "webp": enc(photo, "WEBP", quality=80),
        "webp_lossless": enc(photo, "WEBP", lossless=True),
        "dds": enc(photo, "DDS"),
        "ico": enc(photo, "ICO"),
        "ppm": enc(photo, "PPM"),
        "pgm": enc(gray, "PPM"),
        "tga": enc(photo, "TGA"),
        "pcx": enc(photo, "PCX"),
        "eps": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 96 96\n"
                b"0 0 moveto 96 96 lineto stroke\nshowpage\n%%EOF\n"),
    }
    return out


def mutate(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """One random mutation (sometimes two stacked) of ``data``; returns it and its name."""
    b = bytearray(data)
    names = []
    for _ in range(1 if rng.random() < 0.7 else 2):
        # header fields decide how a decoder behaves: they get a third of the mutations
        kind = rng.choice(["bitflip", "byte", "header_int", "header_int", "header_int",
                           "truncate", "insert", "duplicate", "delete", "bitflip_many"])
        names.append(str(kind))
        n = len(b)
        if n == 0:
            break
        head = min(n, 128)
        if kind == "bitflip":
            i = int(rng.integers(0, n))
            b[i] ^= 1 << int(rng.integers(0, 8))
        elif kind == "bitflip_many":
            for _ in range(int(rng.integers(2, 32))):
                i = int(rng.integers(0, n))
                b[i] ^= 1 << int(rng.integers(0, 8))
        elif kind == "byte":
            # headers matter most: half of the hits land in the first 128 bytes
            i = int(rng.integers(0, head if rng.random() < 0.5 else n))
            b[i] = int(rng.choice(INTERESTING))
        elif kind == "header_int":
            # binary headers are mostly 4-byte aligned little/big-endian integers
            i = int(rng.integers(0, max(1, head - 4)))
            if rng.random() < 0.5:
                i -= i % 4
            value = EXTREMES[int(rng.integers(0, len(EXTREMES)))]
            b[i:i + 4] = value
        elif kind == "truncate":
            del b[int(rng.integers(1, n)):]
        elif kind == "insert":
            i = int(rng.integers(0, n))
            b[i:i] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        elif kind == "duplicate":
            i = int(rng.integers(0, n))
            j = min(n, i + int(rng.integers(1, 256)))
            b[j:j] = b[i:j] * int(rng.integers(1, 8))
        elif kind == "delete":
            i = int(rng.integers(0, n))
            del b[i:i + int(rng.integers(1, 64))]
    return bytes(b), "+".join(names)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=5000, help="mutated uploads (5000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", help="bundle to serve (default: the bundled model)")
    ap.add_argument("--trace-every", type=int, default=10,
                    help="every Nth upload goes to /api/v1/trace (0 = never)")
    ap.add_argument("--out", type=Path, help="write the JSON here too")
    args = ap.parse_args(argv)
    if not 1 <= args.count <= MAX_COUNT:
        ap.error(f"--count must be 1..{MAX_COUNT}")

    from fastapi.testclient import TestClient

    from ekspresi.web.app import create_app
    from ekspresi.web.settings import WebSettings

    logging.getLogger("ekspresi.web").setLevel(logging.WARNING)  # one line per request
    settings = WebSettings(model=Path(args.model) if args.model else None, threads=1)
    app = create_app(settings)
    if not app.state.engine.available:
        raise SystemExit(f"no model: {app.state.engine.error}")
    formats = seeds()
    names = sorted(formats)
    rng = np.random.default_rng(args.seed)
    statuses: Counter[int] = Counter()
    by_format: dict[str, Counter[int]] = defaultdict(Counter)
    failures: list[dict] = []
    slowest = (0.0, None)
    t0 = time.perf_counter()
    with TestClient(app, raise_server_exceptions=False) as client:
        # the unmutated seeds first: which formats the server reads at all
        baseline = {}
        for name in names:
            r = client.post("/api/v1/analyze",
                            files={"file": (f"seed.{name}", formats[name], "image/x")})
            baseline[name] = r.status_code
        for i in range(args.count):
            name = names[int(rng.integers(0, len(names)))]
            data, how = mutate(formats[name], rng)
            path = ("/api/v1/trace" if args.trace_every and i % args.trace_every == 0
                    else "/api/v1/analyze")
            start = time.perf_counter()
            try:
                r = client.post(path, files={"file": (f"fuzz{i}.{name}", data, "image/x")})
                status, detail = r.status_code, r.text[:200]
            except Exception as exc:  # noqa: BLE001 - a crash of the client side counts
                status, detail = 599, f"{type(exc).__name__}: {exc}"[:200]
            took = time.perf_counter() - start
            if took > slowest[0]:
                slowest = (took, {"index": i, "format": name, "mutation": how,
                                  "status": status})
            statuses[status] += 1
            by_format[name][status] += 1
            if status >= 500:
                failures.append({"index": i, "format": name, "mutation": how,
                                 "path": path, "status": status, "detail": detail})
    wall = time.perf_counter() - t0
    result = {
        "benchmark": "upload fuzzing",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_info(),
        "model": app.state.engine.model_name,
        "seed": args.seed, "count": args.count, "trace_every": args.trace_every,
        "unmutated_seed_status": baseline,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "responses_5xx": sum(v for k, v in statuses.items() if k >= 500),
        "by_format": {k: {str(s): n for s, n in sorted(v.items())}
                      for k, v in sorted(by_format.items())},
        "failures": failures[:20],
        "slowest_request_s": round(slowest[0], 3), "slowest_request": slowest[1],
        # server and fuzzer share this process: an upper bound of the server's peak
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "wall_s": round(wall, 1),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 1 if result["responses_5xx"] else 0


if __name__ == "__main__":
    sys.exit(main())
