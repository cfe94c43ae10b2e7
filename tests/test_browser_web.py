"""The web app in a real browser: Playwright driving Debian's chromium (never a downloaded
browser) against uvicorn on a loopback port. The webcam is Chromium's fake camera fed a
.y4m clip made here from the face photo fixture. Screenshots go to tests/artifacts/.

Every request the pages make to anywhere but the test server is aborted and recorded, and
the tests fail if there was any: the app must work offline.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from web_support import LiveServer, face_photo_path, png_bytes

from ekspresi.labels import CLASSES

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("Debian chromium is not installed (apt-get install chromium); the README's "
                "test command installs it", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                                                             "(pip install ekspresi[dev])")

ARTIFACTS = Path(__file__).parent / "artifacts"


def write_y4m(path: Path, photo: Path, width: int = 640, height: int = 480,
              frames: int = 30) -> Path:
    """A YUV4MPEG2 (4:2:0) clip of the face photo on a grey background, drifting a few
    pixels per frame so the stream is a moving picture, not a still."""
    import cv2

    face = cv2.imread(str(photo))
    side = min(height, width) - 40
    face = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            canvas = np.full((height, width, 3), 110, np.uint8)
            dx = int(8 * np.sin(2 * np.pi * i / frames))
            x0, y0 = (width - side) // 2 + dx, (height - side) // 2
            canvas[y0:y0 + side, x0:x0 + side] = face
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(canvas, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


@pytest.fixture(scope="module")
def photo() -> Path:
    path = face_photo_path()
    if path is None:   # committed with the tests: missing means a broken checkout
        pytest.fail("no face photo fixture under tests/fixtures/photos")
    return path


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    run = root / "demo_run"
    (run / "report").mkdir(parents=True)
    (run / "final_metrics.json").write_text(
        json.dumps({"splits": {"test": {"accuracy": 0.6812, "macro_f1": 0.64}}}))
    (run / "report" / "report.html").write_text(
        "<!doctype html><title>demo report</title><h1 id='r'>Report of demo_run</h1>")
    bare = root / "a_run_with_a_rather_long_name_and_no_report_yet"
    bare.mkdir()
    (bare / "final_metrics.json").write_text(
        json.dumps({"splits": {"test": {"accuracy": 0.61}}}))
    return root


@pytest.fixture(scope="module")
def server(web_engine, tiny_bundle, runs_dir):
    from ekspresi.web.app import create_app
    from ekspresi.web.settings import WebSettings

    app = create_app(WebSettings(model=tiny_bundle, threads=1, runs_dir=runs_dir),
                     engine=web_engine)
    with LiveServer(app) as live:
        yield live


@pytest.fixture(scope="module")
def browser(tmp_path_factory, photo):
    clip = write_y4m(tmp_path_factory.mktemp("camera") / "face.y4m", photo)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    outside: list[str] = []
    errors: list[str] = []

    def guard(route):
        url = route.request.url
        if url.startswith(server.url) or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    pg.route("**/*", guard)
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.base = server.url
    yield pg
    context.close()
    assert not outside, f"the page tried to reach the outside: {outside}"
    assert not errors, f"JavaScript errors: {errors}"


def wait_until(page, expression: str, timeout_s: float = 30.0) -> None:
    """Poll a JS expression through ``evaluate`` (Playwright's wait_for_function compiles
    strings with eval, which the pages' Content-Security-Policy rightly forbids)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(100)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    # a sticky bar would be painted mid-page in a full-page capture
    page.evaluate("(() => { const bar = document.querySelector('.topbar');"
                  " if (bar) bar.style.position = 'static'; })()")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_home_and_nav(page):
    page.goto(page.base + "/")
    assert page.locator("nav a").count() == 8
    # the scripts draw in the server's palette (ekspresi.infer.draw.PALETTE)
    from ekspresi.infer.draw import PALETTE

    assert page.evaluate("Ekspresi.color('happy')") == PALETTE["happy"]
    page.click("nav >> text=About")
    page.wait_for_selector("#model-card")
    assert page.locator("#confusion td").count() == 49
    shot(page, "about")
    page.goto(page.base + "/")
    shot(page, "home")


def test_upload_shows_annotated_image_and_bars(page, photo):
    page.goto(page.base + "/image")
    page.set_input_files("#file-input", str(photo))
    page.wait_for_selector("#faces .face-card")
    wait_until(page, "document.querySelector('#annotated').dataset.faces === '1'")
    card = page.locator("#faces .face-card").first
    assert card.locator(".bar-row").count() == 7
    widths = card.locator(".bar-fill").evaluate_all("els => els.map(e => e.style.width)")
    assert all(w.endswith("%") for w in widths) and len(set(widths)) > 1
    label = card.get_attribute("data-emotion")
    assert label in card.locator(".face-top").text_content()
    # the canvas holds the photo at full size with the box drawn in the emotion's colour
    size, box_pixels = page.evaluate("""(() => {
        const c = document.querySelector('#annotated');
        const hex = Ekspresi.color(document.querySelector('.face-card').dataset.emotion);
        const rgb = [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16));
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4)
            if (Math.abs(d[i] - rgb[0]) + Math.abs(d[i + 1] - rgb[1])
                + Math.abs(d[i + 2] - rgb[2]) < 6) n++;
        return [[c.width, c.height], n]; })()""")
    assert size == [512, 512]
    assert box_pixels > 300
    assert "1 face" in page.locator("#result-summary").inner_text()
    with page.expect_download() as dl:
        page.click("#download-json")
    saved = json.loads(Path(dl.value.path()).read_text())
    assert len(saved["faces"]) == 1 and "preview" not in saved
    shot(page, "image_upload")


def test_upload_no_face_and_not_an_image(page, tmp_path):
    flat = tmp_path / "flat.png"
    flat.write_bytes(png_bytes(np.full((240, 320, 3), 128, np.uint8)))
    page.goto(page.base + "/image")
    page.set_input_files("#file-input", str(flat))
    page.wait_for_selector("#no-face")
    assert "No face found" in page.locator("#no-face").inner_text()
    shot(page, "image_no_face")
    text = tmp_path / "notes.txt"
    text.write_text("definitely not a picture")
    page.set_input_files("#file-input", str(text))
    page.wait_for_selector("#message.error")
    assert "not an image" in page.locator("#message").inner_text()
    assert "415" in page.locator("#message").inner_text()


DROP_OR_PASTE = """([kind, b64]) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], "face.jpg", { type: "image/jpeg" }));
    if (kind === "drop") {
        document.querySelector("#dropzone").dispatchEvent(
            new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    } else {
        document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true }));
    }
}"""


@pytest.mark.parametrize("kind", ["drop", "paste"])
def test_drag_and_drop_and_paste(page, photo, kind):
    import base64

    page.goto(page.base + "/image")
    page.evaluate(DROP_OR_PASTE, [kind, base64.b64encode(photo.read_bytes()).decode()])
    page.wait_for_selector("#faces .face-card")
    assert page.locator("#faces .face-card").count() == 1


def test_experiments_page_and_report(page):
    page.goto(page.base + "/experiments")
    assert "0.6812" in page.locator("#runs").inner_text()
    assert page.locator("#comparison").count() == 1
    assert "ekspresi evaluate" in page.locator("#runs .no-report").inner_text()
    shot(page, "experiments")
    page.click("text=open report")
    page.wait_for_selector("#r")
    assert page.locator("#r").inner_text() == "Report of demo_run"
    page.click("#ekspresi-back a")          # the report links back to the app
    page.wait_for_selector("#runs")
    assert page.url == page.base + "/experiments"
    # on a phone the tables scroll inside their cards, never the page
    page.set_viewport_size({"width": 390, "height": 800})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "experiments_mobile")


