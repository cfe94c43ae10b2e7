"""Typed results (ImageResult, VideoResult, Trace): their JSON is the schema's, they draw
and save themselves; ``stream()`` over an image, a synthetic video and pushed frames."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from infer_support import PHOTO, collage, in_face_region, no_face_image, photo_bgr, write_clip

from ekspresi.errors import BadInputError
from ekspresi.infer.draw import COLOURS, colour_of, hex_to_bgr
from ekspresi.infer.results import ImageResult, Trace, VideoResult
from ekspresi.infer.schema import ImageResultModel, TraceModel, VideoResultModel
from ekspresi.infer.stream import PushedFrames, analyze_video, stream


def test_image_result_is_a_face_sequence_with_the_schema_json(recognizer):
    result = recognizer.analyze(PHOTO, name="astronaut.jpg")
    assert isinstance(result, ImageResult) and len(result) == 1
    assert result[0] is result.faces[0] and list(result) == result.faces
    assert in_face_region(result[0].box)
    d = result.to_dict()
    assert ImageResultModel.model_validate(d).model_dump(exclude_none=True) == d
    assert d["file"] == "astronaut.jpg" and (d["width"], d["height"]) == (512, 512)
    assert set(d["timings_ms"]) == {"decode", "detect", "classify"}
    assert d["faces"][0]["number"] == 1 and d["min_face_px"] > 0
    assert recognizer.analyze(no_face_image()).to_dict()["faces"] == []


def test_image_result_plots_in_the_palette_and_saves(recognizer, tmp_path):
    result = recognizer.analyze(photo_bgr())
    picture = result.plot(bars=False)
    x, y, w, h = result[0].box
    assert picture.shape == (512, 512, 3)
    assert tuple(int(v) for v in picture[y + h // 2, x]) == COLOURS.get(
        result[0].label, hex_to_bgr(colour_of(result[0].label)))
    png = result.save(tmp_path / "out" / "a.png")
    assert np.array_equal(cv2.imread(str(png)), result.plot())
    as_json = json.loads(result.save(tmp_path / "a.json").read_text())
    assert as_json["faces"] == result.to_dict()["faces"]
    with pytest.raises(BadInputError):
        result.save(tmp_path / "a.unknown")
    bare = ImageResult(result.faces, 512, 512)   # no image kept: plot needs one
    with pytest.raises(ValueError):
        bare.plot()
    assert bare.plot(photo_bgr()).shape == (512, 512, 3)


def test_trace_numbers_follow_the_schema_and_plot_the_candidates(recognizer, tmp_path):
    trace = recognizer.trace(collage(2), saliency=False)
    assert isinstance(trace, Trace) and len(trace.faces) == 2
    d = trace.to_dict()
    assert TraceModel.model_validate(d).model_dump(exclude_none=True) == d
    assert sum(c["accepted"] for c in d["candidates"]) == 2
    assert d["faces"] == [f.to_dict() for f in recognizer.analyze(collage(2))]
    assert trace.plot().shape == trace.original.shape
    assert json.loads(trace.save(tmp_path / "t.json").read_text()) == d


def test_stream_over_an_image_file_yields_it_once(recognizer):
    items = list(stream(recognizer, PHOTO))
    assert len(items) == 1
    frame, result = items[0]
    assert frame.shape == (512, 512, 3) and result.frame == 0 and len(result) == 1
    assert result.faces == recognizer.analyze(PHOTO).faces


def test_stream_over_a_video_tracks_faces_and_carries_results_between(recognizer, tmp_path):
    clip = tmp_path / "clip.avi"
    write_clip(clip, frames=9, fourcc="MJPG")
    items = list(stream(recognizer, clip, every=3))
    assert len(items) == 9
    results = [r for _, r in items]
    assert [r.frame for r in results] == [0, 0, 0, 3, 3, 3, 6, 6, 6]
    assert results[1] is results[0] and results[3] is not results[0]   # carried over
    assert results[3].time == pytest.approx(0.3)
    assert {r[0].track_id for r in results} == {1}
    with pytest.raises(BadInputError, match="longer than 4 frames"):
        list(stream(recognizer, clip, max_frames=4))
    with pytest.raises(BadInputError, match="no such file"):
        list(stream(recognizer, tmp_path / "missing.avi"))


def test_analyze_video_gives_a_video_result(recognizer, tmp_path):
    clip = tmp_path / "clip.avi"
    write_clip(clip, frames=9, fourcc="MJPG")
    video = analyze_video(recognizer, clip, every=4)
    assert isinstance(video, VideoResult)
    assert (video.frames_read, video.frames_analyzed) == (9, 3)
    assert [r.frame for r in video.frames] == [0, 4, 8]
    assert all(r.image is None for r in video.frames)   # frames are not kept in memory
    d = video.to_dict()
    assert VideoResultModel.model_validate(d).model_dump(exclude_none=True) == d
    assert d["faces"][0]["frames"] == 3 and d["video"]["fps"] == pytest.approx(10.0)
    chart = video.plot()
    assert chart.shape == (240, 640, 3) and (chart != 255).any()
    assert json.loads(video.save(tmp_path / "v.json").read_text()) == d


def test_stream_over_pushed_frames(recognizer):
    """The WebSocket's way: push a decoded frame, then read the stream's next item."""
    pushed = PushedFrames()
    frames = stream(recognizer, pushed, track=False)
    pushed.push(photo_bgr())
    _, first = next(frames)
    pushed.push(no_face_image())
    _, second = next(frames)
    assert len(first) == 1 and first[0].track_id is None and len(second) == 0
    assert (first.frame, second.frame) == (0, 1)
    pushed.close()
    assert list(frames) == []
    # any iterable of frames works the same way
    assert [len(r) for _, r in stream(recognizer, [photo_bgr(), collage(2)])] == [1, 2]


def test_pushed_frames_are_timed_by_the_sender_s_clock(recognizer):
    """The real-time page's capture times: seconds since the first frame, never backwards;
    faces tracked and smoothed, the frame's own scores kept as raw_scores."""
    pushed = PushedFrames(fps=10.0)
    frames = stream(recognizer, pushed, raw_scores=True)
    times = []
    for t in (100.0, 100.5, 100.2, 103.0):           # one arrives out of order
        pushed.push(photo_bgr(), t)
        _, result = next(frames)
        times.append(result.time)
        assert result[0].track_id == 1 and set(result[0].extra["raw_scores"]) == set(
            result[0].scores)
    assert times == [0.0, 0.5, 0.5, 3.0]
    pushed.close()


def test_a_camera_that_cannot_be_opened_is_a_clear_error(recognizer):
    with pytest.raises(BadInputError, match="camera 97"):
        list(stream(recognizer, 97))
