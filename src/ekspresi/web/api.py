"""HTTP API (``/api/v1``) and the WebSocket the real-time page streams frames over."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
import time
from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ekspresi.errors import BadInputError, ConfigError
from ekspresi.imaging import read_image
from ekspresi.infer.stream import Cancelled, PushedFrames
from ekspresi.infer.stream import stream as stream_frames
from ekspresi.infer.tracking import SMOOTHING_S
from ekspresi.web.engine import MODEL_COOKIE, Engine, LoadedModel
from ekspresi.web.middleware import Busy, same_origin
from ekspresi.web.render import preview
from ekspresi.web.schemas import (
    AnalyzeOut,
    ErrorOut,
    HealthOut,
    ModelChoiceOut,
    ModelInfoOut,
    TraceOut,
    VideoOut,
    stream_message,
)
from ekspresi.web.settings import WEB_MAX_SIDE
from ekspresi.web.steps import trace_view
from ekspresi.web.uploads import (
    UPLOAD_OPENAPI,
    check_video_frames,
    decode_upload,
    read_upload,
)
from ekspresi.web.videos import (
    MAX_VIDEO_FRAMES,
    JobsBusy,
    VideoJob,
    VideoJobs,
    VideoStore,
    analyze_upload,
)

log = logging.getLogger("ekspresi.web")

#: The frame rate the real-time page's stream is followed at (it sends a new frame when the
#: last was answered: about this many a second on a laptop), so faces are detected about
#: every 0.4 s and carried by optical flow in between.
STREAM_FPS = 10.0
#: The longest ``?smoothing=`` (seconds) a stream accepts.
MAX_SMOOTHING_S = 10.0

router = APIRouter()


ERRORS = {413: {"model": ErrorOut, "description": "upload above the size limit"},
          415: {"model": ErrorOut, "description": "not an image"},
          422: {"model": ErrorOut, "description": "corrupt, empty or oversized image"},
          503: {"model": ErrorOut, "description": "no model loaded"}}


def engine_of(request: Request | WebSocket) -> Engine:
    return request.app.state.engine


def model_query() -> Any:
    """The ``?model=`` every analysing route takes (see ``GET /api/v1/models``)."""
    return Query(None, max_length=64,
                 description="a model this server offers (GET /api/v1/models); default: the "
                             f"one the pages remember (cookie `{MODEL_COOKIE}`), else the "
                             "server's --model")


def chosen(request: Request | WebSocket, model: str | None = None) -> LoadedModel:
    """The model a request uses (:meth:`Engine.choose`)."""
    return engine_of(request).choose(request, model)


@router.get("/healthz", tags=["service"], response_model=HealthOut,
            response_model_exclude_none=True, responses={503: {"model": HealthOut}})
def healthz(request: Request) -> Any:
    """Ready when a model is loaded (503 with the reason otherwise)."""
    engine = engine_of(request)
    if not engine.available:
        down = HealthOut(status="unavailable", detail=f"no model loaded: {engine.error}")
        return JSONResponse(down.model_dump(exclude_none=True), 503)
    return {"status": "ok", "model": engine.model_name}


@router.get("/api/v1/model", tags=["api"], response_model=ModelInfoOut,
            response_model_exclude_none=True, responses={503: {"model": ErrorOut}})
def model_info(request: Request, model: str | None = model_query()) -> dict[str, Any]:
    """The model in use: name, classes, input spec, detector, headline test metrics."""
    loaded = chosen(request, model)
    loaded.require()
    return loaded.info()


@router.get("/api/v1/models", tags=["api"], response_model=list[ModelChoiceOut],
            response_model_exclude_none=True)
def models(request: Request) -> list[dict[str, Any]]:
    """The models a request may choose with ``?model=``: the served one and every model
    shipped in the package, with their headline test accuracy."""
    return engine_of(request).catalogue()


def _analyze_array(loaded: LoadedModel, image: np.ndarray, **detector) -> dict[str, Any]:
    """The image's ``ImageResult.to_dict()``."""
    try:
        return loaded.require().analyze(image, **detector).to_dict()
    except (ConfigError, ValueError) as exc:   # unknown detector or sensitivity
        raise HTTPException(422, str(exc)) from None


