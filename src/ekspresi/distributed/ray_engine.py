"""The Ray engine: tasks through Ray Data ``map_batches`` on a fixed pool of actors, each
holding one ``Recognizer`` (built once per actor, not per call).

Workers read the sources themselves (on a cluster: a path every node sees, e.g. NFS); only
the small per-face results travel back, and the driver alone writes the output, so the
output folder needs no shared storage. Frame ranges of one video run on different actors;
the driver puts them back in order and tracks faces through the whole video.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ekspresi.distributed import ClusterError
from ekspresi.distributed.plan import Settings, Unit, make_tasks, units_from_json, units_to_json
from ekspresi.distributed.work import SourceResult, UnitResult, assemble, process_task
from ekspresi.errors import MissingDependencyError

#: Upper bound on Ray Data blocks (one per task up to this): enough for load balancing on a
#: large cluster, few enough that scheduling overhead stays small.
MAX_BLOCKS = 4096


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "--engine ray needs Ray Data: pip install 'ekspresi[distributed]'") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not after Ray's long connection retries, when nothing listens at
    ``host:port`` (``auto`` and other forms are left to ``ray.init``)."""
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout).close()
    except OSError as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address} ({exc}); check the "
                           "address (`ray status` on the head node prints it) or start one "
                           "with `ray start --head`") from None


def connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Join the cluster at ``address``, or start a local Ray with ``num_cpus`` (default: the
    machine's cores). Returns True when this call started or joined Ray (and so should
    shut it down); an already initialised Ray (e.g. a notebook's) is used as it is."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    if address:
        _check_reachable(address)
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                     logging_level=logging.WARNING)
    except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ...
        where = f"at {address}" if address else "locally"
        raise ClusterError(f"cannot start or join Ray {where}: {exc}") from None
    return True


class RecognizerWorker:
    """The Ray Data callable class: one Recognizer per actor, one task per call."""

    def __init__(self, settings: dict[str, Any]):
        import cv2

        cv2.setNumThreads(1)            # one actor per CPU the scheduler gave it
        self.settings = Settings(**settings)
        self.recognizer = self.settings.make_recognizer()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = [pickle.dumps(process_task(self.recognizer, units_from_json(str(task)),
                                         self.settings.every))
               for task in batch["task"]]
        return {"results": np.array(out, dtype=object)}


def run(units: list[Unit], settings: Settings, *, workers: int | None = None,
        progress: Callable[[int], Any] | None = None) -> Iterator[SourceResult]:
    """On the Ray this process is connected to (:func:`connect`): yields each source once
    all its units are back (in completion order)."""
    if not units:
        return
    ray = import_ray()
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False       # ours counts images and frames instead
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    tasks = make_tasks(units, settings.images_per_task)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    size = max(1, min(workers or cpus, len(tasks)))
    ds = ray.data.from_items([{"task": units_to_json(t)} for t in tasks],
                             override_num_blocks=min(len(tasks), MAX_BLOCKS))
    ds = ds.map_batches(RecognizerWorker, fn_constructor_kwargs={"settings": settings.to_dict()},
                        batch_size=1, batch_format="numpy",
                        compute=ray.data.ActorPoolStrategy(size=size), num_cpus=1)
    expected: dict[str, int] = {}
    for u in units:
        expected[u.source] = expected.get(u.source, 0) + 1
    parts: dict[str, list[UnitResult]] = {}
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for blob in batch["results"]:
            for res in pickle.loads(blob):
                if progress:
                    progress(res.frames_read if res.unit.kind == "video" else 1)
                got = parts.setdefault(res.unit.source, [])
                got.append(res)
                if len(got) == expected[res.unit.source]:
                    del parts[res.unit.source]
                    yield assemble(res.unit.source, res.unit.kind, got, settings.every)
