"""Load test of the web API: N concurrent clients x M requests of POST /api/v1/analyze, and
the real-time WebSocket's sustained frames/s, against a server on this machine.

By default it starts `ekspresi serve` itself (a separate process, as in production) on a
free loopback port and stops it afterwards; ``--url`` targets a server you started, and
must be a loopback address: this tool never sends load to another machine.

    python benchmarks/load.py --model BUNDLE --clients 8 --requests 25 --out load.json

Prints and writes JSON: latency p50/p95/p99 (ms), throughput (requests/s), error count
(must be 0), and for the stream: frames/s with one client sending one 640x480 frame at a
time (the real-time page's protocol: the next frame leaves when the answer arrived).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from server import start_server

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = ROOT / "tests" / "fixtures" / "photos" / "astronaut.jpg"
MAX_CLIENTS, MAX_REQUESTS, MAX_SECONDS = 64, 10_000, 120.0


def is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50_ms": round(float(np.percentile(a, 50)), 2),
            "p95_ms": round(float(np.percentile(a, 95)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2),
            "mean_ms": round(float(a.mean()), 2), "max_ms": round(float(a.max()), 2)}


def http_load(url: str, image: bytes, clients: int, requests: int) -> dict:
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    faces: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            c.get("/healthz")  # connect before the clock starts
            barrier.wait()
            for _ in range(requests):
                t0 = time.perf_counter()
                try:
                    r = c.post("/api/v1/analyze",
                               files={"file": ("bench.jpg", image, "image/jpeg")})
                    ok = r.status_code == 200
                    n = len(r.json()["faces"]) if ok else -1
                    why = None if ok else f"HTTP {r.status_code}"
                except httpx.HTTPError as exc:
                    n, why = -1, f"{type(exc).__name__}: {exc}"
                ms = (time.perf_counter() - t0) * 1000.0
                with lock:
                    latencies.append(ms)
                    faces.append(n)
                    if why:
                        errors.append(why)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"clients": clients, "requests_per_client": requests,
            "requests": len(latencies), "errors": len(errors),
            "error_examples": sorted(set(errors))[:5],
            "faces_per_image": sorted(set(faces)),
            "wall_s": round(wall, 3), "throughput_rps": round(len(latencies) / wall, 2),
            **percentiles(latencies)}


def stream_load(url: str, frame: bytes, seconds: float) -> dict:
    from websockets.sync.client import connect

    ws_url = "ws://" + url.split("://", 1)[1] + "/api/v1/stream"
    latencies: list[float] = []
    server_ms: list[float] = []
    errors = 0
    faces: set[int] = set()
    with connect(ws_url, max_size=None) as ws:
        ws.send(frame)
        json.loads(ws.recv())  # warm-up frame
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            t0 = time.perf_counter()
            ws.send(frame)
            answer = json.loads(ws.recv())
            latencies.append((time.perf_counter() - t0) * 1000.0)
            if "error" in answer:
                errors += 1
            else:
                server_ms.append(answer["elapsed_ms"])
                faces.add(len(answer["faces"]))
        wall = time.perf_counter() - start
    return {"frames": len(latencies), "errors": errors, "faces_per_frame": sorted(faces),
            "wall_s": round(wall, 3), "fps": round(len(latencies) / wall, 2),
            "server_p50_ms": round(statistics.median(server_ms), 2) if server_ms else None,
            **percentiles(latencies)}


def camera_frame(photo: Path) -> bytes:
    """The face photo centred in a 640x480 frame, JPEG q80, like the real-time page sends."""
    import cv2

    face = cv2.imread(str(photo))
    face = cv2.resize(face, (440, 440), interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 110, np.uint8)
    canvas[20:460, 100:540] = face
    ok, buf = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return buf.tobytes()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="a running server on this machine (default: start one)")
    ap.add_argument("--model", help="bundle for the server it starts (default: bundled)")
    ap.add_argument("--detector", default="default")
    ap.add_argument("--threads", type=int, default=None, help="server's ONNX threads")
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=25, help="per client")
    ap.add_argument("--stream-seconds", type=float, default=10.0,
                    help="duration of the WebSocket test (0 = skip it)")
    ap.add_argument("--out", type=Path, help="write the JSON here too")
    args = ap.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS or not 1 <= args.requests <= MAX_REQUESTS:
        ap.error(f"--clients must be 1..{MAX_CLIENTS} and --requests 1..{MAX_REQUESTS}")
    if not 0 <= args.stream_seconds <= MAX_SECONDS:
        ap.error(f"--stream-seconds must be 0..{MAX_SECONDS:g}")
    if args.url and not is_loopback(args.url):
        ap.error(f"--url {args.url}: only loopback servers (127.0.0.1, ::1, localhost)")
    image = args.image.read_bytes()

    proc = None
    url = args.url.rstrip("/") if args.url else None
    if url is None:
        extra = ["--detector", args.detector, *(["--model", args.model] if args.model else []),
                 *(["--threads", str(args.threads)] if args.threads else [])]
        proc, url = start_server(extra)
    try:
        import httpx

        model = httpx.get(url + "/api/v1/model", timeout=10).json()
        result = {
            "benchmark": "web load",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "server": {"url": url, "started_by_benchmark": proc is not None,
                       "model": model.get("name"), "detector": model.get("detector"),
                       "input_size": (model.get("input") or {}).get("size")},
            "image": {"path": str(args.image), "bytes": len(image)},
            "http": http_load(url, image, args.clients, args.requests),
        }
        if args.stream_seconds > 0:
            frame = camera_frame(args.image)
            result["stream"] = {"frame_bytes": len(frame), "frame_size": "640x480",
                                **stream_load(url, frame, args.stream_seconds)}
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    failed = result["http"]["errors"] or result.get("stream", {}).get("errors", 0)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
