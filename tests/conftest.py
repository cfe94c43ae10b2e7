"""Fixtures every test module gets from pytest (never imported from another test module).

- ``dataset_cache``: autouse; each test decodes datasets into a cache folder of its own
  (``$EKSPRESI_CACHE``), so no test reads another's cache or the user's ``~/.cache``.
  Fixtures wider than one test see a session-wide folder, set before any of them runs.
- ``make_bundle``: the one factory of tiny real ONNX bundles (kinds in ``tests/bundles.py``);
  ``conv_bundle``, ``recognizer``, ``tiny_bundle`` and ``web_engine`` are session-wide
  bundles and engines made with it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from bundles import write_test_bundle

# Trainings in tests compare runs for equality: the CPU tuning's choice (channels-last or
# not) depends on timings and would change the last digits between two runs.
os.environ.setdefault("EKSPRESI_CPU_TUNE", "0")


@pytest.fixture(scope="session", autouse=True)
def _session_dataset_cache(tmp_path_factory):
    before = os.environ.get("EKSPRESI_CACHE")
    os.environ["EKSPRESI_CACHE"] = str(tmp_path_factory.mktemp("session-cache"))
    yield
    if before is None:
        os.environ.pop("EKSPRESI_CACHE", None)
    else:
        os.environ["EKSPRESI_CACHE"] = before


@pytest.fixture(autouse=True)
def dataset_cache(tmp_path_factory, monkeypatch) -> Path:
    """This test's dataset cache folder (``$EKSPRESI_CACHE``)."""
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("EKSPRESI_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def make_bundle(tmp_path_factory) -> Callable[..., Path]:
    """``make_bundle(kind="conv", out=None, *, onnx=None, size=48, **fields)`` writes a tiny
    real bundle (``dense``, ``conv`` or ``flip``; ``onnx`` bytes replace the kind's graph;
    ``fields`` override name, classes, training, metrics, extra) and returns its folder
    (``out``, or a fresh temporary one)."""

    def make(kind: str = "conv", out: str | Path | None = None, **kw) -> Path:
        out = Path(out) if out is not None else tmp_path_factory.mktemp(kind) / "bundle"
        return write_test_bundle(out, kind, **kw)

    return make


@pytest.fixture(scope="session")
def conv_bundle(make_bundle) -> Path:
    return make_bundle("conv")


@pytest.fixture(scope="session")
def recognizer(conv_bundle):
    from ekspresi.infer import Recognizer

    return Recognizer(conv_bundle, threads=1)


@pytest.fixture(scope="session")
def tiny_bundle(make_bundle) -> Path:
    return make_bundle("dense")


@pytest.fixture(scope="session")
def web_engine(tiny_bundle):
    from ekspresi.web.engine import Engine
    from ekspresi.web.settings import WebSettings

    engine = Engine(WebSettings(model=tiny_bundle, threads=1))
    assert engine.available, engine.error
    return engine


@pytest.fixture(scope="module")
def client(web_engine, tiny_bundle):
    """The web app on the tiny bundle, in FastAPI's test client (a module may define its
    own ``client`` with other settings)."""
    testclient = pytest.importorskip("fastapi.testclient")
    from ekspresi.web.app import create_app
    from ekspresi.web.settings import WebSettings

    app = create_app(WebSettings(model=tiny_bundle, threads=1), engine=web_engine)
    with testclient.TestClient(app) as c:
        yield c
