"""Response models of every HTTP endpoint and WebSocket message of the API, built on the
result models of :mod:`ekspresi.infer.schema` (what ``to_dict()`` of the typed results
returns) plus what the server adds (model name, elapsed time, links). Routes declare them
as ``response_model``, so ``/openapi.json`` documents them; the WebSocket's messages are
validated through them and added to the schema's components by :func:`document_stream`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from ekspresi.infer.schema import (
    CandidateModel,
    FaceModel,
    FrameModel,
    ImageResultModel,
    TraceModel,
    VideoInfoModel,
)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(_Out):
    detail: str


class HealthOut(_Out):
    status: str = Field(description="`ok`, or `unavailable` (503) with the reason")
    model: str | None = None
    detail: str | None = None


class ModelInfoOut(_Out):
    """``GET /api/v1/model``: what is serving."""

    loaded: bool
    choice: str | None = Field(None, description="its name in the model switch "
                                                 "(GET /api/v1/models)")
    name: str | None = None
    classes: list[str] = Field(default_factory=list)
    input: dict[str, Any] | None = Field(None, description="the model input spec")
    sha256: str | None = None
    bundle: str | None = Field(None, description="the bundle folder's name")
    detector: str | None = None
    created: str | None = None
    ekspresi_version: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict,
                                    description="headline test metrics (per test set)")
    error: str | None = None


class ModelChoiceOut(_Out):
    """One entry of ``GET /api/v1/models``."""

    choice: str = Field(description="what ?model= takes")
    served: bool = Field(description="the model `ekspresi serve --model` named: used "
                                     "when a request chooses none")
    loaded: bool = Field(description="already loaded (the first request of another "
                                     "takes a moment longer)")
    name: str | None = None
    input_size: int | None = None
    classes: int | None = None
    metrics: dict[str, Any] = Field(default_factory=dict,
                                    description="headline test metrics (per test set)")
    error: str | None = None


class AnalyzeOut(ImageResultModel):
    """``POST /api/v1/analyze``: the image's result plus what the server adds."""

    model: str | None
    elapsed_ms: float = Field(description="decode + detection + classification time")
    preview: str | None = Field(None, description="JPEG data URI of the upright image at "
                                                  "display size (only with ?preview=true)")
    preview_scale: float | None = Field(None, description="preview pixels per image pixel")


class StageOut(_Out):
    """One picture (or the probabilities) of the step-by-step page."""

    key: str
    title: str
    image: str | None = Field(None, description="data URI (none for the probabilities)")
    caption: str
    pixelated: bool = False
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="the caption's numbers, for translations")
    candidates: list[CandidateModel] | None = None
    scores: dict[str, float] | None = None


class TraceFaceOut(FaceModel):
    index: int = Field(description="0-based position in reading order")
    stages: list[StageOut]


class TraceOut(TraceModel):
    """``POST /api/v1/trace``: the trace's numbers, its pictures, per face its stages."""

    faces: list[TraceFaceOut]  # type: ignore[assignment]
    stages: list[StageOut]
    model: str | None
    elapsed_ms: float


class VideoOut(_Out):
    """``POST /api/v1/video``: a video's result (``faces`` named ``tracks``) plus links."""

    id: str
    file: str | None = None
    every: int = Field(description="every N-th frame was analysed")
    duration_s: float
    tracks: list[FaceModel] = Field(description="one per face track: mean probabilities "
                                                "over the frames it was seen in")
    video: VideoInfoModel
    timeline: list[FrameModel]
    model: str | None
    elapsed_ms: float
    csv_url: str
    clip_url: str | None = None
    clip_type: str | None = None


class StreamFrameOut(ImageResultModel):
    """WebSocket ``/api/v1/stream``: the answer to one frame. Each face has a ``track_id``
    (the same person across this connection's frames); with smoothing on its ``scores``,
    ``label`` and ``confidence`` are the track's moving average (``smoothed``) and
    ``raw_scores`` are this frame's own."""

    frame: int = Field(description="1-based count of frames received on this connection")
    time: float = Field(description="seconds since this connection's first frame: the "
                                    "client's capture times (a `{\"time\": s}` text "
                                    "message before the frame), else arrival times")
    smoothing_s: float = Field(description="time constant (s) of the per-track smoothing; "
                                           "0 = off (`?smoothing=0`): `scores` are raw")
    elapsed_ms: float


class StreamErrorOut(_Out):
    """WebSocket ``/api/v1/stream``: a frame (or the stream) that could not be analysed."""

    error: str
    frame: int | None = None
    busy: bool | None = Field(None, description="the server is at capacity; send again")


def stream_message(out: dict[str, Any]) -> str:
    """A WebSocket message as JSON, validated by its model."""
    model = StreamErrorOut if "error" in out else StreamFrameOut
    return model.model_validate(out).model_dump_json(exclude_none=True)


def document_stream(app: FastAPI) -> None:
    """FastAPI leaves WebSocket routes out of ``/openapi.json``: add the stream's message
    models to its components so clients find them there too."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = base()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (StreamFrameOut, StreamErrorOut):
                js = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(js.pop("$defs", {}))
                components[model.__name__] = js
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
