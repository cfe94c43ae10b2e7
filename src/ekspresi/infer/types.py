"""Result types of the inference engine, shared by the Python API, the CLI and the web app."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Face:
    """One recognised face: where it is and what the classifier thinks of it."""

    box: tuple[int, int, int, int]          # x, y, w, h in the (EXIF-upright) input image
    detection_score: float
    scores: dict[str, float]                # class -> probability, model's class order
    landmarks: tuple[tuple[float, float], ...] = ()
    track_id: int | None = None             # set by video tracking only
    #: 1-based position in reading order (rows top to bottom, left to right), the number
    #: the CLI, JSON, annotated images and the API show; ``None`` before numbering
    number: int | None = None
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        return max(self.scores, key=self.scores.__getitem__)

    @property
    def confidence(self) -> float:
        return self.scores[self.label]

    def to_dict(self) -> dict:
        """The one face JSON shape (:class:`ekspresi.infer.schema.FaceModel`): used by
        `ekspresi predict --format json`, the web API and its WebSocket. ``extra`` (the
        eye-levelling rotation, a track's frame counts) is part of it."""
        from ekspresi.infer.schema import FaceModel

        d = {"number": self.number, "box": [int(v) for v in self.box], "label": self.label,
             "confidence": round(float(self.confidence), 6),
             "scores": {k: round(float(v), 6) for k, v in self.scores.items()},
             "detection_score": round(float(self.detection_score), 6),
             "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
             "track_id": self.track_id, **self.extra}
        return FaceModel(**d).model_dump(exclude_none=True)
