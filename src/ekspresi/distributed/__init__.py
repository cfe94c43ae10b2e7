"""Batch prediction over large collections, in one process or on a Ray cluster.

``ekspresi predict SOURCES... -o results.parquet [--engine ray [--address ADDR]]`` and
:func:`predict` run the same detector + classifier as ``Recognizer`` and write one row per
face as Parquet partitions that a rerun resumes from. The local engine loops in this
process; the Ray engine (``pip install 'ekspresi[distributed]'``) spreads images and frame
ranges of videos over one ``Recognizer`` per Ray Data actor. Nothing heavy is imported here
(``ekspresi --help`` stays instant); Ray is imported only when the Ray engine runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ekspresi.errors import EkspresiError

__all__ = ["ClusterError", "predict"]


class ClusterError(EkspresiError, RuntimeError):
    """The Ray cluster cannot be reached or started (wrong address, version mismatch)."""


if TYPE_CHECKING:  # pragma: no cover
    from ekspresi.distributed.job import predict


def __getattr__(name: str) -> Any:
    if name == "predict":
        from ekspresi.distributed.job import predict

        return predict
    raise AttributeError(f"module 'ekspresi.distributed' has no attribute {name!r}")