@router.post("/api/v1/analyze", tags=["api"], response_model=AnalyzeOut,
             response_model_exclude_none=True, responses=ERRORS, openapi_extra=UPLOAD_OPENAPI)
async def analyze(request: Request,
                  preview_image: bool = Query(False, alias="preview",
                                              description="also return a display-size JPEG "
                                                          "of the upright image"),
                  detector: str | None = Query(None, description="face detector (as "
                                               "`ekspresi predict --detector`)"),
                  sensitivity: str | None = Query(None, pattern="^(low|normal|high)$",
                                                  description="low, normal or high"),
                  model: str | None = model_query()) -> dict:
    """Find every face in one image and classify its expression."""
    loaded = chosen(request, model)
    loaded.require()
    settings = request.app.state.settings
    data, name = await read_upload(request, settings.max_upload_bytes)
    start = time.perf_counter()
    image = await run_in_threadpool(decode_upload, data, name, settings.max_pixels)
    out = await run_in_threadpool(_analyze_array, loaded, image, detector=detector,
                                  sensitivity=sensitivity)
    elapsed = (time.perf_counter() - start) * 1000.0
    out.update(model=loaded.model_name, elapsed_ms=round(elapsed, 2))
    if preview_image:
        out["preview"], out["preview_scale"] = await run_in_threadpool(
            preview, image, settings.preview_side)
    return out


@router.post("/api/v1/trace", tags=["api"], response_model=TraceOut,
             response_model_exclude_none=True, responses=ERRORS, openapi_extra=UPLOAD_OPENAPI)
async def trace(request: Request, model: str | None = model_query()) -> dict:
    """Every stage of the pipeline for one image, as pictures (data URIs) and numbers:
    original, grayscale, all detector candidates, aligned crops, the exact model input,
    probabilities and an occlusion-saliency map per face. Used by the step-by-step page."""
    loaded = chosen(request, model)
    recognizer = loaded.require()
    settings = request.app.state.settings
    data, name = await read_upload(request, settings.max_upload_bytes)
    image = await run_in_threadpool(decode_upload, data, name, settings.max_pixels)
    start = time.perf_counter()
    result = await run_in_threadpool(recognizer.trace, image,
                                     saliency_max=settings.trace_saliency_faces)
    elapsed = (time.perf_counter() - start) * 1000.0
    view = await run_in_threadpool(trace_view, result, settings.trace_saliency_faces)
    view.update(model=loaded.model_name, elapsed_ms=round(elapsed, 2))
    return view


VIDEO_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                               "properties": {"file": {"type": "string",
                                                                       "format": "binary"}}}},
            "video/*": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _safe_stem(name: str) -> str:
    """A download file name from an uploaded one: no path, no quotes, ASCII only."""
    stem = name.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "video"


def video_store(request: Request) -> VideoStore:
    store = getattr(request.app.state, "videos", None)
    if store is None:
        store = request.app.state.videos = VideoStore()
    return store


@router.post("/api/v1/video", tags=["api"], response_model=VideoOut,
             response_model_exclude_none=True, responses=ERRORS, openapi_extra=VIDEO_OPENAPI)
async def video(request: Request,
                every: int | None = Query(None, ge=1, le=1000,
                                          description="analyse every N-th frame (default: "
                                                      "about 10 frames per second)"),
                model: str | None = model_query()) -> dict:
    """Analyse a short clip (at most the upload limit and """ + str(MAX_VIDEO_FRAMES) + """
    frames): faces followed across frames (``track_id``), the per-frame ``timeline``, one
    summary per track (``tracks``: mean probabilities over the frames it was seen in), and
    links to an annotated clip browsers can play (H.264 MP4 or VP8 WebM) and to the
    timeline as CSV. Used by the Video page."""
    loaded, recognizer, settings, store = _video_context(request, model)
    data, name = await read_upload(request, settings.max_upload_bytes)
    start = time.perf_counter()
    gone = threading.Event()   # set when the client disconnects: the analysis stops
    watcher = asyncio.create_task(_watch_disconnect(request, gone))
    try:
        out = await run_in_threadpool(analyze_upload, recognizer, store, data, name, every,
                                      cancelled=gone.is_set,
                                      accept=frame_limits(name, settings.max_pixels))
    except Cancelled:
        log.info("%s: client disconnected; video analysis stopped", name)
        return Response(status_code=499)
    except BadInputError as exc:
        raise HTTPException(*video_error(name, exc)) from None
    finally:
        watcher.cancel()
    return _video_links(out, loaded, start)


