"""Batch prediction to Parquet (`ekspresi predict -o X.parquet [--engine ray]`,
`ekspresi.distributed.predict`): rows, error rows, resume, and the Ray engine giving the local
engine's rows exactly (local Ray, 2 workers, CPU)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import pandas as pd
import pytest
from infer_support import PHOTO, collage, no_face_image, write_clip

from ekspresi.cli import main

pa = pytest.importorskip("pyarrow", reason="Parquet output needs pyarrow: pip install "
                                           "'ekspresi[distributed]'")
pq = pytest.importorskip("pyarrow.parquet")

from ekspresi.distributed import ClusterError, predict  # noqa: E402
from ekspresi.distributed.plan import plan_units  # noqa: E402
from ekspresi.errors import ConfigError, ModelError  # noqa: E402

try:
    import ray  # noqa: F401
    HAVE_RAY = True
except ImportError:
    HAVE_RAY = False
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed: pip install "
                                                    "'ekspresi[distributed]' to run the Ray "
                                                    "engine tests")
KEY = ["source", "frame", "face"]
CLIP_FRAMES = 12


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """Photos (one face, four faces, none), a 12-frame video made from the face photo, a
    corrupt image and an unreadable video."""
    d = tmp_path_factory.mktemp("mixed")
    (d / "face.jpg").write_bytes(PHOTO.read_bytes())
    cv2.imwrite(str(d / "group.png"), collage(4))
    cv2.imwrite(str(d / "noface.png"), no_face_image())
    (d / "corrupt.jpg").write_bytes(PHOTO.read_bytes()[:400])
    write_clip(d / "clip.mp4", frames=CLIP_FRAMES)
    (d / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    return d


def table(out: Path):
    return pq.read_table(out).to_pandas().sort_values(KEY, na_position="first") \
        .reset_index(drop=True)


@pytest.fixture(scope="module")
def local_run(mixed, tmp_path_factory):
    """The local engine's output for ``mixed`` (the reference the Ray engine must equal)."""
    out = tmp_path_factory.mktemp("local") / "results.parquet"
    job = predict([mixed], out, engine="local", progress=False)
    return job, table(out)


def test_local_parquet_rows_errors_and_summary(local_run, mixed):
    job, rows = local_run
    by = {Path(s).name: g for s, g in rows.groupby("source")}
    assert set(by) == {"face.jpg", "group.png", "noface.png", "corrupt.jpg", "clip.mp4",
                       "broken.mp4"}
    assert len(by["face.jpg"]) == 1 and len(by["group.png"]) == 4
    assert by["group.png"]["face"].tolist() == [0, 1, 2, 3]
    assert by["noface.png"]["face"].isna().all() and by["noface.png"]["error"].isna().all()
    assert "corrupt" in by["corrupt.jpg"]["error"].iloc[0]
    assert "cannot open" in by["broken.mp4"]["error"].iloc[0] or \
        "no frames" in by["broken.mp4"]["error"].iloc[0]
    clip = by["clip.mp4"]
    assert clip["frame"].tolist() == list(range(CLIP_FRAMES)) and clip["track_id"].eq(1).all()
    assert clip["time"].tolist() == pytest.approx([i / 10 for i in range(CLIP_FRAMES)])
    probs = rows[[c for c in rows if c.startswith("p_")]].dropna()
    assert probs.sum(axis=1).to_numpy() == pytest.approx(1, abs=1e-5)
    assert (rows.dropna(subset=["label"]).apply(
        lambda r: r[f"p_{r['label']}"] == r["confidence"], axis=1)).all()
    summary = {Path(r["source"]).name: r for r in job.summary}
    assert summary["clip.mp4"]["faces"] == CLIP_FRAMES
    assert summary["clip.mp4"]["frames_analyzed"] == CLIP_FRAMES
    assert summary["clip.mp4"]["tracks"] == 1
    assert summary["group.png"]["faces"] == 4 and summary["noface.png"]["label"] == ""
    assert summary["corrupt.jpg"]["status"] == "error" and job.failed == 2
    assert job.summary_csv.is_file() and job.summary_csv.name == "results.summary.csv"


def test_local_parquet_equals_the_json_output(local_run, mixed, capsys):
    """The Parquet rows of an image hold what `ekspresi predict --format json` prints."""
    _, rows = local_run
    assert main(["predict", str(mixed / "group.png"), "--format", "json"]) == 0
    faces = json.loads(capsys.readouterr().out)[0]["faces"]
    got = rows[rows["source"].str.endswith("group.png")]
    assert [f["box"] for f in faces] == got[["x", "y", "w", "h"]].values.tolist()
    assert [f["label"] for f in faces] == got["label"].tolist()
    for f, (_, r) in zip(faces, got.iterrows()):
        assert {c: r[f"p_{c}"] for c in f["scores"]} == pytest.approx(f["scores"], abs=1e-6)


def test_cli_parquet_exit_code_and_resume(mixed, tmp_path, capsys):
    out = tmp_path / "r.parquet"
    assert main(["predict", str(mixed), "-o", str(out)]) == 1       # two bad files
    text = capsys.readouterr()
    assert "clip.mp4" in text.out and "ERROR" in text.out and "2 of 6" in text.err
    rows = table(out)
    assert len(rows) == 1 + 4 + 1 + 1 + CLIP_FRAMES + 1     # faces, or one row per source
    assert main(["predict", str(mixed), "-o", str(out)]) == 1     # rerun: nothing to do
    assert "0 source(s) analysed" in capsys.readouterr().out and table(out).equals(rows)
    assert main(["predict", str(mixed), "-o", str(out), "--every", "2"]) == 2
    assert "other settings (every differ)" in capsys.readouterr().err


