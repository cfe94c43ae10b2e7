"""`ekspresi data inspect` / `preview` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import cv2

from ekspresi.cli import main
from ekspresi.labels import CLASSES

FIX = Path(__file__).parent / "fixtures" / "datasets"


def run_json(capsys, *args) -> dict:
    assert main(["data", "inspect", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_inspect_json_official_splits(capsys):
    out = run_json(capsys, str(FIX / "fer2013"))
    assert out["splits"] == {"train": {c: 2 for c in CLASSES}, "val": {c: 1 for c in CLASSES},
                             "test": {c: 1 for c in CLASSES}}
    assert out["total"] == 28 and out["split_totals"] == {"train": 14, "val": 7, "test": 7}
    assert out["sizes"] == {"48x48": 28}
    assert out["bad"] == [] and out["dropped"] == {}
    assert out["duplicates"]["groups"] == 0 and "unsplit" not in out


def test_inspect_json_ferplus_reports_the_vote_rule(capsys):
    out = run_json(capsys, str(FIX / "ferplus"))
    assert out["split_totals"] == {"train": 3, "val": 2, "test": 2}
    assert sum(out["dropped"].values()) == 4 and out["soft_labels"] is True
    assert out["splits"]["val"]["contempt"] == 1


def test_inspect_json_several_datasets_and_bad_files(capsys, tmp_path):
    mine = tmp_path / "mine"
    (mine / "happy").mkdir(parents=True)
    img = cv2.imread(str(next((FIX / "ckplus48" / "happy").iterdir())))
    cv2.imwrite(str(mine / "happy" / "a.png"), img)
    (mine / "happy" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    out = run_json(capsys, str(FIX / "ckplus48"), f"folders:{mine}", str(FIX / "jaffe"),
                   "--skip-bad")
    assert out["total"] == 9 + 1 + 3
    assert out["unsplit"]["happy"] == 3 + 1 + 1
    assert out["splits"]["train"] == {c: 0 for c in out["classes"]}
    assert [b["path"] for b in out["bad"]] == [str(mine / "happy" / "broken.jpg")]
    assert set(out["datasets"]) == {str(FIX / "ckplus48"), f"folders:{mine}", str(FIX / "jaffe")}
    assert out["datasets"][str(FIX / "jaffe")]["source"] == "jaffe"
    assert out["datasets"][f"folders:{mine}"]["total"] == 1
    assert out["subjects"] == 4 + 3
    assert out["sizes"] == {"48x48": 10, "64x64": 3}


def test_inspect_text_and_classes(capsys):
    assert main(["data", "inspect", str(FIX / "ckplus48"), "--classes", "happy,contempt"]) == 0
    text = capsys.readouterr().out
    assert "happy" in text and "contempt" in text and "angry " not in text.split("dropped")[0]
    assert "dropped: 3 (class not selected: angry)" in text


def test_bad_input_exits_2_with_the_file_named(capsys, tmp_path):
    d = tmp_path / "d"
    (d / "grumpy").mkdir(parents=True)
    (d / "happy").mkdir()
    (d / "happy" / "x.txt").write_text("x")
    assert main(["data", "inspect", str(d)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "grumpy" in err and "Traceback" not in err


def test_preview_writes_a_labelled_grid(capsys, tmp_path):
    out = tmp_path / "grid.png"
    assert main(["data", "preview", str(FIX / "fer2013"), "-o", str(out), "--per-class", "3",
                 "--size", "40"]) == 0
    grid = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE)
    from ekspresi.data.preview import LABEL_WIDTH
    assert grid.shape == (7 * 40, LABEL_WIDTH + 3 * 40)
    assert (grid[:, :LABEL_WIDTH] < 128).any()  # class names are drawn
    assert "wrote" in capsys.readouterr().out
