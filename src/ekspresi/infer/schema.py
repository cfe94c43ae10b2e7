"""The JSON shape of every result, as pydantic models: ``to_dict()`` of the typed results
(:mod:`ekspresi.infer.results`) is built through them, ``ekspresi predict --format json``
prints it and the web API declares it as its ``response_model``, so the CLI, the API and
``/openapi.json`` cannot disagree."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FaceModel(_Model):
    """One face: the same keys in `predict --format json`, the API and the WebSocket."""

    number: int | None = Field(None, description="1-based reading order (rows top to "
                                                 "bottom, left to right)")
    box: list[int] = Field(description="x, y, width, height in pixels of the upright image")
    label: str = Field(description="most probable emotion")
    confidence: float = Field(description="probability of `label`")
    scores: dict[str, float] = Field(description="probability per class, model's order")
    detection_score: float
    landmarks: list[list[float]] = Field(default_factory=list,
                                         description="eyes, nose, mouth/ears (x, y)")
    rotation: float | None = Field(None, description="degrees the crop was turned to level "
                                                     "the eyes (absent when none)")
    track_id: int | None = Field(None, description="videos and the real-time stream: the "
                                                  "same person across frames")
    tracked: bool | None = Field(None, description="videos: the box was carried here from an "
                                                   "earlier frame by optical flow, not "
                                                   "detected in this frame (absent: detected)")
    smoothed: bool | None = Field(None, description="videos and the real-time stream: "
                                                    "`scores` are the track's moving average "
                                                    "(see video.smoothing_s, smoothing_s)")
    raw_scores: dict[str, float] | None = Field(None, description="real-time stream, when "
                                                                  "`smoothed`: this frame's "
                                                                  "own probabilities")
    frames: int | None = Field(None, description="video track summary: frames it was seen "
                                                 "in (its scores are their mean)")
    first_frame: int | None = None
    last_frame: int | None = None


class ImageResultModel(_Model):
    """The faces of one image (or one analysed video frame)."""

    file: str | None = Field(None, description="the input's name (CLI)")
    faces: list[FaceModel]
    width: int
    height: int
    min_face_px: int | None = Field(None, description="smallest face (pixels) the detector "
                                                      "finds in this image: the limit to "
                                                      "quote when no face is found")
    timings_ms: dict[str, float] = Field(default_factory=dict,
                                         description="milliseconds per stage (decode, "
                                                     "detect, classify)")


class FrameModel(_Model):
    """One analysed frame of a video's timeline."""

    frame: int
    time: float = Field(description="seconds from the start")
    faces: list[FaceModel]


class VideoInfoModel(_Model):
    frames_read: int
    frames_analyzed: int
    fps: float
    width: int
    height: int
    detect_every: int | None = Field(None, description="the detector ran on every N-th "
                                                       "analysed frame (and early when a face "
                                                       "was lost); faces were followed by "
                                                       "optical flow in between")
    smoothing_s: float | None = Field(None, description="time constant (seconds) of each "
                                                        "track's probability smoothing; 0 = "
                                                        "off")


class VideoResultModel(_Model):
    """A video: one summary per face track (``faces``), frame counts, and the timeline."""

    file: str | None = None
    faces: list[FaceModel] = Field(description="one per track: mean probabilities over the "
                                               "frames it was seen in")
    video: VideoInfoModel
    timeline: list[FrameModel]


class CandidateModel(_Model):
    box: list[int]
    score: float
    accepted: bool = Field(description="passed the score threshold and minimum size")
    number: int | None = Field(None, description="the face's number (reading order) when "
                                                 "accepted")


class TraceModel(_Model):
    """The numbers of every stage of one image (the step-by-step page draws the pictures)."""

    width: int
    height: int
    detector: str
    classes: list[str]
    candidates: list[CandidateModel]
    faces: list[FaceModel]
    min_face_px: int
    timings_ms: dict[str, float]


class FailedInputModel(_Model):
    """An input that could not be used (CLI)."""

    file: str
    error: str