def _video_context(request: Request, model: str | None):
    """What both video routes need before reading the upload: the chosen model, its
    recognizer (503 when it is not loaded), the server's settings and the clip store."""
    loaded = chosen(request, model)
    return loaded, loaded.require(), request.app.state.settings, video_store(request)


def frame_limits(name: str, max_pixels: int):
    """``accept(width, height)`` for :func:`analyze_upload`: the image limits on each frame
    (422 from the container header's size, before anything is decoded)."""
    def accept(width: int, height: int) -> None:
        check_video_frames(width, height, name, max_pixels)
    return accept


async def _watch_disconnect(request: Request, gone: threading.Event,
                            every_s: float = 0.25) -> None:
    """Set ``gone`` once the client of ``request`` has disconnected."""
    while not gone.is_set():
        if await request.is_disconnected():
            gone.set()
            return
        await asyncio.sleep(every_s)


def video_error(name: str, exc: BaseException) -> tuple[int, str]:
    """HTTP status and detail for a clip that could not be analysed."""
    if isinstance(exc, HTTPException):      # refused by a check (frame size)
        return exc.status_code, str(exc.detail)
    if isinstance(exc, BadInputError):
        if "cannot open" in exc.problem or "no frames" in exc.problem \
                or "no video track" in exc.problem:
            return 415, f"{name}: not a video this server can read ({exc.problem})"
        return 422, f"{name}: {exc.problem}"
    log.exception("video job for %s failed", name, exc_info=exc)
    return 500, f"{name}: the analysis failed ({type(exc).__name__})"


def _video_links(out: dict, loaded: LoadedModel, start: float) -> dict:
    out.update(model=loaded.model_name, elapsed_ms=round((time.perf_counter() - start) * 1000, 2),
               csv_url=f"/api/v1/video/{out['id']}/timeline.csv")
    if "clip_type" in out:   # an annotated clip was written
        out["clip_url"] = f"/api/v1/video/{out['id']}/clip"
    return out


def video_jobs(request: Request) -> VideoJobs:
    jobs = getattr(request.app.state, "video_jobs", None)
    if jobs is None:
        jobs = request.app.state.video_jobs = VideoJobs()
    return jobs


@router.post("/api/v1/video/jobs", tags=["api"], status_code=202, responses=ERRORS,
             openapi_extra=VIDEO_OPENAPI)
async def video_job(request: Request,
                    every: int | None = Query(None, ge=1, le=1000,
                                              description="analyse every N-th frame "
                                                          "(default: about 10 frames per "
                                                          "second)"),
                    model: str | None = model_query()) -> dict:
    """Start analysing a clip in the background (as ``POST /api/v1/video``) and answer at
    once (202) with its ``id``, ``events_url`` (server-sent events: ``progress`` with
    ``done``, ``total``, ``percent``, ``eta_s``; then one ``result`` with the answer of
    ``POST /api/v1/video``, ``failed`` with ``status`` and ``detail``, or ``cancelled``)
    and ``cancel_url`` (``DELETE``: stops it at the next frame and removes its files).
    Closing the event stream before the end cancels the job too."""
    loaded, recognizer, settings, store = _video_context(request, model)
    data, name = await read_upload(request, settings.max_upload_bytes)
    start = time.perf_counter()

    def work(job: VideoJob) -> dict:
        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        out = analyze_upload(recognizer, store, data, name, every, progress=progress,
                             cancelled=job.cancel.is_set,
                             accept=frame_limits(name, settings.max_pixels))
        return _video_links(out, loaded, start)

    try:
        job = video_jobs(request).start(work, name, lambda exc: video_error(name, exc))
    except JobsBusy as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503,
                            headers={"Retry-After": "5"})
    base = f"/api/v1/video/jobs/{job.id}"
    return {"id": job.id, "events_url": f"{base}/events", "cancel_url": base,
            "status_url": base}


def _job(request: Request, job_id: str) -> VideoJob:
    job = video_jobs(request).get(job_id)
    if job is None:
        raise HTTPException(404, "no such video job (finished ones are kept 10 minutes)")
    return job


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


