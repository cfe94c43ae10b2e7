"""User-facing details of the web app and CLI that the issue "What users expect" asked for:
one emotion palette everywhere, the About page's labels and contrast, the Experiments page's
hints, the video page's API, and the CLI's messages. (Browser checks are in
test_browser_web.py.)"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from infer_support import write_clip

from ekspresi.detect.types import Detection
from ekspresi.infer.draw import (
    CANDIDATE,
    COLOURS,
    OTHER,
    PALETTE,
    REJECTED,
    contrast,
    draw_candidates,
    draw_faces,
    hex_to_bgr,
    ink,
)
from ekspresi.infer.types import Face
from ekspresi.labels import CLASSES
from ekspresi.web.app import create_app
from ekspresi.web.settings import WebSettings

fastapi_testclient = pytest.importorskip("fastapi.testclient")
TestClient = fastapi_testclient.TestClient


# -- one palette ---------------------------------------------------------------------------

def test_one_palette_for_cli_pictures_server_pictures_and_pages(client):
    assert set(CLASSES) <= set(PALETTE)
    # every page carries the palette as CSS variables, text colour included
    head = client.get("/").text.split("</head>")[0]
    for name, colour in PALETTE.items():
        assert f"--{name}: {colour};" in head and f"--{name}-ink: {ink(colour)};" in head
        assert contrast(colour, ink(colour)) >= 4.5, name
    # the stylesheet and scripts no longer carry their own copy of the colours
    css = client.get("/static/css/app.css").text + client.get("/static/js/common.js").text
    assert not any(colour in css for colour in PALETTE.values())
    assert OTHER not in client.get("/static/js/common.js").text   # --other, not a fallback
    assert f"--other: {OTHER};" in head


def test_cli_annotation_draws_in_the_palette_colour():
    image = np.full((200, 200, 3), 255, np.uint8)
    face = Face(box=(50, 60, 80, 80), detection_score=0.9,
                scores=dict.fromkeys(CLASSES, 0.1) | {"sad": 0.4})
    out = draw_faces(image, [face], bars=False)
    assert tuple(int(v) for v in out[100, 50]) == COLOURS["sad"]   # the box's left edge
    other = Face(box=(50, 60, 80, 80), detection_score=0.9, scores={"smug": 0.9, "meh": 0.1})
    assert tuple(int(v) for v in draw_faces(image, [other])[100, 50]) == hex_to_bgr(OTHER)


@pytest.mark.parametrize("where", ["left", "right", "top", "bottom", "top-right",
                                   "bottom-left"])
def test_a_face_at_the_image_edge_keeps_its_whole_label(where):
    """The tag of a face touching an edge moves inside the image: as many pixels of its
    text are drawn as for the same face in the middle (the right edge used to cut it)."""
    W, H, s = 400, 300, 60
    x = {"left": 0, "right": W - s, "top-right": W - s}.get(where, 170)
    y = {"top": 0, "top-right": 0, "bottom": H - s, "bottom-left": H - s}.get(where, 120)
    if where == "bottom-left":
        x = 0
    scores = dict.fromkeys(CLASSES, 0.01) | {"happy": 0.94}   # tag ink: black on yellow

    def text_pixels(box):
        face = Face(box=box, detection_score=0.9, scores=scores, number=3)
        out = draw_faces(np.full((H, W, 3), 128, np.uint8), [face], bars=False)
        return int((out.max(2) < 60).sum())

    middle = text_pixels((170, 120, s, s))
    assert middle > 30
    assert text_pixels((x, y, s, s)) == middle


def test_probability_panels_hide_no_face_tag_or_other_panel_in_a_crowd():
    """Two rows of three faces in a small picture: every panel drawn lies inside the
    picture and clear of every face box, tag and other panel; the top row gets its panels
    below, the bottom row has no free place and gets none; a lone face in a large picture
    always gets its panel."""
    from ekspresi.infer.draw import _overlaps, _tag_rect, panel_size, place_panel

    W, H = 400, 330
    canvas = np.zeros((H, W, 3), np.uint8)
    boxes = [(10 + 130 * c, 20 + 180 * r, 80, 80) for r in range(2) for c in range(3)]
    taken = list(boxes) + [_tag_rect(canvas, "9. surprise 100%", x, y) for x, y, _, _ in boxes]
    fixed, placed = len(taken), []
    for box in boxes:
        rect = place_panel(box, panel_size(7, 0.35)[:2], (W, H), taken)
        if rect is not None:
            x, y, w, h = rect
            assert x >= 0 and y >= 0 and x + w <= W and y + h <= H
            assert not any(_overlaps(rect, t) for t in taken)
            taken.append(rect)
            placed.append(rect)
    assert [r[1] for r in placed] == [104, 104, 104] and len(taken) == fixed + 3
    assert place_panel((100, 100, 80, 80), panel_size(7, 1.0)[:2], (1200, 900),
                       [(100, 100, 80, 80)]) is not None


def test_step_page_candidates_are_drawn_with_the_same_function_and_palette():
    image = np.full((200, 200, 3), 255, np.uint8)
    kept, dropped = Detection((20, 40, 50, 50), 0.9), Detection((120, 40, 50, 50), 0.2)
    out = draw_candidates(image, [(kept, True), (dropped, False)], scale=1.0)
    assert tuple(int(v) for v in out[65, 20]) == hex_to_bgr(CANDIDATE)
    assert tuple(int(v) for v in out[65, 120]) == hex_to_bgr(REJECTED)
    # accepted boxes carry their face number (their rank in the order given) before the
    # score: the tag of the second accepted one is wider than a bare score's
    second = Detection((120, 120, 50, 50), 0.95)
    numbered = draw_candidates(image, [(kept, True), (second, True)], scale=1.0)
    bare = draw_candidates(image, [(kept, True), (second, False)], scale=1.0)
    tag_row = (numbered[100:120, 120:200].min(2) < 60).sum(), (bare[100:120, 120:200]
                                                                .min(2) < 60).sum()
    assert tag_row[0] > tag_row[1]


# -- About -------------------------------------------------------------------------------

def about_html(bundle) -> str:
    from ekspresi.web.engine import Engine

    s = WebSettings(model=bundle, threads=1)
    return TestClient(create_app(s, engine=Engine(s))).get("/about").text


def test_about_summary_uses_words_not_config_keys(make_bundle, tmp_path):
    from ekspresi.infer.bundle import load_bundle
    from ekspresi.web.modelcard import build_card

    bundle = make_bundle("dense", tmp_path / "b")
    meta = bundle / "model.json"
    data = json.loads(meta.read_text())
    data["training"] = {"config": {"data": {"sources": ["fer2013-folder:data/fer2013"],
                                            "split": "official"},
                                   "model": {"name": "fer-vgg"}},
                        "epochs": 72, "train_time_seconds": 5286.3}
    meta.write_text(json.dumps(data))
    from ekspresi.web.i18n import catalogue

    words = catalogue("en")
    summary = {words[k]: v for k, v in build_card(load_bundle(bundle, verify=False))
               .training_summary}
    assert summary == {"Training data": "fer2013-folder:data/fer2013",
                       "Train / validation / test split": "official",
                       "Architecture": "fer-vgg", "Epochs trained": "72",
                       "Training time": "1 h 28 min"}
    html = about_html(bundle)
    table = html[html.index('id="training-summary"'):html.index("</table>",
                                                               html.index('id="training-summary"'))]
    assert "Architecture" in table and "config.model.name" not in table


def test_about_plots_have_headings_and_captions_not_file_names(make_bundle, tmp_path):
    from web_support import png_bytes

    bundle = make_bundle("dense", tmp_path / "b")
    for name in ("confusion_matrix.png", "learning_curves.png", "reliability.png"):
        (bundle / name).write_bytes(png_bytes(np.full((20, 30, 3), 200, np.uint8)))
    html = about_html(bundle)
    plots = html[html.index('id="plots"'):]
    titles = re.findall(r"<h5>(.*?)</h5>", plots)
    # the confusion matrix picture repeats the (translated) table above: left out
    assert titles == ["Calibration", "Learning curves"]
    assert plots.count("<figcaption>") == 2
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", plots, re.S)
    assert not any(".png" in c for c in captions)
    assert 'alt="Learning curves"' in plots


def test_about_plots_are_translated_svg_in_the_page_colours():
    """The shipped model's learning curves and per-class scores are inline SVG with the
    page's words (English or Indonesian) and colours (CSS variables, so dark mode too);
    the confusion-matrix pictures, which repeat the translated table, are left out; a
    picture drawn on white (calibration) sits on white paper and, in Indonesian, says its
    labels are English."""
    from ekspresi.infer.resolve import resolve_model
    from ekspresi.web.engine import Engine

    s = WebSettings(model=resolve_model("default").bundle_dir, threads=1)
    client = TestClient(create_app(s, engine=Engine(s)))
    for lang, words in (("en", ["training accuracy", "validation accuracy", "Recall",
                                "Happy"]),
                        ("id", ["akurasi pelatihan", "akurasi validasi", "Senang"])):
        html = client.get(f"/about?lang={lang}").text
        plots = html[html.index('id="plots"'):]
        svgs = re.findall(r"<svg class=\"plot-svg\".*?</svg>", plots, re.S)
        assert len(svgs) == 2, lang
        for word in words:
            assert any(word.lower() in svg.lower() for svg in svgs), (lang, word)
        assert "confusion_matrix" not in plots and 'src="/about/learning_curves.png"' \
            not in plots
        assert 'class="paper" src="/about/reliability.png"' in plots
        assert ("labelnya berbahasa Inggris" in plots) == (lang == "id")
        assert "#fff" not in "".join(svgs) and "fill=\"#" not in "".join(svgs)
    css = client.get("/static/css/app.css").text
    assert ".plot-svg text { fill: currentColor; }" in css


def _hex_luminance_pair(style: str) -> tuple[str, str]:
    bg = re.search(r"background: (#[0-9a-f]{6})", style).group(1)
    fg = re.search(r"color: (#[0-9a-f]{6})", style).group(1)
    return bg, fg


def test_confusion_matrix_numbers_keep_contrast_on_every_shade(make_bundle, tmp_path):
    from ekspresi.web.modelcard import cell

    inks = set()
    for share in np.linspace(0, 1, 101):      # every shade the table can use
        c = cell(5, float(share))
        assert contrast(c.background, c.color) >= 4.5, share
        inks.add(c.color)
    assert inks == {"#000000", "#ffffff"}
    html = about_html(make_bundle("dense", tmp_path / "b"))
    styles = re.findall(r'class="cm-cell" style="([^"]+)"', html)
    assert len(styles) == 49
    assert all(contrast(*_hex_luminance_pair(s)) >= 4.5 for s in styles)


# -- Experiments ---------------------------------------------------------------------------

@pytest.fixture
def runs_dir(tmp_path):
    root = tmp_path / "runs"
    for name, report in (("with_report", True), ("without_report", False)):
        run = root / name
        run.mkdir(parents=True)
        (run / "final_metrics.json").write_text(json.dumps(
            {"splits": {"test": {"accuracy": 0.65, "macro_f1": 0.6, "n_samples": 100}}}))
        if report:
            (run / "report").mkdir()
            (run / "report" / "report.html").write_text(
                "<!doctype html><html><head><title>r</title></head>"
                "<body class='x'><h1>Report</h1></body></html>")
    return root


def test_experiments_say_how_to_make_a_missing_report(web_engine, runs_dir):
    c = TestClient(create_app(WebSettings(threads=1, runs_dir=runs_dir), engine=web_engine))
    html = c.get("/experiments").text
    row = html[html.index("without_report</code>"):]
    row = row[:row.index("</tr>")]
    assert f"ekspresi evaluate {runs_dir}/without_report" in row and "open report" not in row
    assert "test images" in html and "n_samples" not in html   # words, not metric keys


def test_comparison_leaves_out_columns_nobody_has(web_engine, runs_dir):
    from ekspresi.web.pages import _drop_empty_columns

    cols, rows = _drop_empty_columns((["run", "model", "test acc."],
                                      [["a", "–", "61 %"], ["b", "", "62 %"]]))
    assert cols == ["run", "test acc."] and rows == [["a", "61 %"], ["b", "62 %"]]


def test_reports_link_back_to_the_app(web_engine, runs_dir):
    c = TestClient(create_app(WebSettings(threads=1, runs_dir=runs_dir), engine=web_engine))
    r = c.get("/experiments/with_report/report/report.html")
    assert r.status_code == 200 and "sandbox" in r.headers["content-security-policy"]
    body = r.text[r.text.index("<body class='x'>"):]
    assert body.index('href="/experiments"') < body.index("<h1>Report</h1>")


# -- Video ---------------------------------------------------------------------------------

def test_video_api_timeline_tracks_clip_and_csv(client, tmp_path):
    import csv
    import io

    import cv2

    clip = write_clip(tmp_path / "clip.mp4", frames=20)
    r = client.post("/api/v1/video", params={"every": 2},
                    files={"file": ("my clip.mp4", clip.read_bytes(), "video/mp4")})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["video"]["frames_read"] == 20 and out["video"]["frames_analyzed"] == 10
    assert [row["frame"] for row in out["timeline"]] == list(range(0, 20, 2))
    assert len(out["tracks"]) == 1 and out["tracks"][0]["frames"] == 10
    assert abs(out["duration_s"] - 2.0) < 1e-6
    # the annotated clip is in a codec browsers play, and has every frame
    clip_r = client.get(out["clip_url"])
    assert clip_r.status_code == 200
    assert clip_r.headers["content-type"] in ("video/webm", "video/mp4")
    assert out["clip_type"] == clip_r.headers["content-type"]
    saved = tmp_path / ("annotated" + (".webm" if "webm" in out["clip_type"] else ".mp4"))
    saved.write_bytes(clip_r.content)
    cap = cv2.VideoCapture(str(saved))
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode(errors="replace")
    n = sum(1 for _ in iter(lambda: cap.read()[0], False))
    cap.release()
    assert n == 20
    assert fourcc.lower() not in ("mp4v", "fmp4", "xvid")   # not MPEG-4 Part 2
    rows = list(csv.DictReader(io.StringIO(client.get(out["csv_url"]).text)))
    assert [int(x["frame"]) for x in rows] == list(range(0, 20, 2))
    assert {x["track_id"] for x in rows} == {"1"}
    disposition = client.get(out["csv_url"]).headers["content-disposition"]
    assert 'filename="my_clip.timeline.csv"' in disposition


def test_video_api_refuses_what_it_cannot_use(client, tmp_path):
    r = client.post("/api/v1/video", files={"file": ("notes.mp4", b"not a video at all" * 50,
                                                     "video/mp4")})
    assert r.status_code == 415 and "not a video" in r.json()["detail"]
    assert client.get("/api/v1/video/AAAAAAAAAAAA/clip").status_code == 404
    assert client.get("/api/v1/video/../../etc/clip").status_code == 404
    assert client.post("/api/v1/video", params={"every": 0},
                       files={"file": ("c.mp4", b"x", "video/mp4")}).status_code == 422


def test_video_api_refuses_overlong_clips(client, tmp_path, monkeypatch):
    from ekspresi.web import videos

    monkeypatch.setattr(videos, "MAX_VIDEO_FRAMES", 5)
    clip = write_clip(tmp_path / "clip.mp4", frames=8)
    r = client.post("/api/v1/video", files={"file": ("c.mp4", clip.read_bytes(), "video/mp4")})
    assert r.status_code == 422 and "longer than 5 frames" in r.json()["detail"]


def test_an_overlong_clip_is_refused_from_its_header(client, tmp_path, monkeypatch):
    """No frame is analysed when the container header already says the clip is too long."""
    from ekspresi.web import videos

    def never(*a, **k):
        raise AssertionError("the clip was analysed")

    monkeypatch.setattr(videos, "MAX_VIDEO_FRAMES", 5)
    monkeypatch.setattr(videos, "analyze_video", never)
    clip = write_clip(tmp_path / "clip.mp4", frames=8)
    r = client.post("/api/v1/video", files={"file": ("c.mp4", clip.read_bytes(), "video/mp4")})
    assert r.status_code == 422, r.text
    assert "8 frames" in r.json()["detail"] and "longer than 5 frames" in r.json()["detail"]


def test_try_an_example_buttons_and_the_example_files(client):
    """Image and Step-by-step offer the group picture, Video the clip; the server serves
    only the shipped examples."""
    from ekspresi import examples

    for path, name in (("/image", "group"), ("/steps", "group"), ("/video", "clip")):
        html = client.get(path).text
        assert f'data-example="{name}"' in html and 'id="try-example"' in html, path
        assert f'data-example-file="{examples.EXAMPLES[name][0]}"' in html
    r = client.get("/examples/group")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content == examples.path("group").read_bytes()
    assert client.get("/examples/clip").headers["content-type"] == "video/mp4"
    for bad in ("nope", "..%2F..%2Fpyproject.toml", "SOURCES.md"):
        assert client.get(f"/examples/{bad}").status_code == 404
    js = client.get("/static/js/common.js").text
    assert "data-example" in js and "/examples/" in js
