"""One batch job: check the model, plan the sources, skip those already in the output, run
an engine, write partitions as sources finish, then the per-source summary."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ekspresi.distributed.plan import (
    DEFAULT_CHUNK_FRAMES,
    DEFAULT_IMAGES_PER_TASK,
    Settings,
    Unit,
    bundle_identity,
    plan_units,
)
from ekspresi.distributed.results import ResultStore, summary_path
from ekspresi.distributed.work import SourceResult, analyze_source
from ekspresi.errors import ConfigError

ENGINES = ("local", "ray")


@dataclass
class JobResult:
    output: Path
    summary_csv: Path
    summary: list[dict[str, Any]]     # one dict per source in the output (see ResultStore)
    processed: int                    # sources analysed by this run
    skipped: int                      # sources already in the output (resumed)
    items: int                        # images + video frames read by this run
    seconds: float

    @property
    def failed(self) -> int:
        return sum(1 for r in self.summary if r["status"] == "error")


def _run_local(units: list[Unit], settings: Settings, recognizer,
               progress: Callable[[int], Any]) -> Iterator[SourceResult]:
    for unit in units:
        yield analyze_source(recognizer, unit, settings.every, progress)


def predict(sources: str | Path | Sequence[str | Path], output: str | Path, *,
            engine: str = "local", address: str | None = None, workers: int | None = None,
            num_cpus: int | None = None, model: str | Path | None = None,
            detector: str = "default", min_face_size: int | None = None,
            sensitivity: str = "normal",
            score_threshold: float | None = None, max_faces: int | None = None,
            margin: float | None = None, align: bool = True, threads: int | None = None,
            every: int = 1, recursive: bool = False,
            chunk_frames: int = DEFAULT_CHUNK_FRAMES,
            images_per_task: int = DEFAULT_IMAGES_PER_TASK, flush_sources: int = 64,
            flush_seconds: float = 30.0, progress: bool | None = None,
            on_written: Callable[[list[str]], Any] | None = None) -> JobResult:
    """Faces and expressions of every image and video in ``sources`` into the Parquet
    folder ``output`` (one row per face), resuming: sources already there are skipped.

    ``engine="local"`` runs in this process; ``"ray"`` runs one ``Recognizer`` per Ray Data
    actor on the cluster at ``address`` (``None``: a local Ray with ``num_cpus`` cores,
    default all), ``workers`` actors (default: one per cluster CPU), videos cut into
    ``chunk_frames`` frame ranges. Detector/model options are those of ``Recognizer``;
    ``every``: analyse every N-th video frame. ``progress``: the terminal progress bar
    (``None``: when stderr is a terminal); ``on_written(sources)`` is called after each
    partition is safely on disk. A missing model, an unknown detector or an unreachable
    cluster raise an :class:`~ekspresi.errors.EkspresiError` before any work; a bad file
    becomes an error row and the job goes on.
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if every < 1 or chunk_frames < 1 or images_per_task < 1 or flush_sources < 1:
        raise ConfigError("every, chunk_frames, images_per_task and flush_sources must be >= 1")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if address and engine != "ray":
        raise ConfigError("--address needs --engine ray")
    t0 = time.perf_counter()
    model_dir, sha = bundle_identity(model)
    settings = Settings(model_dir, sha, detector, min_face_size, score_threshold, max_faces,
                        margin, align, every, threads, chunk_frames, images_per_task,
                        sensitivity)
    recognizer = settings.make_recognizer()     # unknown detector / bad options fail here
    started = False
    if engine == "ray":     # a missing extra or a cluster that is not there fails here
        from ekspresi.distributed import ray_engine

        started = ray_engine.connect(address, num_cpus)
    try:
        return _predict(recognizer, settings, sources, output, engine=engine,
                        workers=workers, recursive=recursive, flush_sources=flush_sources,
                        flush_seconds=flush_seconds, progress=progress, on_written=on_written,
                        t0=t0)
    finally:
        if started:         # a Ray this call started or joined; a notebook's stays up
            ray_engine.import_ray().shutdown()


def _predict(recognizer, settings: Settings, sources, output, *, engine: str,
             workers: int | None, recursive: bool, flush_sources: int, flush_seconds: float,
             progress: bool | None, on_written: Callable[[list[str]], Any] | None,
             t0: float) -> JobResult:
    paths = [str(sources)] if isinstance(sources, (str, Path)) else [str(s) for s in sources]
    units = plan_units(paths, recursive=recursive,
                       chunk_frames=settings.chunk_frames if engine == "ray" else 1 << 62)
    store = ResultStore(output, settings.identity(), recognizer.classes,
                        flush_sources=flush_sources, flush_seconds=flush_seconds)
    todo = [u for u in units if u.source not in store.done]
    todo_sources = {u.source for u in todo}
    skipped = len({u.source for u in units} - todo_sources)
    from tqdm import tqdm

    bar = tqdm(total=sum(u.work for u in todo), unit="item", desc=f"predict ({engine})",
               disable=(not progress) if progress is not None else None, file=sys.stderr,
               smoothing=0.1)
    items = 0

    def advance(n: int) -> None:
        nonlocal items
        items += n
        bar.update(n)

    def written(batch: list[SourceResult]) -> None:
        if batch and on_written:
            on_written([r.source for r in batch])

    try:
        if engine == "ray":
            from ekspresi.distributed import ray_engine

            results = ray_engine.run(todo, settings, workers=workers, progress=advance)
        else:
            results = _run_local(todo, settings, recognizer, advance)
        with closing(results):      # stops the engine's work on Ctrl-C
            for res in results:
                written(store.add(res))
    finally:
        bar.close()
        written(store.flush())      # Ctrl-C / a crash: keep every finished source
    rows = store.summary()
    summary_csv = store.write_summary(rows)
    return JobResult(Path(output), summary_csv, rows, len(todo_sources), skipped, items,
                     time.perf_counter() - t0)


def format_summary(job: JobResult, limit: int = 20) -> str:
    """A few lines for the terminal: per source faces, frames and the mean expression."""
    lines = [f"{'source':<40} {'faces':>6} {'frames':>7}  mean expression"]
    for r in job.summary[:limit]:
        name = r["source"] if len(r["source"]) <= 40 else "…" + r["source"][-39:]
        if r["status"] == "error":
            lines.append(f"{name:<40} {'-':>6} {'-':>7}  ERROR {r['error']}")
            continue
        what = f"{r['label']} {r['mean_' + r['label']]:.2f}" if r["label"] else "no face"
        lines.append(f"{name:<40} {r['faces']:>6} {str(r['frames_analyzed'] or '-'):>7}  {what}")
    if len(job.summary) > limit:
        lines.append(f"… {len(job.summary) - limit} more in {job.summary_csv}")
    rate = job.items / job.seconds if job.seconds > 0 else 0.0
    lines.append(f"{job.processed} source(s) analysed ({job.items} images + video frames, "
                 f"{rate:.1f}/s), {job.skipped} already done, {job.failed} failed; rows in "
                 f"{job.output}, summary in {job.summary_csv}")
    return "\n".join(lines) + "\n"


__all__ = ["ENGINES", "JobResult", "format_summary", "predict", "summary_path"]
