"""Option groups the verbs share: one spelling, one help text and one default for each.

A verb that takes a model, ONNX Runtime settings, a face detector, an output or a dataset
adds it through the function here, so that ``predict``, ``webcam``, ``serve``, ``benchmark``
and ``evaluate`` cannot drift apart (tests/test_cli.py compares them). The detector choices
are read from the detector registry (:data:`ekspresi.detect.BACKENDS`), which imports no
backend, OpenCV nor numpy: ``ekspresi --help`` stays instant.
"""

from __future__ import annotations

import argparse

from ekspresi.detect import BACKENDS, DEFAULT_DETECTOR, SENSITIVITIES

MODEL_HELP = ("model: a bundle folder (or its model.onnx), a training run folder (its "
              "bundle/), or a bundled model's name: `default` (used when none is given) "
              "or `accurate` (an ensemble: more accurate, several times slower)")

#: What a dataset argument accepts (``ekspresi.data.loading.load``); the layouts are written
#: out (their registry imports OpenCV), and tests/test_cli.py checks them against it.
DATA_SPEC_HELP = ("a dataset folder or file (layout detected), or LAYOUT:PATH with LAYOUT one "
                  "of fer2013-folder, fer2013-csv, ferplus, folders, jaffe, kdef, pack")


def positive_int(text: str) -> int:
    """argparse type of counts (threads, faces, pixels, frames): a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_model(p: argparse.ArgumentParser, *, positional: bool = False) -> None:
    """``--model MODEL`` (or the positional ``MODEL``); ``None`` means the bundled model."""
    if positional:
        p.add_argument("model", nargs="?", metavar="MODEL", default=None, help=MODEL_HELP)
    else:
        p.add_argument("--model", metavar="MODEL", default=None, help=MODEL_HELP)


def add_engine(p: argparse.ArgumentParser) -> None:
    """ONNX Runtime settings of the classifier (and the DNN detectors)."""
    g = p.add_argument_group("inference engine")
    g.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="ONNX Runtime threads per inference call (default 1, or "
                        "$EKSPRESI_THREADS)")


def detector_choices() -> list[str]:
    """``default`` and every registered backend."""
    return ["default", *BACKENDS]


def add_detector(p: argparse.ArgumentParser, *, tuning: bool = True,
                 default: str | None = "default", when: str = "") -> None:
    """``--detector`` with the registry's names; ``tuning`` adds the options every backend
    understands (sensitivity, smallest face, threshold, face count, margin, alignment)."""
    g = p.add_argument_group("face detection")
    unset = (f"default, which is {DEFAULT_DETECTOR}" if default == "default"
             else "none, the images are faces already")
    g.add_argument("--detector", choices=detector_choices(), default=default,
                   metavar="DETECTOR",
                   help=f"face detector{when}: {', '.join(detector_choices())} "
                        f"(default: {unset})")
    if not tuning:
        return
    g.add_argument("--sensitivity", choices=SENSITIVITIES, default="normal",
                   help="low: larger faces only, fewest false boxes, fastest (live video); "
                        "high: smaller and fainter faces, slower, more false boxes "
                        "(default normal)")
    g.add_argument("--min-face-size", type=positive_int, default=None, metavar="PX",
                   help="ignore faces smaller than this (pixels; default 20). With the "
                        "multi-scale detectors (retinaface, blazeface-tiled) it is also the "
                        "smallest face searched for: larger is faster (default: set by "
                        "--sensitivity)")
    g.add_argument("--score-threshold", type=float, default=None, metavar="S",
                   help="detector score threshold (backend's scale; default: its own)")
    g.add_argument("--max-faces", type=positive_int, default=None, metavar="N",
                   help="keep at most N faces per image (best first)")
    g.add_argument("--margin", type=float, default=None,
                   help="crop margin per side as a fraction of the face box "
                        "(default: the detector's calibrated value)")
    g.add_argument("--no-align", action="store_true", help="do not level the eyes")


def make_recognizer(args: argparse.Namespace):
    """The :class:`~ekspresi.infer.recognizer.Recognizer` the model, engine and detector
    options describe."""
    from ekspresi.infer.recognizer import Recognizer

    return Recognizer(args.model, args.detector, threads=args.threads,
                      min_face_size=args.min_face_size, score_threshold=args.score_threshold,
                      max_faces=args.max_faces, margin=args.margin,
                      sensitivity=args.sensitivity, align=not args.no_align)


def add_output(p: argparse.ArgumentParser, *, metavar: str, help: str,
               required: bool = False) -> None:
    """``-o/--out``: where a verb writes (a file or a folder, said by ``help``)."""
    p.add_argument("-o", "--out", metavar=metavar, required=required, default=None,
                   help=help)


def add_format(p: argparse.ArgumentParser, choices: tuple[str, ...]) -> None:
    """``--format``: the first choice is the default (a human-readable table)."""
    p.add_argument("--format", choices=choices, default=choices[0],
                   help=f"output format: {', '.join(choices)} (default {choices[0]})")


def add_overrides(p: argparse.ArgumentParser | argparse._ArgumentGroup, *,
                  each: str = "") -> None:
    """``--set KEY=VALUE`` (repeatable): a config value, given as YAML."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override a config value{each}, e.g. --set train.epochs=5 "
                        "(repeatable; the value is read as YAML)")


def add_training(p: argparse.ArgumentParser, *, each: str = "") -> None:
    """The options of a verb that trains from configs: overrides, time budget (``each``:
    for every run of several), progress bar, torch threads."""
    g = p.add_argument_group("training")
    add_overrides(g, each=each)
    g.add_argument("--max-minutes", type=float, metavar="M",
                   help=f"stop cleanly after the epoch that would overrun this budget{each} "
                        "(resumable)")
    g.add_argument("--quiet", action="store_true", help="no progress bar (for logs)")
    g.add_argument("--threads", type=positive_int, metavar="N",
                   help="torch threads (default: the config's train.threads, else torch's)")


def add_data(p: argparse.ArgumentParser, *, help: str, repeat: bool = False,
             split: bool = False) -> None:
    """``--data SPEC`` (repeatable when ``repeat``) and, with ``split``, ``--split``."""
    p.add_argument("--data", action="append" if repeat else "store", default=[] if repeat
                   else None, metavar="SPEC", help=f"{help}; SPEC is {DATA_SPEC_HELP}")
    if split:
        p.add_argument("--split", default="test",
                       help="split of datasets that have official splits: test (default), "
                            "val, train or all; datasets without one are used whole (and "
                            "say so)")
