"""`ekspresi <command>`: one console entry point, the top layer.

Every command is a module of this package (``ekspresi.cli.<verb>``: ``register(subparsers)``
and ``run(args) -> int``) building its options from the shared groups of
:mod:`ekspresi.cli.options`. It must import nothing heavy at module level (no torch, no
onnxruntime) so that ``ekspresi --help`` is instant and works on the inference-only install.
Expected failures (:class:`EkspresiError`, and a command line argparse rejects) are printed
as one ``error: ...`` line, without a traceback, and exit with status 2; so is a command that
needs the training extra (torch, scikit-learn, matplotlib, onnx) on an install without it,
with the ``pip install 'ekspresi[train]'`` line to run.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ekspresi._version import __version__
from ekspresi.errors import EkspresiError

#: command -> one-line help shown when its module needs the missing training extra; the
#: command is registered by ``ekspresi.cli.<command>``.
COMMANDS: dict[str, str] = {
    "data": "inspect and preview datasets",
    "models": "list the model registry",
    "train": "train a model from a config",
    "sweep": "run a set of experiments",
    "campaign": "run a list of trainings in a time budget",
    "evaluate": "evaluate a model on datasets",
    "compare": "compare training runs",
    "export": "write an ONNX model bundle",
    "ensemble": "average models in one ONNX bundle",
    "predict": "recognise expressions in images and videos",
    "webcam": "live webcam window",
    "benchmark": "measure inference speed",
    "serve": "run the web app and HTTP API",
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


class UsageError(EkspresiError):
    """A command line argparse rejects (unknown option, invalid choice, missing argument)."""


class _Parser(argparse.ArgumentParser):
    """Reports a bad command line as :class:`UsageError`, printed by :func:`main` as one
    ``error: ...`` line like every other user error, instead of exiting from inside."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ekspresi",
        description="Facial expression recognition: datasets, training, evaluation, "
                    "inference and a web app.")
    parser.add_argument("--version", action="version", version=f"ekspresi {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            package = _missing_extra(exc)
            if package is None:
                raise
            p = sub.add_parser(name, help=f"{help_text} (needs {TRAIN_HINT})")
            p.set_defaults(func=_needs_extra(name, package))
            continue
        mod.register(sub)  # adds exactly the command `name`, with set_defaults(func=...)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
    except OSError as exc:
        # A path the user gave that cannot be read or written (missing folder, permissions,
        # disk full); --verbose keeps the traceback for a bug report.
        if args.verbose:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