@router.get("/api/v1/video/jobs/{job_id}", tags=["api"], responses={404: {"model": ErrorOut}})
def video_job_status(request: Request, job_id: str) -> dict:
    """A background job's progress (as its ``progress`` events), with ``result`` or
    ``error`` once it has ended."""
    job = _job(request, job_id)
    out = job.progress()
    if job.result is not None:
        out["result"] = job.result
    if job.error is not None:
        out["error"] = {"status": job.error[0], "detail": job.error[1]}
    return out


@router.delete("/api/v1/video/jobs/{job_id}", tags=["api"],
               responses={404: {"model": ErrorOut}})
def video_job_cancel(request: Request, job_id: str) -> dict:
    """Cancel a background job: it stops at the next frame and leaves no file behind."""
    job = _job(request, job_id)
    job.cancel.set()
    return job.progress()


@router.get("/api/v1/video/jobs/{job_id}/events", tags=["api"],
            responses={404: {"model": ErrorOut}})
async def video_job_events(request: Request, job_id: str) -> StreamingResponse:
    """Server-sent events of a background job (see ``POST /api/v1/video/jobs``)."""
    job = _job(request, job_id)

    async def events():
        last = None
        try:
            while True:
                snap = job.progress()
                if job.finished is not None:
                    yield _sse("progress", snap)
                    if job.result is not None:
                        yield _sse("result", job.result)
                    elif job.error is not None:
                        yield _sse("failed", {"status": job.error[0], "detail": job.error[1]})
                    else:
                        yield _sse("cancelled", snap)
                    return
                if snap["done"] != (last or {}).get("done"):
                    yield _sse("progress", snap)
                    last = snap
                if await request.is_disconnected():
                    job.cancel.set()
                    return
                await asyncio.sleep(0.25)
        except asyncio.CancelledError:
            job.cancel.set()     # the page went away: stop the work
            raise

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/api/v1/video/{video_id}/clip", tags=["api"], responses={404: {"model": ErrorOut}})
def video_clip(request: Request, video_id: str) -> FileResponse:
    """The annotated clip of a recent ``POST /api/v1/video`` (the last few are kept)."""
    item = video_store(request).get(video_id)
    if item is None or item.clip is None or not item.clip.is_file():
        raise HTTPException(404, "no such video (only the last few analysed clips are kept)")
    stem = _safe_stem(item.name)
    return FileResponse(item.clip, media_type=item.clip_type,
                        filename=f"{stem}.annotated{item.clip.suffix}",
                        content_disposition_type="inline")


@router.get("/api/v1/video/{video_id}/timeline.csv", tags=["api"],
            responses={404: {"model": ErrorOut}})
