"""The MODEL argument: one resolver behind every ``--model``/MODEL of the CLI, the web app,
``Recognizer(model=...)`` and ``Classifier(...)``.

A model is named by any of:

- the name of a model shipped in the package, ``src/ekspresi/assets/models/<name>/``
  (``default``; a new bundled model is a new folder there, nothing else);
- a bundle directory, or its ``model.onnx`` / ``model.json``;
- a training run directory holding ``bundle/``.

A bundle inside a run directory (e.g. ``RUN/export-int8`` from ``ekspresi export --int8``)
belongs to that run: reports and exports then find the run's training evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ekspresi.errors import ModelError
from ekspresi.infer.bundle import META_NAME, ONNX_NAME, Bundle, is_bundle_dir, load_bundle
from ekspresi.runs import BUNDLE_DIR, RUN_MARKERS, is_run_dir

#: Where the models shipped inside the package live, one bundle folder per name.
BUNDLED_MODELS_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"
DEFAULT_MODEL = "default"


@dataclass(frozen=True)
class ResolvedModel:
    """Where a MODEL argument points: the bundle folder, the run it belongs to, and the
    name when it is a model shipped in the package (a folder nobody should write into)."""

    bundle_dir: Path
    run_dir: Path | None = None
    bundled_name: str | None = None

    def load(self, *, verify: bool = True) -> Bundle:
        """The bundle, read and checked (:func:`ekspresi.infer.bundle.load_bundle`)."""
        return load_bundle(self.bundle_dir, verify=verify)


def bundled_models() -> list[str]:
    """Names of the models shipped in this install (folders of ``BUNDLED_MODELS_DIR``)."""
    if not BUNDLED_MODELS_DIR.is_dir():
        return []
    return sorted(p.name for p in BUNDLED_MODELS_DIR.iterdir() if is_bundle_dir(p))


def _is_name(spec: str) -> bool:
    """A bare word (``default``, ``accurate``); ``./default`` is the folder."""
    return bool(spec) and "/" not in spec and "\\" not in spec and not spec.startswith(".")


def _run_holding(bundle: Path) -> Path | None:
    """The run directory a bundle folder sits in: its parent, when that holds a run's files
    besides this folder (a lone ``x/bundle/`` does not make ``x`` a run)."""
    parent = bundle.resolve().parent
    others = [n for n in RUN_MARKERS if n != bundle.resolve().name]
    return bundle.parent if any((parent / n).exists() for n in others) else None


def resolve_model(spec: str | Path | None = None) -> ResolvedModel:
    """MODEL argument -> (bundle directory, run directory or None); ``None`` is
    ``default``. Raises :class:`ModelError` saying what was expected."""
    text = DEFAULT_MODEL if spec is None else str(spec)
    if _is_name(text):         # a bundled model's name wins over a folder of that name
        if is_bundle_dir(BUNDLED_MODELS_DIR / text):
            return ResolvedModel(BUNDLED_MODELS_DIR / text, bundled_name=text)
        if text == DEFAULT_MODEL:
            raise ModelError(f"{BUNDLED_MODELS_DIR / text}: no bundled default model in this "
                             "install; pass a bundle with --model / Recognizer(model=...), or "
                             "create one with `ekspresi export RUN_DIR`")
    p = Path(text)
    if p.is_file() and p.name in (ONNX_NAME, META_NAME):
        p = p.parent
    if is_bundle_dir(p):
        return ResolvedModel(p, _run_holding(p))
    if is_bundle_dir(p / BUNDLE_DIR):
        return ResolvedModel(p / BUNDLE_DIR, p)
    if is_run_dir(p):
        raise ModelError(f"{p}: run directory has no {BUNDLE_DIR}/ with {META_NAME} and "
                         f"{ONNX_NAME} (training unfinished?); export one with "
                         f"`ekspresi export {p}`")
    if not p.exists():
        names = ", ".join(bundled_models()) or "none in this install"
        raise ModelError(f"{p}: no such model (not a model bundle, a run directory or the "
                         f"name of a bundled model: {names})")
    raise ModelError(f"{p}: not a model bundle or run directory (expected {META_NAME} and "
                     f"{ONNX_NAME}, or {BUNDLE_DIR}/ inside a run directory; make a bundle "
                     "with `ekspresi export RUN_DIR`)")


def load_model(spec: str | Path | None = None, *, verify: bool = True) -> Bundle:
    """The verified bundle a MODEL argument names (see :func:`resolve_model`)."""
    return resolve_model(spec).load(verify=verify)


def default_bundle_path() -> Path:
    """The bundle folder of the ``default`` model shipped inside the package."""
    return resolve_model(DEFAULT_MODEL).bundle_dir