def test_interrupted_run_resumes_without_redoing_a_source(mixed, local_run, tmp_path):
    _, reference = local_run
    out = tmp_path / "r.parquet"
    first: list[str] = []

    def interrupt(sources):
        first.extend(sources)
        if len(first) >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict([mixed], out, flush_sources=1, progress=False, on_written=interrupt)
    assert len(first) == 2
    again: list[str] = []
    job = predict([mixed], out, flush_sources=1, progress=False, on_written=again.extend)
    assert job.skipped == 2 and job.processed == 4
    assert not set(first) & set(again) and len(set(first) | set(again)) == 6
    rows = table(out)
    assert not rows.duplicated(KEY).any()
    assert rows.equals(reference)


def test_missing_model_fails_at_once(mixed, tmp_path, capsys):
    with pytest.raises(ModelError, match="not a model bundle"):
        predict([mixed], tmp_path / "r.parquet", model=tmp_path, engine="ray")
    code = main(["predict", str(mixed), "--engine", "ray", "--model", str(tmp_path), "-o",
                 str(tmp_path / "r.parquet")])
    err = capsys.readouterr().err
    assert code == 2 and "not a model bundle" in err and "Traceback" not in err
    with pytest.raises(ConfigError, match="unknown face detector"):
        predict([mixed], tmp_path / "r2.parquet", detector="nope")


def test_ray_needs_parquet_output_and_the_extra(mixed, tmp_path, capsys, monkeypatch):
    assert main(["predict", str(mixed), "--engine", "ray"]) == 2
    assert "-o RESULTS.parquet" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)              # as if Ray were not installed
    code = main(["predict", str(PHOTO), "--engine", "ray", "-o", str(tmp_path / "r.parquet")])
    assert code == 2 and "pip install 'ekspresi[distributed]'" in capsys.readouterr().err


def test_video_is_cut_into_frame_ranges_and_sources_counted_once(mixed):
    clip = str(mixed / "clip.mp4")
    units = plan_units([clip, clip], recursive=False, chunk_frames=5)
    assert [(u.start, u.end) for u in units] == [(0, 5), (5, 10), (10, None)]
    assert [u.work for u in units] == [5, 5, 2]


@needs_ray
def test_unreachable_cluster_is_a_clear_error(mixed, tmp_path, capsys):
    import ray

    with socket.socket() as s:                       # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if ray.is_initialized():
        pytest.skip("a Ray is already initialised in this process")
    with pytest.raises(ClusterError, match="cannot reach the Ray cluster"):
        predict([PHOTO], tmp_path / "r.parquet", engine="ray", address=f"127.0.0.1:{port}")
    assert not (tmp_path / "r.parquet").exists()     # failed before planning or writing
    code = main(["predict", str(PHOTO), "--engine", "ray", "--address", f"127.0.0.1:{port}",
                 "-o", str(tmp_path / "r2.parquet")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the Ray cluster" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray with 2 CPUs for this module (the jobs join it instead of starting one)."""
    if not HAVE_RAY:
        pytest.skip("Ray is not installed")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024 ** 2,
             logging_level="ERROR")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@needs_ray
def test_ray_engine_equals_local_engine(ray_cluster, mixed, local_run, tmp_path):
    job_local, reference = local_run
    out = tmp_path / "ray.parquet"
    job = predict([mixed], out, engine="ray", workers=2, chunk_frames=5, images_per_task=2,
                  progress=False)
    rows = table(out)
    assert len(rows) == len(reference)
    assert rows.equals(reference), rows.compare(reference)
    assert job.summary == job_local.summary and job.items == job_local.items


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    from ekspresi.distributed import predict
    address, mixed, out, log = sys.argv[1:]

    def written(sources):
        with open(log, "a") as fh:
            fh.writelines(s + "\\n" for s in sources)
        os.kill(os.getpid(), signal.SIGKILL)      # die hard after the first partition

    predict([mixed], out, engine="ray", address=address, workers=2, chunk_frames=5,
            images_per_task=1, flush_sources=1, progress=False, on_written=written)
""")


@needs_ray
def test_ray_run_killed_then_resumed_does_no_source_twice(ray_cluster, mixed, local_run,
                                                          tmp_path):
    _, reference = local_run
    out, log = tmp_path / "ray.parquet", tmp_path / "written.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", KILLED_RUN, ray_cluster, str(mixed), str(out),
                           str(log)], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == -9, proc.stderr[-3000:]
    first = log.read_text().split()
    assert len(first) == 1 and len(list(out.glob("part-*.parquet"))) == 1
    again: list[str] = []
    job = predict([mixed], out, engine="ray", workers=2, chunk_frames=5, flush_sources=1,
                  progress=False, on_written=again.extend)
    assert job.skipped == 1 and job.processed == 5
    assert not set(first) & set(again) and len(set(first) | set(again)) == 6
    rows = table(out)
    assert not rows.duplicated(KEY).any()
    # same rows; scores to float32 rounding (one failure under heavy load was not exact)
    pd.testing.assert_frame_equal(rows, reference, check_exact=False, rtol=1e-5, atol=1e-6)