def video_csv(request: Request, video_id: str) -> Response:
    """The timeline of a recent ``POST /api/v1/video`` as CSV (the columns of
    ``ekspresi predict --format csv``: one row per face and analysed frame)."""
    item = video_store(request).get(video_id)
    if item is None:
        raise HTTPException(404, "no such video (only the last few analysed clips are kept)")
    stem = _safe_stem(item.name)
    return Response(item.csv, media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{stem}.timeline.csv"'})


def _decode_frame(data: bytes, max_pixels: int) -> np.ndarray:
    return read_image(data, name="frame", max_pixels=max_pixels, max_side=WEB_MAX_SIDE)


@router.websocket("/api/v1/stream")
async def stream(ws: WebSocket) -> None:
    """Real-time analysis: the client sends one encoded frame (binary JPEG/PNG) and waits
    for its JSON answer before sending the next, so at most one frame per connection is
    ever queued (back-pressure by protocol). A text message ``{"time": seconds}`` before a
    frame gives its capture time (any clock; unanswered), else its arrival time counts.
    Each connection follows its faces (``track_id``) and smooths each track's probabilities
    over ``?smoothing=`` seconds (default :data:`~ekspresi.infer.tracking.SMOOTHING_S`,
    0 = off; the frame's own are in ``raw_scores``). ``?model=`` (or the pages' cookie)
    chooses the model, as on every route. A bad frame gets ``{"error": ...}``
    and the stream goes on; a frame above the upload limit closes the socket (1009). A
    socket that sends nothing for ``stream_idle_timeout`` seconds is closed (1000), and
    beyond ``max_streams`` open sockets a new one is closed at once (1013), so idle streams
    never take every connection the server has for HTTP."""
    settings = ws.app.state.settings
    origin = ws.headers.get("origin")
    if origin and origin not in settings.cors_origins \
            and not same_origin(origin, ws.headers.get("host")):
        # Browsers let any web site open a WebSocket to localhost; only our own pages (and
        # --cors-origin ones) may use this server's CPU.
        await ws.close(code=1008)
        return
    await ws.accept()
    try:
        loaded = chosen(ws)             # ?model= on the socket's URL, else the cookie
    except HTTPException as exc:
        await ws.send_text(stream_message({"error": str(exc.detail)}))
        await ws.close(code=1008)
        return
    if not loaded.available:
        await ws.send_text(stream_message({"error": f"no model loaded: {loaded.error}"}))
        await ws.close(code=1011)
        return
    smoothing = _stream_smoothing(ws.query_params.get("smoothing"))
    if smoothing is None:
        await ws.send_text(stream_message({"error": "smoothing must be seconds between 0 "
                                                    f"(off) and {MAX_SMOOTHING_S:g}"}))
        await ws.close(code=1008)
        return
    state = ws.app.state
    if getattr(state, "streams", 0) >= settings.max_streams:
        # every stream holds one of uvicorn's connections: leave room for HTTP
        await ws.close(code=1013, reason="too many open streams; try again later")
        return
    state.streams = getattr(state, "streams", 0) + 1
    try:
        await _stream_frames(ws, loaded, settings, smoothing)
    finally:
        state.streams -= 1


def _stream_smoothing(value: str | None) -> float | None:
    """``?smoothing=`` in seconds (absent: :data:`SMOOTHING_S`), None when not valid."""
    if value is None:
        return SMOOTHING_S
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= MAX_SMOOTHING_S else None


def _frame_time(text: str | None) -> float | None:
    """The capture time of ``{"time": seconds}``; None when ``text`` is not that."""
    try:
        data = json.loads(text or "")
    except ValueError:
        return None
    t = data.get("time") if isinstance(data, dict) and set(data) == {"time"} else None
    if isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t):
        return float(t)
    return None


async def _stream_frames(ws: WebSocket, loaded: LoadedModel, settings,
                         smoothing: float) -> None:
    frame = 0
    captured: float | None = None   # the next frame's time, from the client
    pushed = PushedFrames(fps=STREAM_FPS)   # decoded frames go through the one frame loop
    results = stream_frames(loaded.recognizer, pushed, smoothing=smoothing,
                            raw_scores=smoothing > 0)
    try:
        while True:
            try:
                message = await asyncio.wait_for(ws.receive(), settings.stream_idle_timeout)
            except asyncio.TimeoutError:
                await ws.close(code=1000, reason=f"no frame for "
                                                 f"{settings.stream_idle_timeout:g} s")
                return
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                captured = _frame_time(message.get("text"))
                if captured is None:
                    await ws.send_text(stream_message({
                        "error": 'send frames as binary messages (JPEG or PNG bytes), each '
                                 'after an optional {"time": seconds}'}))
                continue
            frame += 1
            if len(data) > settings.max_upload_bytes:
                await ws.send_text(stream_message({"error": "frame above the upload limit",
                                                   "frame": frame}))
                await ws.close(code=1009)
                return
            t, captured = captured, None
            try:
                async with ws.app.state.upload_gate.slot():  # shared with HTTP uploads
                    start = time.perf_counter()
                    image = await run_in_threadpool(_decode_frame, data, settings.max_pixels)
                    pushed.push(image, t)
                    _, result = await run_in_threadpool(next, results)
                out = result.to_dict()
                out["elapsed_ms"] = round((time.perf_counter() - start) * 1000.0, 2)
                out["time"] = result.time
                out["smoothing_s"] = smoothing
            except BadInputError as exc:
                out = {"error": str(exc)}
            except Busy as exc:
                out = {"error": f"{exc}; try again shortly", "busy": True}
            out["frame"] = frame
            await ws.send_text(stream_message(out))
    except WebSocketDisconnect:
        return
    except HTTPException as exc:  # pragma: no cover - engine vanished mid-stream
        await ws.close(code=1011, reason=str(exc.detail)[:120])
    finally:
        pushed.close()
