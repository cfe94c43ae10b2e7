"""Videos: faces followed between detections by optical flow (every frame classified), one
track per person across a gap, probability smoothing, H.264 MP4 written where asked
(PyAV), and bad clips (truncated, no frames, one frame, variable frame rate, rotated,
audio only) through the CLI and the web API: a clear error, never a 5xx, no files left.
Clips are made here with PyAV and OpenCV, a few dozen small frames each."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from infer_support import photo_bgr, run_cli, write_clip

from ekspresi.errors import BadInputError
from ekspresi.infer.stream import analyze_video
from ekspresi.infer.tracking import FaceFollower
from ekspresi.infer.video import IouTracker, iou, probe_video

av = pytest.importorskip("av")
needs_h264 = pytest.mark.skipif("libx264" not in av.codecs_available,
                                reason="this PyAV has no libx264")


def face_frames(n: int, size=(320, 240), step: int = 4, gap: range = range(0)):
    """The face photo moving right ``step`` px a frame on a textured background; absent
    during ``gap``."""
    w, h = size
    face = cv2.resize(photo_bgr()[10:250, 120:330], (150, 170), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:h, 0:w]
    bg = (((xx // 8 + yy // 8) % 2) * 40 + 80).astype(np.uint8)
    for i in range(n):
        frame = cv2.cvtColor(bg, cv2.COLOR_GRAY2BGR)
        if i not in gap:
            x = 20 + step * i
            frame[30:200, x:x + 150] = face
        yield frame


def write_av(path: Path, frames, fps: int = 10, rotation: int = 0, pts=None,
             size=(320, 240)) -> Path:
    """Encode ``frames`` (``size``) as H.264 with PyAV (``pts``: per-frame timestamps in
    1/1000 s for a variable frame rate; ``rotation``: display-matrix rotation,
    counter-clockwise). No frames gives a clip with a video track and nothing in it."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height = size
        s.pix_fmt = "yuv420p"
        if pts is not None:
            s.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            s.set_display_rotation(rotation)
        out.start_encoding()
        for i, frame in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(frame, format="bgr24")
            if pts is not None:
                vf.pts, vf.time_base = pts[i], Fraction(1, 1000)
            for packet in s.encode(vf):
                out.mux(packet)
        for packet in s.encode():
            out.mux(packet)
    return path


# -- following faces -----------------------------------------------------------------------------
def test_faces_are_followed_between_detections_and_every_frame_is_classified(recognizer):
    frames = list(face_frames(16))
    follower = FaceFollower(recognizer, fps=10.0, detect_every=5, smoothing=0)
    results = [follower.step(f, i, i / 10) for i, f in enumerate(frames)]
    assert follower.detections == 4                  # frames 0, 5, 10, 15
    assert all(len(r) == 1 for r in results)         # every frame has the face
    assert {r[0].track_id for r in results} == {1}
    assert [bool(r[0].extra.get("tracked")) for r in results[:6]] == [False] + [True] * 4 + [False]
    # the carried boxes follow the face as closely as detecting on every frame would
    for frame, r in zip(frames, results):
        ref = recognizer.analyze(frame)
        assert iou(r[0].box, ref[0].box) > 0.7
    xs = [r[0].box[0] for r in results]
    assert xs[4] - xs[0] >= 10                        # it moved right, and so did the box
    # detecting on every frame gives the same faces as analysing each frame alone
    every = FaceFollower(recognizer, fps=10.0, detect_every=1, smoothing=0)
    first = every.step(frames[3], 3, 0.3)
    assert [f.box for f in first] == [f.box for f in recognizer.analyze(frames[3])]


def test_one_person_keeps_one_track_across_a_gap(recognizer):
    # gone for a second (10 frames at 10 fps), then back a little further right
    frames = list(face_frames(30, step=2, gap=range(10, 20)))
    follower = FaceFollower(recognizer, fps=10.0, detect_every=3, smoothing=0)
    results = [follower.step(f, i, i / 10) for i, f in enumerate(frames)]
    ids = {f.track_id for r in results for f in r}
    assert ids == {1}
    assert all(len(r) == 1 for r in results[:10]) and all(len(r) == 1 for r in results[21:])
    # a vanished face is dropped by the second detection that misses it (frame 15)
    assert all(len(r) == 0 for r in results[15:20])


