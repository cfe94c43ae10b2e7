"""Peak memory of `ekspresi serve` for heavy-but-small uploads, one at a time and at once.

The case from issue 15: a 16-bit 7000x7000 PNG is ~95 KB on the wire but 49 million pixels
once decoded. For each case this starts a *fresh* `ekspresi serve` (its own process, free
loopback port), sends the upload once (``single``) or from N clients at the same moment
(``concurrent``), and reads the server's peak resident memory from ``VmHWM`` in
``/proc/PID/status`` (Linux), so the figure includes everything the server allocated.

    python benchmarks/upload_memory.py --out benchmarks/results/upload_memory.json

Prints and writes JSON: per case and mode, the server's baseline and peak RSS (MB), the
HTTP statuses, the slowest answer (s) and whether the server still answered /healthz after.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from machine import machine_info
from server import start_server

ROOT = Path(__file__).resolve().parents[1]
MAX_CLIENTS = 32


def rss_mb(pid: int) -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident memory of ``pid`` in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def encode(array: np.ndarray, fmt: str, **save) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **save)
    return buf.getvalue()


def make_cases(side: int) -> dict[str, tuple[str, bytes]]:
    """name -> (file name, bytes). Flat images compress to almost nothing: the point is
    the decoded size, not the upload size."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (side // 50, side // 50, 3), dtype=np.uint8)
    photo = np.kron(noise, np.ones((50, 50, 1), np.uint8))  # blocky: ~3.7 MB at 7000 px
    return {
        f"png16_gray_{side}": (f"gray16_{side}.png",
                               encode(np.zeros((side, side), np.uint16), "PNG",
                                      optimize=True)),
        f"png_rgba_{side}": (f"rgba_{side}.png",
                             encode(np.zeros((side, side, 4), np.uint8), "PNG",
                                    optimize=True)),
        f"jpeg_rgb_{side}": (f"rgb_{side}.jpg", encode(photo, "JPEG", quality=70)),
    }


def upload(url: str, name: str, data: bytes, clients: int) -> dict:
    import httpx

    statuses: list[int | str] = []
    seconds: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def one() -> None:
        with httpx.Client(base_url=url, timeout=300) as c:
            barrier.wait()
            t0 = time.perf_counter()
            try:
                status: int | str = c.post("/api/v1/analyze",
                                           files={"file": (name, data, "image/png")}
                                           ).status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            with lock:
                statuses.append(status)
                seconds.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts: dict[str, int] = {}
    for s in statuses:
        counts[str(s)] = counts.get(str(s), 0) + 1
    return {"clients": clients, "statuses": counts, "slowest_s": round(max(seconds), 2)}


def measure(case: str, name: str, data: bytes, clients: int, extra: list[str]) -> dict:
    import httpx

    proc, url = start_server(extra, timeout_s=90)
    try:
        base = rss_mb(proc.pid)
        result = upload(url, name, data, clients)
        after = rss_mb(proc.pid)
        try:
            alive = httpx.get(url + "/healthz", timeout=30).status_code == 200
        except httpx.HTTPError:
            alive = False
        return {"case": case, "upload_bytes": len(data), **result,
                "baseline_rss_mb": base["VmRSS"], "peak_rss_mb": after["VmHWM"],
                "server_alive_after": alive and proc.poll() is None}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--side", type=int, default=7000, help="image side in pixels (7000)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent uploads (8)")
    ap.add_argument("--cases", default="png16_gray",
                    help="comma-separated prefixes of: png16_gray, png_rgba, jpeg_rgb")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="extra `ekspresi serve` argument (repeatable)")
    ap.add_argument("--label", default="", help="free text stored in the JSON (e.g. commit)")
    ap.add_argument("--out", type=Path, help="write the JSON here too")
    args = ap.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS or not 16 <= args.side <= 20000:
        ap.error(f"--clients must be 1..{MAX_CLIENTS} and --side 16..20000")
    wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
    cases = {k: v for k, v in make_cases(args.side).items()
             if any(k.startswith(w) for w in wanted)}
    runs = []
    for case, (name, data) in cases.items():
        for clients in (1, args.clients):
            run = measure(case, name, data, clients, args.server_arg)
            print(json.dumps(run), file=sys.stderr)
            runs.append(run)
    result = {"benchmark": "upload memory", "label": args.label,
              "date": time.strftime("%Y-%m-%d"),
              "machine": machine_info(),
              "server_args": args.server_arg, "runs": runs}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if all(r["server_alive_after"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