def test_realtime_with_fake_camera(page):
    page.goto(page.base + "/realtime")
    page.click("#start")
    wait_until(page, "document.querySelector('#face-count').textContent === '1'")
    wait_until(page, "parseFloat(document.querySelector('#fps').textContent) > 0")
    page.wait_for_timeout(4000)  # let the counter and the 30-s chart fill in
    fps = float(page.locator("#fps").inner_text())
    assert fps > 0
    labels = page.locator("#rt-faces li").all_inner_texts()
    assert len(labels) == 1 and "%" in labels[0]
    assert page.locator("#legend span").count() == 7
    # the overlay canvas has drawn pixels (boxes), the chart has lines
    drawn = page.evaluate("""(() => {
        const c = document.querySelector('#overlay');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n; })()""")
    assert drawn > 100
    shot(page, "realtime")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "realtime_fps.json").write_text(json.dumps({"fps_counter": fps}))
    print(f"real-time page frames/s counter after 4 s: {fps}")
    # the boxes carry the same numbers and words as the chips under the video
    boxes, chips = page.evaluate("""[JSON.parse(document.querySelector('#overlay').dataset.texts),
        [...document.querySelectorAll('#rt-faces li')].map(li => li.textContent)]""")
    assert boxes == chips
    # the number is the face's track: one person, one track, the whole time
    assert boxes[0].startswith("1. ")
    assert page.evaluate("document.querySelector('#overlay').dataset.tracks") == "[1]"
    # labels are smoothed by default; unticked, the page shows each frame's own answer
    # and remembers the choice
    assert page.locator("#smooth").is_checked()
    page.uncheck("#smooth")
    page.wait_for_timeout(500)
    assert page.evaluate("localStorage.getItem('ekspresi.smooth')") == "0"
    page.check("#smooth")
    # a camera selector (listed once the camera was allowed) and a mirror toggle
    assert page.locator("#camera option").count() >= 1
    assert page.locator(".camera-choice").is_visible()
    page.check("#mirror")
    wait_until(page, "document.querySelector('#overlay').dataset.mirror === 'true'")
    assert "mirrored" in page.locator("#video").get_attribute("class")
    page.uncheck("#mirror")
    page.click("#pause")
    assert page.locator("#pause").inner_text() == "Resume"
    page.wait_for_timeout(500)
    answered = page.evaluate("document.querySelector('#rt-status').textContent")
    assert answered == "Paused."
    page.click("#pause")
    wait_until(page, "parseFloat(document.querySelector('#fps').textContent) > 0")
    # the pause is a gap in the chart: each line is now two unbroken stretches
    wait_until(page, "document.querySelector('#chart').dataset.runs === '2'")
    page.click("#start")  # stop
    assert page.locator("#rt-status").inner_text() == "Camera off."
    # nothing live is left on screen: stats, chips and boxes are cleared
    assert [page.locator(s).inner_text() for s in ("#fps", "#latency", "#face-count")] == [
        "–", "–", "–"]
    assert page.locator("#rt-faces li").count() == 0
    assert page.evaluate("""(() => { const c = document.querySelector('#overlay');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return d.some((v, i) => i % 4 === 3 && v > 0); })()""") is False
    shot(page, "realtime_stopped")
    # the session as CSV: one row per face and answer, seconds since Start
    import csv
    import io

    with page.expect_download() as dl:
        page.click("#download-session")
    rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
    assert len(rows) > 10
    times = [float(r["time_s"]) for r in rows]
    assert times == sorted(times) and times[-1] > 4
    assert {r["face"] for r in rows} <= {"1", ""} and "p_happy" in rows[0]
    assert {r["track"] for r in rows} <= {"1", ""}


