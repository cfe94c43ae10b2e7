"""`ekspresi <command>`: one console entry point; each layer registers its own commands.

Every command lives in a small ``commands`` module of its layer, which must import nothing
heavy at module level (no torch, no onnxruntime) so that ``ekspresi --help`` is instant and
works on the inference-only install. Expected failures (:class:`EkspresiError`) are printed
as one line, without a traceback, and exit with status 2; so is a command that needs the
training extra (torch, scikit-learn, matplotlib, onnx) on an install without it, with the
``pip install 'ekspresi[train]'`` line to run.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ekspresi._version import __version__
from ekspresi.errors import EkspresiError

#: command -> (module providing ``register(subparsers)``, one-line help if it is absent).
COMMAND_MODULES: dict[str, tuple[str, str]] = {
    "data": ("ekspresi.data.commands", "inspect and preview datasets"),
    "models": ("ekspresi.models.commands", "list the model registry"),
    "train": ("ekspresi.train.commands", "train a model from a config"),
    "sweep": ("ekspresi.train.sweep_commands", "run a set of experiments"),
    "campaign": ("ekspresi.train.campaign_commands", "run a list of trainings in a time budget"),
    "evaluate": ("ekspresi.evaluate.commands", "evaluate a model on datasets"),
    "compare": ("ekspresi.evaluate.compare_commands", "compare training runs"),
    "export": ("ekspresi.infer.export_commands", "write an ONNX model bundle"),
    "ensemble": ("ekspresi.infer.ensemble_commands", "average models in one ONNX bundle"),
    "predict": ("ekspresi.infer.commands", "recognise expressions in images and videos"),
    "webcam": ("ekspresi.infer.webcam_commands", "live webcam window"),
    "benchmark": ("ekspresi.infer.benchmark_commands", "measure inference speed"),
    "serve": ("ekspresi.web.commands", "run the web app and HTTP API"),
}


#: Packages only ``pip install 'ekspresi[train]'`` brings (top-level import names).
TRAIN_EXTRA = frozenset({"torch", "torchvision", "onnx", "sklearn", "matplotlib"})
TRAIN_HINT = "pip install 'ekspresi[train]'"


def _missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The training-extra package ``exc`` is about, if it is one."""
    root = (exc.name or "").split(".")[0]
    return root if root in TRAIN_EXTRA else None


def _needs_extra(name: str, package: str):
    def run(_args: argparse.Namespace) -> int:
        print(f"ekspresi {name}: needs the training extra ({package} is not installed); "
              f"install it with: {TRAIN_HINT}", file=sys.stderr)
        return 2
    return run


def _not_available(name: str, why: str):
    def run(_args: argparse.Namespace) -> int:
        print(f"ekspresi {name}: not yet available in this version ({why})", file=sys.stderr)
        return 2
    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ekspresi",
        description="Facial expression recognition: datasets, training, evaluation, "
                    "inference and a web app.")
    parser.add_argument("--version", action="version", version=f"ekspresi {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMAND_MODULES.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            package = _missing_extra(exc)
            if package is not None:
                p = sub.add_parser(name, help=f"{help_text} (needs {TRAIN_HINT})")
                p.set_defaults(func=_needs_extra(name, package))
                continue
            if exc.name is None or not module.startswith(exc.name):
                raise
            p = sub.add_parser(name, help=f"{help_text} (not yet available)")
            p.set_defaults(func=_not_available(name, f"{module} is missing"))
            continue
        mod.register(sub)  # adds exactly the command `name`, with set_defaults(func=...)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except EkspresiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        # The inference-only install has no torch & co.: say what to install, no traceback.
        package = _missing_extra(exc)
        if package is None:
            raise
        return _needs_extra(args.command, package)(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
