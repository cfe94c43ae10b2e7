"""Each kind of bad input: an error naming the file and the problem by default; with
``skip_bad`` the input is skipped and listed in ``report.bad`` (nothing silently dropped)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from ekspresi.data import load
from ekspresi.data.synthetic import write_class_folders, write_fer2013_csv
from ekspresi.errors import BadInputError

FIX = Path(__file__).parent / "fixtures" / "datasets"


@pytest.fixture()
def folders(tmp_path) -> Path:
    return write_class_folders(tmp_path / "mine", {"happy": 3, "sad": 2})


def _both(spec, path_part: str, problem: str, n_good: int):
    with pytest.raises(BadInputError, match=problem) as err:
        load(spec)
    assert path_part in str(err.value)
    ss = load(spec, skip_bad=True)
    assert len(ss) == n_good
    assert len(ss.report.bad) == 1
    bad_path, bad_problem = ss.report.bad[0]
    assert path_part in bad_path
    assert re.search(problem, bad_problem)
    return ss


def test_non_image_file(folders):
    (folders / "happy" / "notes.txt").write_text("not a face")
    _both(folders, "notes.txt", "not an image", 5)


def test_truncated_image(folders):
    victim = next((folders / "sad").iterdir())
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    _both(folders, victim.name, "corrupt or truncated", 4)


def test_empty_file(folders):
    (folders / "sad" / "zero.png").write_bytes(b"")
    _both(folders, "zero.png", "empty file", 5)


def test_unknown_class_folder(folders):
    write_class_folders(folders, {"grumpy": 2}, seed=5)
    ss = _both(folders, "grumpy", "unknown class folder 'grumpy'", 5)
    assert "2 files" in ss.report.bad[0][1]


def test_empty_class_folder(folders):
    (folders / "fear").mkdir()
    _both(folders, "fear", "empty class folder", 5)


def test_file_outside_class_folders(folders):
    (folders / "README.txt").write_text("my data")
    _both(folders, "README.txt", "outside the class folders", 5)


def test_csv_wrong_pixel_count(tmp_path):
    p = write_fer2013_csv(tmp_path / "fer2013.csv", [(0, "Training"), (3, "PublicTest")])
    lines = p.read_text().splitlines()
    lines.insert(2, "4," + " ".join(["1"] * 2000) + ",Training")
    p.write_text("\n".join(lines) + "\n")
    _both(p, "fer2013.csv:3", "2000 pixel values, expected 2304", 2)


@pytest.mark.parametrize("row, problem", [
    ("9,{px},Training", "not a FER2013 class index"),
    ("2,{px},Holdout", "Usage 'Holdout'"),
    ("2,{bad},Training", "outside 0-255"),
])
def test_csv_bad_values(tmp_path, row, problem):
    p = write_fer2013_csv(tmp_path / "fer2013.csv", [(0, "Training")])
    px, bad = " ".join(["5"] * 2304), " ".join(["300"] * 2304)
    p.write_text(p.read_text() + row.format(px=px, bad=bad) + "\n")
    _both(p, "fer2013.csv:3", problem, 1)


def test_csv_without_fer2013_header(tmp_path):
    p = tmp_path / "other.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(BadInputError, match="not a FER2013 CSV"):
        load(p)


def _ferplus_copy(tmp_path) -> Path:
    dst = tmp_path / "ferplus"
    shutil.copytree(FIX / "ferplus", dst)
    return dst


def test_ferplus_vote_row_without_image(tmp_path):
    root = _ferplus_copy(tmp_path)
    (root / "FER2013Valid" / "fer0028640.png").unlink()
    _both(root, "FER2013Valid/label.csv:2", "does not exist", 6)


def test_ferplus_image_without_vote_row(tmp_path):
    root = _ferplus_copy(tmp_path)
    shutil.copy(root / "FER2013Test" / "fer0032220.png", root / "FER2013Test" / "extra.png")
    _both(root, "extra.png", "no vote row", 7)


def test_ferplus_malformed_vote_row(tmp_path):
    root = _ferplus_copy(tmp_path)
    with open(root / "FER2013Test" / "label.csv", "a") as f:
        f.write('fer0032220.png,"(0, 0, 48, 48)",1,x,0,0,0,0,0,0,0,0\n')
    _both(root, "FER2013Test/label.csv:4", "not integers", 7)


def test_ferplus_missing_label_csv(tmp_path):
    root = _ferplus_copy(tmp_path)
    (root / "FER2013Valid" / "label.csv").unlink()
    with pytest.raises(BadInputError, match="label.csv"):
        load(root)


def test_jaffe_name_off_scheme(tmp_path):
    root = tmp_path / "jaffe"
    shutil.copytree(FIX / "jaffe", root)
    shutil.copy(root / "KA.AN1.39.tiff", root / "KA.XX1.99.tiff")
    _both(f"jaffe:{root}", "KA.XX1.99.tiff", "does not follow the JAFFE scheme", 3)


def test_all_bad_is_an_error_unless_skipping(tmp_path):
    d = tmp_path / "d" / "happy"
    d.mkdir(parents=True)
    (d / "a.jpg").write_text("not a jpeg")
    with pytest.raises(BadInputError):
        load(tmp_path / "d")
    ss = load(tmp_path / "d", skip_bad=True)
    assert len(ss) == 0 and len(ss.report.bad) == 1


def test_skipped_bad_inputs_survive_the_cache(folders):
    (folders / "happy" / "notes.txt").write_text("x")
    first = load(folders, skip_bad=True)
    again = load(folders, skip_bad=True)  # from the cache
    assert again.report.bad == first.report.bad and len(again) == 5
    with pytest.raises(BadInputError, match="notes.txt: not an image"):
        load(folders)  # a cached set with bad inputs still refuses to load strictly