def test_step_page_shows_all_stages(page, photo):
    page.goto(page.base + "/steps")
    page.set_input_files("#file-input", str(photo))
    page.wait_for_selector("[data-stage=saliency]")
    for key in ("original", "gray", "detections", "crop", "input", "probabilities",
                "saliency"):
        assert page.locator(f"[data-stage={key}]").count() == 1, key
    loaded = page.evaluate("[...document.querySelectorAll('.stage img')]"
                           ".map(i => i.complete && i.naturalWidth > 0)")
    assert len(loaded) == 6 and all(loaded)
    assert page.locator("[data-stage=probabilities] .bar-row").count() == 7
    assert page.locator(".cand-list li").count() >= 1
    shot(page, "steps")


def test_docs_render_offline(page):
    page.goto(page.base + "/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    assert page.locator(".opblock-summary-path", has_text="/api/v1/analyze").count() >= 1
    shot(page, "docs")


def test_mobile_layout(page, browser):
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(page.base + "/")
    assert not page.locator("nav.nav").is_visible()  # collapsed behind the menu button
    page.click(".nav-toggle-label")
    assert page.locator("nav.nav").is_visible()
    shot(page, "home_mobile")


# -- several images, downloads, labels -------------------------------------------------------

def two_face_jpeg(photo: Path, out: Path) -> Path:
    """The face photo beside its mirror image: one picture with two faces close together."""
    import cv2

    face = cv2.imread(str(photo))
    cv2.imwrite(str(out), np.concatenate([face, face[:, ::-1]], axis=1))
    return out


def test_several_files_results_table_and_downloads(page, photo, tmp_path):
    import csv
    import io

    import cv2

    two = two_face_jpeg(photo, tmp_path / "two_faces.jpg")
    flat = tmp_path / "flat.png"
    flat.write_bytes(png_bytes(np.full((240, 320, 3), 128, np.uint8)))
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    page.goto(page.base + "/image")
    page.set_input_files("#file-input", [str(photo), str(two), str(flat), str(notes)])
    wait_until(page, "[...document.querySelectorAll('#batch-table tbody tr')]"
                     ".filter(r => ['done', 'error'].includes(r.dataset.status)).length === 4")
    rows = page.locator("#batch-table tbody tr")
    assert rows.count() == 4
    texts = rows.all_inner_texts()
    assert [r.split("\t")[2].strip() for r in texts[:3]] == ["1", "2", "0"]
    assert "no face found" in texts[2]
    assert "415" in texts[3] and rows.nth(3).get_attribute("data-status") == "error"
    assert "4 files, 1 failed" in page.locator("#batch-progress").inner_text()
    # the first image is shown; choosing a row shows that one
    assert page.locator("#result-name").inner_text() == photo.name
    rows.nth(1).click()
    page.wait_for_selector("#faces .face-card >> nth=1")
    wait_until(page, "document.querySelector('#annotated').dataset.faces === '2'")
    assert page.locator("#result-name").inner_text() == "two_faces.jpg"
    # the tags of the two faces do not overlap, stay inside the canvas, and are 13 CSS px
    labels, width, shown, font = page.evaluate("""(() => {
        const c = document.querySelector('#annotated');
        return [JSON.parse(c.dataset.labels), c.width, c.getBoundingClientRect().width,
                parseFloat(c.dataset.font)]; })()""")
    assert len(labels) == 2
    (ax, ay, aw, ah), (bx, by, bw, bh) = labels
    assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
    assert all(x >= 0 and x + w <= width + 1 for x, _, w, _ in labels)
    assert abs(font * shown / width - 13) <= 1
    # hovering a face card highlights its box (and only changes the picture while hovered)
    before = page.evaluate("document.querySelector('#annotated').toDataURL()")
    page.hover("#faces .face-card >> nth=1")
    wait_until(page, "document.querySelector('#annotated').dataset.highlight === '1'")
    assert page.evaluate("document.querySelector('#annotated').toDataURL()") != before
    shot(page, "image_batch")
    page.mouse.move(0, 0)
    wait_until(page, "document.querySelector('#annotated').dataset.highlight === '-1'")
    # downloads: the annotated picture, this image's CSV/JSON, and everything as CSV/JSON
    with page.expect_download() as dl:
        page.click("#download-image")
    assert dl.value.suggested_filename == "two_faces.annotated.png"
    png = cv2.imdecode(np.frombuffer(Path(dl.value.path()).read_bytes(), np.uint8), 1)
    assert png.shape[:2] == (512, 1024)
    with page.expect_download() as dl:
        page.click("#download-csv")
    one = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
    assert [r["face"] for r in one] == ["1", "2"] and all(r["file"] == "two_faces.jpg" for r in one)
    with page.expect_download() as dl:
        page.click("#download-all-csv")
    table = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
    assert [r["file"] for r in table] == [photo.name, "two_faces.jpg", "two_faces.jpg",
                                          "flat.png", "notes.txt"]
    assert "415" in table[-1]["error"] and table[3]["label"] == ""
    assert abs(sum(float(table[0][f"p_{c}"]) for c in CLASSES) - 1) < 1e-3
    with page.expect_download() as dl:
        page.click("#download-all-json")
    saved = json.loads(Path(dl.value.path()).read_text())
    assert [len(r.get("faces", [])) for r in saved["results"]] == [1, 2, 0, 0]
    assert "error" in saved["results"][3] and "preview" not in saved["results"][0]


def test_folder_picker_and_dropped_folder(page, photo, tmp_path):
    folder = tmp_path / "album"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(photo, folder / "a.jpg")
    two_face_jpeg(photo, folder / "sub" / "b.jpg")
    (folder / "readme.txt").write_text("skipped: not an image")
    page.goto(page.base + "/image")
    page.set_input_files("#folder-input", str(folder))
    wait_until(page, "[...document.querySelectorAll('#batch-table tbody tr')]"
                     ".filter(r => r.dataset.status === 'done').length === 2")
    names = page.locator("#batch-table .file-name").all_inner_texts()
    assert names == ["album/a.jpg", "album/sub/b.jpg"]


@pytest.mark.parametrize("boxes", [
    [[10, 5, 60, 60], [40, 5, 60, 60], [70, 5, 60, 60], [100, 5, 60, 60]],
    [[0, 0, 50, 50]] * 5,
    [[300, 200, 40, 40], [310, 210, 40, 40], [0, 230, 30, 20]],
])
def test_label_layout_in_browser(page, boxes):
    page.goto(page.base + "/image")
    rects = page.evaluate("([boxes]) => Ekspresi.layoutLabels(boxes, boxes.map(() => [90, 20]),"
                          " 400, 250).map(r => [r.x, r.y, r.w, r.h])", [boxes])
    for i, (x, y, w, h) in enumerate(rects):
        assert 0 <= x and x + w <= 400 and 0 <= y and y + h <= 250
        for (x2, y2, w2, h2) in rects[i + 1:]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, rects


@pytest.mark.parametrize("lang", ["en", "id"])
def test_every_page_fits_a_phone(browser, lang):
    """Every page with the shipped model (the About page: long hashes, run paths, three test
    sets, plots) at 390 px, in both languages: nothing wider than the screen; wide tables
    scroll inside their own box."""
    from ekspresi.web.app import create_app
    from ekspresi.web.settings import WebSettings

    app = create_app(WebSettings(threads=1))
    if not app.state.engine.available:
        pytest.skip(f"the bundled default model is missing: {app.state.engine.error}")
    with LiveServer(app) as live:
        context = browser.new_context(viewport={"width": 390, "height": 800})
        pg = context.new_page()
        for path in ("/", "/image", "/realtime", "/video", "/steps", "/about", "/experiments"):
            pg.goto(f"{live.url}{path}?lang={lang}")
            assert pg.evaluate("document.documentElement.scrollWidth") <= 390, path
        pg.goto(f"{live.url}/about?lang={lang}")
        pg.wait_for_selector("#plots")
        assert pg.locator("#plots h5").count() >= 2
        shot(pg, f"about_mobile_{lang}")
        context.close()


def test_video_page_with_a_real_clip(page, tmp_path):
    """A clip made here from the face photo: the annotated copy plays in Chromium, each
    face's timeline is charted, and the CSV downloads."""
    import csv
    import io

    from infer_support import write_clip

    clip = write_clip(tmp_path / "walk.mp4", frames=30)
    page.goto(page.base + "/video")
    page.select_option("#every", "5")
    page.set_input_files("#file-input", str(clip))
    page.wait_for_selector("#tracks .track-card", timeout=60_000)
    assert page.locator("#tracks .track-card").count() == 1
    assert "mean over the 6 analysed frames" in page.locator(".track-card .face-sub").inner_text()
    # Chromium decodes the annotated clip: metadata, the right size, and it plays
    wait_until(page, "document.querySelector('#annotated-video').readyState >= 2")
    size = page.evaluate("[document.querySelector('#annotated-video').videoWidth,"
                         " document.querySelector('#annotated-video').videoHeight]")
    assert size == [320, 240]
    page.evaluate("document.querySelector('#annotated-video').play()")
    wait_until(page, "document.querySelector('#annotated-video').currentTime > 0.5")
    assert page.evaluate("document.querySelector('#annotated-video').error") is None
    # it is the H.264 MP4 the server wrote (PyAV's libx264), and it lasts the clip's 3 s
    assert page.get_attribute("#download-clip", "download") == "walk.annotated.mp4"
    assert abs(page.evaluate("document.querySelector('#annotated-video').duration") - 3.0) < 0.2
    assert page.locator("#video-progress-box").is_hidden()
    # the face's chart has its lines, and the playhead moved over it
    assert page.locator(".track-chart").evaluate("c => c.dataset.runs") == "1"
    shot(page, "video")
    with page.expect_download() as dl:
        page.click("#download-video-csv")
    rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
    assert [int(r["frame"]) for r in rows] == list(range(0, 30, 5))
    assert dl.value.suggested_filename == "walk.timeline.csv"


def test_video_page_shows_progress_and_cancels(page, tmp_path):
    """A longer clip: the page shows percent, frames done and time left while the server
    works, and Cancel stops it (no result, a message saying nothing was kept)."""
    import cv2
    from infer_support import photo_bgr

    clip = tmp_path / "long.mp4"
    face = cv2.resize(photo_bgr()[10:250, 120:330], (150, 170), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (320, 240))
    for i in range(900):                  # 36 s of the face swaying left and right
        frame = np.full((240, 320, 3), 100, np.uint8)
        x = 40 + abs(i % 60 - 30) * 3
        frame[30:200, x:x + 150] = face
        writer.write(frame)
    writer.release()
    page.goto(page.base + "/video")
    page.select_option("#every", "1")
    page.set_input_files("#file-input", str(clip))
    wait_until(page, "/\\d+ of 900 frames/.test("
                     "document.querySelector('#video-progress-text').textContent)")
    text = page.locator("#video-progress-text").inner_text()
    assert "%" in text and "left" in text, text
    assert page.evaluate("document.querySelector('#video-progress').value") >= 0
    page.click("#cancel-video")
    wait_until(page, "!document.querySelector('#message').hidden")
    assert "Cancelled" in page.locator("#message").inner_text()
    assert page.locator("#video-result").is_hidden()
    assert page.locator("#video-progress-box").is_hidden()


def test_dark_mode_follows_the_system(browser, server, photo):
    """With the system in dark mode every surface turns dark and the text stays readable
    (WCAG contrast >= 4.5:1 for body text, muted text and links)."""
    from ekspresi.infer.draw import contrast

    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    pg = context.new_page()
    pg.goto(server.url + "/image")
    pg.set_input_files("#file-input", str(photo))
    pg.wait_for_selector("#faces .face-card")
    colours = pg.evaluate("""(() => {
        const hex = (c) => '#' + c.match(/\\d+/g).slice(0, 3)
            .map(v => (+v).toString(16).padStart(2, '0')).join('');
        const css = (sel, prop) => hex(getComputedStyle(document.querySelector(sel))[prop]);
        return {bg: css('body', 'backgroundColor'), text: css('body', 'color'),
                card: css('.face-card', 'backgroundColor'), muted: css('.muted', 'color'),
                link: css('footer a', 'color')}; })()""")
    assert contrast(colours["bg"], "#000000") < 1.5          # a dark page
    assert contrast(colours["card"], "#000000") < 1.5
    for key in ("text", "muted", "link"):
        assert contrast(colours[key], colours["card"]) >= 4.5, (key, colours)
    shot(pg, "image_dark")
    context.close()


def test_indonesian_ui_in_the_browser(page, photo):
    """?lang=id: the page and what its scripts write (cards, bars, chips, statuses) are
    Indonesian; the choice sticks for the next page (cookie)."""
    page.goto(page.base + "/image?lang=id")
    assert page.locator("h1").inner_text() == "Uji gambar"
    page.set_input_files("#file-input", str(photo))
    page.wait_for_selector("#faces .face-card")
    card = page.locator("#faces .face-card").first
    assert card.locator("h3").inner_text().startswith("Wajah 1")
    bars = [b.lower() for b in card.locator(".bar-label").all_inner_texts()]
    assert bars == ["marah", "jijik", "takut", "senang", "sedih", "terkejut", "netral"]
    assert "1 wajah" in page.locator("#result-summary").inner_text()
    shot(page, "image_id")
    page.goto(page.base + "/realtime")                 # no ?lang: the cookie remembers
    assert page.locator("#start").inner_text() == "Nyalakan kamera"
    page.click("#start")
    wait_until(page, "document.querySelector('#rt-faces li') !== null")
    assert page.locator("#start").inner_text() == "Matikan kamera"
    page.click("#start")
    assert page.locator("#rt-status").inner_text() == "Kamera mati."
    page.goto(page.base + "/?lang=en")


def test_try_an_example_on_image_video_and_steps(page):
    """First run (issue 22): one click on "Try an example" analyses a shipped example on
    the Image, Video and Step-by-step pages, exactly as if it had been uploaded."""
    page.goto(page.base + "/image")
    page.click("#try-example")
    wait_until(page, "document.querySelectorAll('#faces .face-card').length === 3")
    assert "group.jpg" in page.locator("#result-name").inner_text()
    shot(page, "image_example")
    page.goto(page.base + "/steps")
    page.click("#try-example")
    page.wait_for_selector("[data-stage=saliency]", timeout=60_000)
    assert page.locator(".face-section").count() == 3
    # one numbering: the candidates list names faces 1, 2, 3 in the faces' order
    listed = page.locator(".cand-list li:not(.rejected)").all_inner_texts()
    assert [t.split(" ·")[0] for t in listed] == ["face 1", "face 2", "face 3"]
    heads = page.locator(".face-section > h2").all_inner_texts()
    assert [h.split(":")[0] for h in heads] == ["Face 1", "Face 2", "Face 3"]
    shot(page, "steps_example")
    page.goto(page.base + "/video")
    page.select_option("#every", "5")
    page.click("#try-example")
    page.wait_for_selector("#tracks .track-card", timeout=120_000)
    assert page.locator("#tracks .track-card").count() >= 2
    wait_until(page, "document.querySelector('#annotated-video').readyState >= 2")
    shot(page, "video_example")


def test_realtime_keeps_a_wide_camera_s_aspect_ratio(browser, server, photo, tmp_path):
    """A 16:9 camera is used whole (issue 22: asking for 640x480 cropped it to 4:3 and lost
    faces at its edges), the picture box takes its shape, and the boxes are drawn on the
    face (the overlay's drawn pixels are centred where the clip's face is)."""
    clip = write_y4m(tmp_path / "wide.y4m", photo, width=1280, height=720, frames=10)
    # a second chromium (its fake camera is a launch option), from the same Playwright
    b = browser.browser_type.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}"])
    try:
        pg = b.new_page(viewport={"width": 1280, "height": 900})
        pg.goto(server.url + "/realtime")
        pg.click("#start")
        wait_until(pg, "document.querySelector('#face-count').textContent === '1'")
        size = pg.evaluate("[document.querySelector('#video').videoWidth,"
                           " document.querySelector('#video').videoHeight]")
        assert size[0] / size[1] == pytest.approx(16 / 9, abs=0.01), size
        box = pg.evaluate("""(() => { const r = document.querySelector('#video-wrap')
            .getBoundingClientRect(); return [r.width, r.height]; })()""")
        assert box[0] / box[1] == pytest.approx(16 / 9, abs=0.02), box
        cx, cy = pg.evaluate("""(() => {
            const c = document.querySelector('#overlay');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let sx = 0, sy = 0, n = 0;
            for (let i = 3; i < d.length; i += 4) if (d[i] > 0) {
                const k = (i - 3) / 4; sx += k % c.width; sy += Math.floor(k / c.width); n++; }
            return [sx / n / c.width, sy / n / c.height]; })()""")
        assert abs(cx - 0.5) < 0.1 and 0.08 < cy < 0.45, (cx, cy)  # on the face (y ~0.25)
        shot(pg, "realtime_wide")
    finally:
        b.close()
