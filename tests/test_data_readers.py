"""Every registered dataset layout on its committed fixture (real FER2013/FER+/CK+ files,
synthetic JAFFE/KDEF names), then each reader's particulars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ekspresi.data import load, load_many
from ekspresi.data.ferplus import DROP_NOT_FACE, DROP_TIE, DROP_UNKNOWN, vote_label
from ekspresi.data.loading import LAYOUTS, detect_layout, parse_spec
from ekspresi.data.synthetic import write_class_folders, write_fer2013_csv, write_kdef
from ekspresi.errors import BadInputError, LabelError
from ekspresi.labels import ALL_CLASSES, CLASSES

FIX = Path(__file__).parent / "fixtures" / "datasets"

#: layout -> its tiny fixture (tests/fixtures/datasets/README.md); every layout needs one.
FIXTURES = {
    "fer2013-folder": FIX / "fer2013",
    "fer2013-csv": FIX / "fer2013.csv",
    "ferplus": FIX / "ferplus",
    "folders": FIX / "ckplus48",
    "jaffe": FIX / "jaffe",
    "kdef": FIX / "kdef",
    "pack": FIX / "ckplus48.ekpack",
}


def idx(name: str) -> int:
    return ALL_CLASSES.index(name)


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_every_registered_layout_reads_and_recognises_its_fixture(name):
    layout = LAYOUTS[name]
    assert name in FIXTURES, f"layout {name!r} has no fixture under {FIX}"
    path = FIXTURES[name]
    assert path.exists(), path
    assert layout.source and layout.example
    assert detect_layout(path) == name
    ss = load(f"{name}:{path}", cache=False)
    assert len(ss) > 0 and ss.images.dtype == np.uint8
    assert set(ss.splits) - {""} <= set(layout.splits)
    assert len(ss) == len(ss.labels) == len(ss.paths)


def test_detection_recognises_no_fixture_as_another_layout():
    """Each detector accepts its own fixture only, so the detection order cannot hide a
    layout (the generic class folders also accept the FER2013 export, which comes first)."""
    for name, layout in LAYOUTS.items():
        claimed = {other for other, path in FIXTURES.items() if layout.detect(path)}
        expected = {name, "fer2013-folder"} if name == "folders" else {name}
        assert claimed == expected, name


def test_pack_fixture_holds_exactly_its_source():
    packed, source = load(FIXTURES["pack"], cache=False), load(FIX / "ckplus48", cache=False)
    assert np.array_equal(packed.images, source.images)
    assert packed.labels.tolist() == source.labels.tolist()
    assert packed.subjects.tolist() == source.subjects.tolist()


def test_fer2013_folders_official_splits():
    ss = load(FIX / "fer2013")
    assert detect_layout(FIX / "fer2013") == "fer2013-folder"
    assert len(ss) == 28 and ss.uniform and ss.images.shape[1:] == (48, 48)
    assert ss.images.dtype == np.uint8
    assert set(ss.sources) == {"fer2013"}
    for split in ("train", "val", "test"):
        part = ss.where(split=split)
        expected = 2 if split == "train" else 1
        assert part.class_counts(CLASSES) == {c: expected for c in CLASSES}
    for s in ss:
        name = Path(s.path).name
        want = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
        assert s.split == want[name.split("_")[0]]
        assert ALL_CLASSES[s.label] == Path(s.path).parent.name
    assert ss.soft is None and set(ss.subjects) == {""}


def test_fer2013_csv_fixture_rows_are_the_folder_faces():
    ss, faces = load(FIXTURES["fer2013-csv"], cache=False), load(FIX / "fer2013", cache=False)
    assert ss.splits.tolist() == ["train", "val", "test"]
    assert [ALL_CLASSES[i] for i in ss.labels] == ["angry", "happy", "surprise"]
    for image in ss.images:
        assert any(np.array_equal(image, f) for f in faces.images)


def test_fer2013_csv(tmp_path):
    rows = [(0, "Training"), (3, "Training"), (6, "PublicTest"), (5, "PrivateTest"),
            (1, "Training")]
    csv_path = write_fer2013_csv(tmp_path / "fer2013.csv", rows)
    ss = load(csv_path)
    assert detect_layout(csv_path) == "fer2013-csv"
    assert len(ss) == 5 and ss.images.shape == (5, 48, 48)
    assert ss.labels.tolist() == [0, 3, 6, 5, 1]
    assert ss.splits.tolist() == ["train", "train", "val", "test", "train"]
    assert ss.paths[0] == f"{csv_path}:2"  # line 1 is the header
    # the pixels are the CSV's, in row-major order
    first = [int(v) for v in (tmp_path / "fer2013.csv").read_text().splitlines()[1]
             .split(",")[1].split()]
    assert ss.images[0].ravel().tolist() == first


def test_fer2013_csv_without_usage(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("emotion,pixels\n3," + " ".join(["7"] * 2304) + "\n")
    ss = load(p)
    assert ss.splits.tolist() == [""] and int(ss.images[0, 0, 0]) == 7


def test_ferplus_vote_rule_and_soft_labels():
    ss = load(FIX / "ferplus")
    assert detect_layout(FIX / "ferplus") == "ferplus"
    assert {s: int((ss.splits == s).sum()) for s in ("train", "val", "test")} == \
        {"train": 3, "val": 2, "test": 2}
    assert ss.report.dropped == {DROP_TIE: 2, DROP_UNKNOWN: 1, DROP_NOT_FACE: 1}
    by_name = {Path(p).name: i for i, p in enumerate(ss.paths)}
    # fer0000000: neutral 4, sadness 1, anger 3, disgust 2 -> neutral
    i = by_name["fer0000000.png"]
    assert ss.labels[i] == idx("neutral")
    np.testing.assert_allclose(ss.soft[i], np.array([3, 2, 0, 0, 1, 0, 4, 0]) / 10, atol=1e-6)
    # fer0028639 (Valid): 6 of 10 votes for contempt
    assert ss.labels[by_name["fer0028639.png"]] == idx("contempt")
    assert ss.soft.shape == (7, len(ALL_CLASSES))
    np.testing.assert_allclose(ss.soft.sum(1), 1, atol=1e-6)
    assert (ss.soft.argmax(1) == ss.labels).all()


@pytest.mark.parametrize("votes, label, reason", [
    ([4, 0, 0, 1, 3, 2, 0, 0, 0, 0], "neutral", None),
    ([0, 5, 0, 0, 0, 0, 0, 0, 5, 0], None, DROP_TIE),
    ([1, 0, 3, 1, 0, 0, 1, 0, 4, 0], None, DROP_UNKNOWN),
    ([0, 0, 0, 0, 0, 0, 0, 0, 0, 10], None, DROP_NOT_FACE),
    ([0, 0, 0, 0, 0, 0, 0, 9, 1, 0], "contempt", None),
])
def test_ferplus_vote_label(votes, label, reason):
    got, why = vote_label(np.array(votes))
    assert why == reason
    assert got == (None if label is None else idx(label))


def test_class_folders_ckplus_subjects_and_synonyms():
    ss = load(FIX / "ckplus48")
    assert detect_layout(FIX / "ckplus48") == "folders"
    assert set(ss.sources) == {"ckplus48"}
    assert ss.class_counts(("angry", "happy", "contempt")) == \
        {"angry": 3, "happy": 3, "contempt": 3}  # anger -> angry via synonyms
    assert set(ss.subjects) == {"S010", "S999", "S138", "S895"}
    assert set(ss.splits) == {""}


def test_class_folders_with_user_synonyms_and_split_folders(tmp_path):
    write_class_folders(tmp_path / "mine" / "train", {"Marah": 2, "happiness": 3})
    write_class_folders(tmp_path / "mine" / "validation", {"Marah": 1, "happiness": 1}, seed=1)
    ss = load(tmp_path / "mine")
    assert detect_layout(tmp_path / "mine") == "folders"  # no FER2013 file names
    assert set(ss.sources) == {"mine"}
    assert ss.where(split="train").class_counts(("angry", "happy")) == {"angry": 2, "happy": 3}
    assert ss.where(split="val").class_counts(("angry", "happy")) == {"angry": 1, "happy": 1}


def test_jaffe_file_names():
    ss = load(FIX / "jaffe")
    assert detect_layout(FIX / "jaffe") == "jaffe"
    got = {Path(p).name: (ALL_CLASSES[lab], subj) for p, lab, subj
           in zip(ss.paths, ss.labels, ss.subjects)}
    assert got == {"KA.AN1.39.tiff": ("angry", "KA"), "KL.HA1.158.tiff": ("happy", "KL"),
                   "KM.SU1.14.tiff": ("surprise", "KM")}
    assert ss.images.shape == (3, 64, 64) and set(ss.sources) == {"jaffe"}


def test_kdef_file_names(tmp_path):
    root = write_kdef(tmp_path / "KDEF", subjects=("AF01", "BF01", "AM02"),
                      views=("S", "HL"))
    ss = load(root)
    assert detect_layout(root) == "kdef"
    assert len(ss) == 3 * 7 * 2
    assert set(ss.subjects) == {"F01", "M02"}  # sessions A and B show the same person
    i = [Path(p).name for p in ss.paths].index("AF01AFS.JPG")
    assert ALL_CLASSES[ss.labels[i]] == "fear" and ss.subjects[i] == "F01"
    assert ss.class_counts(CLASSES) == {c: 6 for c in CLASSES}


def test_explicit_layout_spec(tmp_path):
    assert parse_spec("kdef:/x/y") == ("kdef", Path("/x/y"))
    assert parse_spec("/x/y:z") == (None, Path("/x/y:z"))
    ss = load(f"folders:{FIX / 'fer2013' / 'train'}")
    assert len(ss) == 14 and set(ss.splits) == {""} and set(ss.sources) == {"train"}


def test_undetectable_layout_is_an_error(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("hello")
    with pytest.raises(BadInputError, match="cannot tell the dataset layout"):
        load(tmp_path / "x")
    with pytest.raises(BadInputError, match="no such file"):
        load(tmp_path / "missing")


def test_class_selection_counts_what_it_drops():
    ss = load(FIX / "fer2013", classes="three")
    assert ss.present_classes() == ("happy", "sad", "surprise")
    assert len(ss) == 12
    assert ss.report.dropped == {f"class not selected: {c}": 4
                                 for c in ("angry", "disgust", "fear", "neutral")}
    with pytest.raises(LabelError):
        load(FIX / "fer2013", classes="happy,grumpy")


def test_load_many_combines_and_keeps_sources(tmp_path):
    kdef = write_kdef(tmp_path / "kdef", subjects=("AF01",))
    ss = load_many([FIX / "fer2013", FIX / "ckplus48", FIX / "jaffe", kdef])
    assert len(ss) == 28 + 9 + 3 + 7
    counts = {s: int((ss.sources == s).sum()) for s in set(ss.sources)}
    assert counts == {"fer2013": 28, "ckplus48": 9, "jaffe": 3, "kdef": 7}
    assert not ss.uniform  # 48x48, 64x64 (JAFFE fixture) and KDEF 64x64 mixed
    from ekspresi.data.cache import faces_array
    faces = faces_array(ss, 48)
    assert faces.shape == (len(ss), 48, 48) and faces.dtype == np.uint8


def test_readme_data_section_describes_every_layout():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    data = readme[readme.index("## Data\n"):readme.index("### Datasets\n")]
    for name in LAYOUTS:
        assert f"| `{name}` |" in data, f"README 'Data' has no row for layout {name!r}"
    # only the CI note may point outside the repository
    assert data.count("../shared") == 2 and "../shared" not in readme.replace(data, "")
