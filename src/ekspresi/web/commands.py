"""`ekspresi serve`: the web app and HTTP API on uvicorn."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ekspresi.errors import ConfigError

log = logging.getLogger("ekspresi.web")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="run the web app and HTTP API",
        description="Serve the web app (image test, real-time webcam, step-by-step view, "
                    "model card, experiments) and the HTTP API (/docs) on uvicorn.")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--model", type=Path, default=None,
                   help="model bundle directory (default: the bundled model)")
    p.add_argument("--detector", default="default",
                   help="face detector: default, haar, blazeface, blazeface-full")
    p.add_argument("--runs", type=Path, default=None, metavar="DIR",
                   help="training runs folder shown on the Experiments page")
    p.add_argument("--max-upload-mb", type=float, default=10.0,
                   help="largest accepted upload in MB (default 10)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow cross-origin API calls from ORIGIN (repeatable; off by default)")
    p.add_argument("--threads", type=int, default=None,
                   help="ONNX Runtime threads per inference call")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ekspresi.web.app import create_app
    from ekspresi.web.engine import Engine
    from ekspresi.web.settings import WebSettings

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port}: must be between 1 and 65535")
    if args.max_upload_mb <= 0:
        raise ConfigError(f"--max-upload-mb {args.max_upload_mb}: must be positive")
    if args.runs is not None and not args.runs.is_dir():
        raise ConfigError(f"--runs {args.runs}: no such directory")
    _check_port(args.host, args.port)
    settings = WebSettings(model=args.model, detector=args.detector, runs_dir=args.runs,
                           max_upload_mb=args.max_upload_mb,
                           cors_origins=tuple(args.cors_origin), threads=args.threads)
    engine = Engine(settings)
    if not engine.available and args.model is not None:
        # The user named a model that does not work: say so instead of serving without it.
        raise ConfigError(f"--model {args.model}: {engine.error}")
    app = create_app(settings, engine=engine)
    log.info("ekspresi web app on http://%s:%d (model: %s)", args.host, args.port,
             engine.model_name or "none")
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning",
                ws_max_size=settings.max_upload_bytes + 1024)
    return 0


def _check_port(host: str, port: int) -> None:
    """Say plainly when the port is taken (uvicorn would log an errno and exit 1)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind((host, port))
            s.listen()  # bind() alone once passed beside a running `ekspresi serve` here
        except OSError as exc:
            other = port + 1 if port < 65535 else 8080
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                              f"(another server, maybe another `ekspresi serve`, is using "
                              f"it); stop it or choose another port, e.g. --port {other}"
                              ) from None
