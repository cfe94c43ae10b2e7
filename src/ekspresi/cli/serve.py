"""`ekspresi serve`: the web app and HTTP API on uvicorn."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ekspresi.cli.options import add_detector, add_engine, add_model
from ekspresi.errors import ConfigError
from ekspresi.web.settings import WEB_MAX_PIXELS, valid_host_name

log = logging.getLogger("ekspresi.web")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="run the web app and HTTP API",
        description="Serve the web app (image test, real-time webcam, step-by-step view, "
                    "model card, experiments) and the HTTP API (/docs) on uvicorn.")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    add_model(p)
    add_detector(p, tuning=False)
    p.add_argument("--runs", type=Path, default=None, metavar="DIR",
                   help="training runs folder shown on the Experiments page")
    p.add_argument("--max-upload-mb", type=float, default=10.0,
                   help="largest accepted upload in MB (default 10)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow cross-origin API calls from ORIGIN (repeatable; off by default)")
    add_engine(p)
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="also answer to this host name in the Host header (repeatable; "
                        "127.0.0.1, localhost, [::1] and --host are always allowed; '*' "
                        "turns the check off). Protects against DNS rebinding.")
    p.add_argument("--max-megapixels", type=float, default=WEB_MAX_PIXELS / 1e6,
                   help=f"largest image accepted, in millions of pixels (default "
                        f"{WEB_MAX_PIXELS / 1e6:g}, below the command line's limit: each "
                        "upload being analysed holds its decoded pixels in memory)")
    p.add_argument("--max-active", type=int, default=2, metavar="N",
                   help="images decoded and analysed at once (default 2); more wait in a "
                        "queue of --max-queue, beyond which clients get 503")
    p.add_argument("--max-queue", type=int, default=16, metavar="N",
                   help="uploads that may wait for a free slot (default 16)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ekspresi.web.app import create_app
    from ekspresi.web.engine import Engine
    from ekspresi.web.serving import uvicorn_config
    from ekspresi.web.settings import WebSettings

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port}: must be between 1 and 65535")
    if args.max_upload_mb <= 0:
        raise ConfigError(f"--max-upload-mb {args.max_upload_mb}: must be positive")
    if args.runs is not None and not args.runs.is_dir():
        raise ConfigError(f"--runs {args.runs}: no such directory")
    if args.max_megapixels <= 0:
        raise ConfigError(f"--max-megapixels {args.max_megapixels}: must be positive")
    if args.max_active < 1 or args.max_queue < 0:
        raise ConfigError("--max-active must be at least 1 and --max-queue at least 0")
    for name in args.allowed_host:
        if not valid_host_name(name):
            raise ConfigError(f"--allowed-host {name!r}: give a host name or address "
                              "without scheme or port, e.g. myhost.local or 192.168.1.5")
    model = Path(args.model) if args.model else None
    settings = WebSettings(model=model, detector=args.detector, runs_dir=args.runs,
                           max_upload_mb=args.max_upload_mb,
                           max_pixels=int(args.max_megapixels * 1e6),
                           cors_origins=tuple(args.cors_origin), threads=args.threads,
                           host=args.host, allowed_hosts=tuple(args.allowed_host),
                           max_active=args.max_active, max_queue=args.max_queue)
    engine = Engine(settings)
    if not engine.available and args.model is not None:
        # The user named a model that does not work: say so instead of serving without it.
        raise ConfigError(f"--model {args.model}: {engine.error}")
    # Only now, with every argument and the model checked: a wrong --model is reported as
    # such even while another server holds the port (the README's order: serve, then test).
    _check_port(args.host, args.port)
    app = create_app(settings, engine=engine)
    log.info("ekspresi web app on http://%s:%d (model: %s)", args.host, args.port,
             engine.model_name or "none")
    if settings.accepts_ip_hosts and not args.allowed_host:
        log.warning("listening on every interface: clients may use any IP address of this "
                    "machine; add --allowed-host NAME for each host name they use")
    config = uvicorn_config(app, host=args.host, port=args.port,
                            ws_max_size=settings.max_upload_bytes + 1024)
    uvicorn.Server(config).run()
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