def test_iou_tracker_joins_a_nearby_unseen_track_within_its_reach():
    t = IouTracker.for_video(10.0, 1)                 # 2 s of memory, reach 1.5 widths
    assert t.assign([(100, 100, 50, 50)]) == [1]
    for _ in range(5):
        t.carry({})                                   # half a second unseen
    assert t.assign([(150, 110, 52, 52)]) == [1]      # moved 50 px, no overlap: same person
    assert t.assign([(150, 110, 52, 52), (10, 10, 100, 100)]) == [1, 2]   # new size: new id
    plain = IouTracker(max_age=5)                     # reach 0: overlap only, as before
    plain.assign([(100, 100, 50, 50)])
    plain.assign([])
    assert plain.assign([(150, 110, 52, 52)]) == [2]


def test_smoothing_steadies_a_flickering_label(recognizer):
    f = FaceFollower(recognizer, fps=25.0, smoothing=0.5)
    labels = []
    for i in range(50):                               # the raw answer flips every frame
        raw = {"sad": 0.7, "neutral": 0.3} if i % 2 else {"sad": 0.4, "neutral": 0.6}
        s = f._smooth(7, raw, i / 25)
        labels.append(max(s, key=s.get))
        assert abs(sum(s.values()) - 1) < 1e-9
    changes = sum(a != b for a, b in zip(labels, labels[1:]))
    # the raw label changes 49 times; smoothed it changes while crossing over, then
    # settles on the answer on average
    assert changes <= 3 and set(labels[-20:]) == {"sad"}
    steady = FaceFollower(recognizer, fps=25.0, smoothing=0.5)
    for i in range(50):                               # a real change shows within ~2 tau
        s = steady._smooth(1, {"sad": 1.0, "happy": 0.0} if i < 25 else
                           {"sad": 0.0, "happy": 1.0}, i / 25)
    assert s["happy"] > 0.8


def test_video_result_says_how_it_was_analysed(recognizer, tmp_path):
    clip = write_av(tmp_path / "c.mp4", face_frames(12))
    v = analyze_video(recognizer, clip)
    info = v.to_dict()["video"]
    assert info["detect_every"] == 4 and info["smoothing_s"] == 0.5   # 10 fps: every 0.4 s
    faces = [f for row in v.to_dict()["timeline"] for f in row["faces"]]
    assert len(faces) == 12 and all(f["smoothed"] for f in faces)
    assert sum(bool(f.get("tracked")) for f in faces) == 9
    raw = analyze_video(recognizer, clip, smoothing=0, detect_every=1).to_dict()
    assert raw["video"]["smoothing_s"] == 0
    assert not any("smoothed" in f or "tracked" in f for row in raw["timeline"]
                   for f in row["faces"])


# -- writing H.264 --------------------------------------------------------------------------------
@needs_h264
def test_annotated_clip_is_h264_mp4_at_the_path_asked_for(capsys, conv_bundle, tmp_path):
    clip = write_clip(tmp_path / "in.avi", frames=15, fourcc="MJPG")
    out = tmp_path / "out" / "annotated.mp4"
    code, stdout, err = run_cli(capsys, "predict", clip, "--model", conv_bundle,
                                "--annotate", out, "--format", "json")
    assert code == 0, err
    assert out.is_file() and not out.with_suffix(".webm").exists()
    assert "not supported" not in err and "tag" not in err      # no OpenCV codec noise
    assert "%|" not in err                                      # no progress bar when piped
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(s)]
    assert len(frames) == 15 and frames[0].shape == (240, 320, 3)
    head = out.read_bytes()
    assert head.index(b"moov") < head.index(b"mdat")            # +faststart: plays at once
    # boxes were drawn: the annotated frame differs from the input where the face is
    src = cv2.VideoCapture(str(clip))
    ok, first = src.read()
    src.release()
    assert ok and np.abs(frames[0].astype(int) - first.astype(int)).max() > 100
    res = json.loads(stdout)[0]
    assert res["video"]["frames_read"] == 15 and len(res["timeline"]) == 15


def test_webm_fallback_is_said_once(tmp_path, monkeypatch, caplog):
    from ekspresi.infer import video

    monkeypatch.setattr(video, "can_write", lambda suffix: suffix == ".webm")
    monkeypatch.setattr(video, "_warned_webm", False)
    for name in ("a.mp4", "b.mp4"):
        writer, path = video.open_writer(tmp_path / name, 10.0, (64, 48))
        writer.release()
        assert path == (tmp_path / name).with_suffix(".webm")
    assert caplog.text.count("WebM (VP8)") == 1


