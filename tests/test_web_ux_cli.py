"""The CLI's messages users asked for: the training extra's install hint instead of a
traceback, a busy port named with the option to change it, and video summaries that say they
are means over a track."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from web_support import LiveServer

SRC = Path(__file__).resolve().parents[1] / "src"
WITHOUT_EXTRA = ("import sys\n"
                 "for m in ('torch', 'torchvision', 'sklearn', 'matplotlib', 'onnx'):\n"
                 "    sys.modules[m] = None   # what the inference-only install lacks\n"
                 "from ekspresi.cli import main\n"
                 "sys.exit(main(sys.argv[1:]))\n")


def run_without_extra(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return subprocess.run([sys.executable, "-c", WITHOUT_EXTRA, *args], capture_output=True,
                          text=True, env=env, cwd=SRC.parent, timeout=300)


@pytest.mark.parametrize("args", [["train", "configs/default-model.yaml"],
                                  ["evaluate", "default", "--data",
                                   "tests/fixtures/datasets/fer2013"]])
def test_training_commands_without_the_extra_print_the_install_hint(args):
    r = run_without_extra(*args)
    assert r.returncode == 2, r.stderr
    assert "pip install 'ekspresi[train]'" in r.stderr
    assert f"ekspresi {args[0]}: needs the training extra" in r.stderr
    assert "Traceback" not in r.stderr


def test_inference_commands_work_without_the_extra():
    r = run_without_extra("predict", "tests/fixtures/photos/astronaut.jpg", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert '"faces"' in r.stdout


def test_serve_on_a_busy_port_says_so_and_suggests_another(capsys, web_engine):
    """Another uvicorn already serves the port and has answered a request."""
    import urllib.request

    from ekspresi.cli import main
    from ekspresi.web.app import create_app
    from ekspresi.web.settings import WebSettings

    with LiveServer(create_app(WebSettings(threads=1), engine=web_engine)) as live:
        with urllib.request.urlopen(live.url + "/healthz") as r:
            assert r.status == 200
        code = main(["serve", "--port", str(live.port)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"127.0.0.1:{live.port}" in err and f"--port {live.port + 1}" in err
    assert "Traceback" not in err


def test_video_summary_rows_say_they_are_track_means():
    from ekspresi.infer.output import to_table
    from ekspresi.infer.results import ImageResult, VideoResult
    from ekspresi.infer.types import Face

    seen = Face(box=(1, 2, 30, 30), detection_score=0.9, track_id=1,
                scores={"happy": 0.7, "sad": 0.3})
    frames = [ImageResult([seen], 64, 48, frame=i, time=i / 10) for i in (0, 3, 6, 9)]
    text = to_table([VideoResult(frames, frames_read=12, fps=10.0, width=64, height=48,
                                 file="clip.mp4")])
    assert "happy (mean of 4 frames)" in text and "[4/12 frames]" in text
    image = to_table([ImageResult([Face(box=(1, 2, 30, 30), detection_score=0.9,
                                        scores={"happy": 0.7, "sad": 0.3})], 64, 48,
                                  file="a.jpg")])
    assert "mean" not in image


def test_annotated_video_falls_back_to_webm_where_h264_cannot_be_written(tmp_path, monkeypatch,
                                                                         caplog):
    from ekspresi.errors import BadInputError
    from ekspresi.infer import video

    monkeypatch.setattr(video, "can_write", lambda suffix: suffix == ".webm")
    monkeypatch.setattr(video, "_warned_webm", False)     # the warning is given once
    writer, path = video.open_writer(tmp_path / "out.mp4", 10.0, (64, 48))
    writer.release()
    assert path == tmp_path / "out.webm" and path.is_file()
    assert "writing WebM (VP8)" in caplog.text
    assert video.browser_video_suffix() == ".webm"
    monkeypatch.setattr(video, "can_write", lambda suffix: True)
    assert video.browser_video_suffix() == ".mp4"
    with pytest.raises(BadInputError, match="cannot write .gif"):
        video.open_writer(tmp_path / "out.gif", 10.0, (64, 48))