# -- bad clips ---------------------------------------------------------------------------------
def _bad_clips(tmp: Path) -> dict[str, tuple[Path, str | None]]:
    """name -> (clip, None when it must be analysed, else a word of its error)."""
    good = write_av(tmp / "good.mp4", face_frames(12))
    data = good.read_bytes()
    out = {"truncated": (tmp / "truncated.mp4", "cannot open"),
           "no-frames": (write_av(tmp / "empty.mp4", []), "no "),   # no frames / no video track
           "one-frame": (write_av(tmp / "one.mp4", face_frames(1)), None),
           "vfr": (write_av(tmp / "vfr.mp4", face_frames(8),
                            pts=[0, 100, 150, 400, 450, 500, 900, 1000]), None),
           "rotated": (write_av(tmp / "rotated.mp4", face_frames(6), rotation=90), None),
           "audio-only": (tmp / "audio.mp4", "no video track"),
           "garbage": (tmp / "garbage.mp4", "cannot open")}
    (tmp / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (tmp / "garbage.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with av.open(str(tmp / "audio.mp4"), "w") as a:
        s = a.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate = 16000
        for i in range(10):
            frame.pts = i * 1024
            for p in s.encode(frame):
                a.mux(p)
        for p in s.encode():
            a.mux(p)
    return out


@pytest.fixture(scope="module")
def bad_clips(tmp_path_factory):
    return _bad_clips(tmp_path_factory.mktemp("bad"))


def test_bad_clips_in_the_python_api(recognizer, bad_clips, tmp_path):
    for name, (clip, problem) in bad_clips.items():
        out = tmp_path / f"{name}.mp4"
        if problem is None:
            v = analyze_video(recognizer, clip, annotate=out)
            assert v.frames_read >= 1 and out.is_file(), name
            continue
        with pytest.raises(BadInputError) as err:
            analyze_video(recognizer, clip, annotate=out)
        assert problem in err.value.problem, name
        assert not out.exists(), name                   # nothing half-written left


def test_a_clip_cut_off_midway_gives_the_frames_before_the_cut(recognizer, tmp_path, caplog):
    from ekspresi.infer.video import H264Writer

    full = tmp_path / "full.mp4"
    writer = H264Writer(full, 10.0, (320, 240))          # +faststart: the index comes first
    for frame in face_frames(30, step=2):
        writer.write(frame)
    writer.release()
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    v = analyze_video(recognizer, cut, annotate=tmp_path / "out.mp4")
    assert 5 <= v.frames_read < 30 and (tmp_path / "out.mp4").is_file()
    assert all(len(r) == 1 for r in v.frames)


def test_variable_frame_rate_is_timed_by_timestamps(recognizer, bad_clips):
    v = analyze_video(recognizer, bad_clips["vfr"][0])
    assert [r.time for r in v.frames] == [0.0, 0.1, 0.15, 0.4, 0.45, 0.5, 0.9, 1.0]


def test_rotated_phone_clip_is_turned_upright(recognizer, bad_clips):
    clip = bad_clips["rotated"][0]
    info = probe_video(clip)
    assert (info.rotation, info.width, info.height) == (90, 240, 320)
    v = analyze_video(recognizer, clip)
    assert (v.width, v.height) == (240, 320)
    # upright again (turned back by 90 degrees clockwise), the face is found as in the
    # unrotated frames; read sideways it would not be
    assert all(len(r) == 1 for r in v.frames)


def test_bad_clips_in_the_cli(capsys, conv_bundle, bad_clips, tmp_path):
    for name, (clip, problem) in bad_clips.items():
        code, out, err = run_cli(capsys, "predict", clip, "--model", conv_bundle,
                                 "--annotate", tmp_path / f"{name}.mp4", "--format", "json")
        if problem is None:
            assert code == 0, (name, err)
        else:
            assert code == 1 and err.count("error:") == 1, (name, err)
            assert "Traceback" not in err
            assert problem in json.loads(out)[0]["error"], name


def _store(client):
    from ekspresi.web.videos import VideoStore

    if getattr(client.app.state, "videos", None) is None:
        client.app.state.videos = VideoStore()
    return client.app.state.videos


def test_bad_clips_in_the_web_api(client, bad_clips):
    earlier = set(_store(client).root.iterdir())
    for name, (clip, problem) in bad_clips.items():
        r = client.post("/api/v1/video",
                        files={"file": (clip.name, clip.read_bytes(), "video/mp4")})
        if problem is None:
            assert r.status_code == 200, (name, r.text)
            assert r.json()["clip_type"] == "video/mp4"
        else:
            assert r.status_code in (415, 422), (name, r.status_code, r.text)
            assert r.json()["detail"].startswith(clip.name)
    store = _store(client)
    kept = set(store.root.iterdir()) - earlier
    assert len(kept) == 3                              # the three analysed clips, nothing else
    assert not list(store.root.glob("*/input*"))       # uploads are removed after analysis


# -- background jobs with progress ----------------------------------------------------------------
def _events(client, url: str) -> list[tuple[str, dict]]:
    out = []
    with client.stream("GET", url) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                out.append((event, json.loads(line[6:])))
    return out


def test_video_job_reports_progress_then_the_result(client, tmp_path):
    clip = write_av(tmp_path / "c.mp4", face_frames(20))
    r = client.post("/api/v1/video/jobs", params={"every": 2},
                    files={"file": ("c.mp4", clip.read_bytes(), "video/mp4")})
    assert r.status_code == 202, r.text
    job = r.json()
    events = _events(client, job["events_url"])
    kinds = [e for e, _ in events]
    assert kinds[-1] == "result" and "progress" in kinds
    progress = [d for e, d in events if e == "progress"]
    assert progress[-1]["done"] == 20 and progress[-1]["total"] == 20
    assert progress[-1]["percent"] == 100.0 and progress[-1]["eta_s"] == 0.0
    assert all(0 <= d["percent"] <= 100 for d in progress if d["percent"] is not None)
    result = events[-1][1]
    assert result["video"]["frames_analyzed"] == 10 and len(result["tracks"]) == 1
    assert client.get(result["clip_url"]).headers["content-type"] == "video/mp4"
    assert client.get(job["status_url"]).json()["state"] == "done"


def test_video_job_failure_is_an_event_not_a_5xx(client):
    r = client.post("/api/v1/video/jobs",
                    files={"file": ("x.mp4", b"not a video" * 100, "video/mp4")})
    assert r.status_code == 202
    events = _events(client, r.json()["events_url"])
    assert events[-1][0] == "failed" and events[-1][1]["status"] == 415


def test_cancelling_a_video_job_stops_it_and_removes_its_files(client, tmp_path, monkeypatch):
    import threading

    from ekspresi.web import videos

    real = videos.analyze_video
    started = threading.Event()

    def slow(*args, progress=None, cancelled=None, **kw):
        def tick(n):
            progress(n)
            started.set()
            for _ in range(200):            # hold the first frame until cancelled
                if cancelled():
                    break
                threading.Event().wait(0.05)
        return real(*args, progress=tick, cancelled=cancelled, **kw)

    monkeypatch.setattr(videos, "analyze_video", slow)
    clip = write_av(tmp_path / "c.mp4", face_frames(20))
    root = _store(client).root
    earlier = set(root.iterdir())
    job = client.post("/api/v1/video/jobs",
                      files={"file": ("c.mp4", clip.read_bytes(), "video/mp4")}).json()
    assert started.wait(30)
    before = set(root.iterdir()) - earlier
    assert len(before) == 1                               # the job's folder
    r = client.delete(job["cancel_url"])
    assert r.status_code == 200
    events = _events(client, job["events_url"])
    assert events[-1][0] == "cancelled"
    assert client.get(job["status_url"]).json()["state"] == "cancelled"
    assert not any(p.exists() for p in before)            # its folder is gone
    assert client.delete("/api/v1/video/jobs/AAAAAAAAAAAA").status_code == 404


def _run_on_a_terminal(argv: list[str]) -> bytes:
    """stderr of ``argv`` when it is a terminal (a pseudo-terminal 120 columns wide)."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "ekspresi", *argv], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=300) == 0, out[-2000:]
    return out


def test_predict_shows_a_progress_bar_on_a_terminal(conv_bundle, tmp_path):
    clip = write_av(tmp_path / "walk.mp4", face_frames(20))
    err = _run_on_a_terminal(["predict", str(clip), "--model", str(conv_bundle),
                              "-o", str(tmp_path / "r.json")])
    assert b"walk.mp4:" in err and b"/20 [" in err and b"%|" in err     # name, frames, bar
