"""Paper 3's data protocol on synthetic datasets in the real layouts: one CK+ frame per
sequence, CK+ contempt as neutral, KDEF frontal images of one session when a KDEF folder is
given, pooled undersampling before the 80/10/10 split (so val/test are balanced)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ekspresi.data.protocol import apply_protocol, kdef_subset, last_frames, relabel
from ekspresi.data.records import SampleSet
from ekspresi.data.synthetic import face, write_class_folders, write_kdef
from ekspresi.errors import ConfigError
from ekspresi.labels import ALL_CLASSES, CLASSES
from ekspresi.train.config import parse_config
from ekspresi.train.data import prepare_data

FER_TRAIN = {"angry": 30, "disgust": 8, "fear": 30, "happy": 30, "sad": 30, "surprise": 30,
             "neutral": 30}
FER_TEST = {c: (4 if c == "disgust" else 10) for c in FER_TRAIN}  # half public, half private
CK_SEQUENCES = {"anger": 3, "contempt": 2, "disgust": 2, "fear": 2, "happy": 3, "sadness": 2,
                "surprise": 3}


def write_ckplus(root: Path, sequences: dict[str, int], frames: int = 3, size: int = 24) -> Path:
    """CK+48 layout: ``root/<class>/S<subject>_<sequence>_<frame>.png``, the last
    ``frames`` frames of each sequence (frame numbers differ per sequence)."""
    rng = np.random.default_rng(7)
    subject = 10
    for cls, n in sequences.items():
        d = root / cls
        d.mkdir(parents=True, exist_ok=True)
        label = ALL_CLASSES.index({"anger": "angry", "sadness": "sad"}.get(cls, cls))
        for s in range(n):
            subject += 1
            last = 12 + s
            for f in range(last - frames + 1, last + 1):
                Image.fromarray(face(label, rng, size)).save(
                    d / f"S{subject:03d}_00{s + 1}_{f:08d}.png")
    return root


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("p3")
    fer = root / "fer2013"
    write_class_folders(fer / "train", FER_TRAIN, size=24, seed=1, names=["Training_{i}"])
    write_class_folders(fer / "test", FER_TEST, size=24, seed=2,
                        names=["PublicTest_{i}", "PrivateTest_{i}"])
    ck = write_ckplus(root / "ckplus48", CK_SEQUENCES)
    kdef = write_kdef(root / "kdef", subjects=("AF01", "AM02", "BF01", "BM02"),
                      views=("S", "HL"), size=32, seed=3)
    return {"fer": fer, "ck": ck, "kdef": kdef, "root": root}


def p3_config(sources, kdef: Path | None, **data) -> dict:
    d = {"sources": [f"fer2013-folder:{sources['fer']}", f"folders:{sources['ck']}"],
         "optional_sources": [f"kdef:{kdef}"] if kdef else [],
         "classes": "fer7", "split": "stratified", "ratios": [0.8, 0.1, 0.1],
         "split_seed": 42, "balance": "undersample", "balance_scope": "pooled",
         "frames_per_sequence": 1, "relabel": {"contempt": "neutral"},
         "kdef_views": ["S"], "kdef_sessions": ["A"]}
    d.update(data)
    return {"name": "p3", "seed": 42, "data": d,
            "model": {"name": "paper-cnn", "input_size": 16}}


def test_paper3_protocol_with_kdef(sources):
    data = prepare_data(parse_config(p3_config(sources, sources["kdef"])), 16)
    # disgust is the smallest pooled class: 12 FER2013 + 2 CK+ sequences + 2 KDEF (A, S)
    n = 12 + 2 + 2
    per_class = {c: sum(data.counts[s][c] for s in ("train", "val", "test")) for c in CLASSES}
    assert per_class == {c: n for c in CLASSES}
    # 80/10/10 per class after balancing: 13 / 1 / 2 of 16 -> val and test balanced too
    assert data.counts["train"] == {c: 13 for c in CLASSES}
    assert data.counts["val"] == {c: 1 for c in CLASSES}
    assert data.counts["test"] == {c: 2 for c in CLASSES}
    notes = data.notes
    assert notes["frames_per_sequence"] == {"kept_per_sequence": 1, "removed": 2 * 17}
    assert notes["relabel"] == {"contempt -> neutral": 2}
    assert notes["kdef"]["kept"] == 14 and notes["kdef"]["removed"] == 42
    assert notes["optional_sources"] == {f"kdef:{sources['kdef']}": "used"}
    assert notes["balance"]["scope"] == "pooled"
    assert notes["balance"]["pooled_before"]["disgust"] == n
    assert notes["balance"]["pooled_before"]["neutral"] == 30 + 10 + 2 + 2
    # no CK+ sequence contributes two frames; KDEF images are session A, straight view
    ck = [Path(p).name for p in np.concatenate([s.paths for s in data.splits.values()])
          if "ckplus48" in p]
    assert len({n[:8] for n in ck}) == len(ck)
    kd = [Path(p).name for s in data.splits.values() for p in s.paths if "kdef" in p]
    assert kd and all(n.startswith("A") and n[-5] == "S" for n in kd)


def test_paper3_protocol_without_kdef_folder(sources):
    missing = sources["root"] / "no-kdef-here"
    data = prepare_data(parse_config(p3_config(sources, missing)), 16)
    n = 12 + 2
    assert {c: sum(data.counts[s][c] for s in data.counts) for c in CLASSES} == \
        {c: n for c in CLASSES}
    assert data.notes["optional_sources"] == {f"kdef:{missing}": "not found, left out"}
    assert data.notes["kdef"]["kept"] == 0


def test_default_protocol_is_unchanged(sources):
    """Without the paper options: all CK+ frames, contempt dropped, train-only balancing."""
    cfg = p3_config(sources, None, balance_scope="train", frames_per_sequence=None,
                    relabel={}, kdef_views=None, kdef_sessions=None)
    data = prepare_data(parse_config(cfg), 16)
    assert "frames_per_sequence" not in data.notes and "relabel" not in data.notes
    assert data.notes["dropped"]["class not selected: contempt"] == 6
    # every FER2013 image and all three frames of the 15 non-contempt CK+ sequences
    assert data.notes["loaded"] == sum(FER_TRAIN.values()) + sum(FER_TEST.values()) + 3 * 15
    assert len(set(data.counts["train"].values())) == 1   # train balanced
    assert len(set(data.counts["test"].values())) > 1     # test keeps its natural mix


def _set(names: list[str], labels: list[int], source: str = "x") -> SampleSet:
    n = len(names)
    images = np.arange(n, dtype=np.uint8).repeat(4).reshape(n, 2, 2)
    return SampleSet(images, labels, [source] * n, [""] * n, [""] * n,
                     [f"/d/{source}/{x}" for x in names])


def test_last_frames_keeps_the_apex_of_each_sequence():
    ss = _set(["S005_001_00000009.png", "S005_001_00000011.png", "S005_001_00000010.png",
               "S005_002_00000003.png", "S006_001_00000020.png", "S006_001_00000019.png",
               "Training_1.jpg"], [0] * 7)
    out, removed = last_frames(ss, 1)
    assert removed == 3
    assert sorted(Path(p).name for p in out.paths) == [
        "S005_001_00000011.png", "S005_002_00000003.png", "S006_001_00000020.png",
        "Training_1.jpg"]
    assert len(last_frames(ss, 2)[0]) == 6
    with pytest.raises(ConfigError):
        last_frames(ss, 0)


def test_relabel_and_kdef_subset():
    ss = _set(["a.png", "b.png", "c.png"], [7, 7, 3])
    out, moved = relabel(ss, {"contempt": "netral"})
    assert moved == {"contempt -> neutral": 2}
    assert out.labels.tolist() == [6, 6, 3] and ss.labels.tolist() == [7, 7, 3]
    kd = _set(["AF01ANS.JPG", "BF01ANS.JPG", "AF01ANHL.JPG", "AM02HAS.JPG", "other.png"],
              [0, 0, 0, 3, 3], "kdef")
    out, kept, removed = kdef_subset(kd, ["S"], ["A"])
    assert (kept, removed) == (2, 2) and len(out) == 3
    with pytest.raises(ConfigError, match="kdef_views"):
        kdef_subset(kd, ["front"], None)
    _, notes = apply_protocol(ss)
    assert notes == {}


@pytest.mark.parametrize("data, match", [
    ({"balance_scope": "pooled"}, "pooled needs data.balance"),
    ({"balance_scope": "pooled", "balance": "oversample"}, "copy training images"),
    ({"balance_scope": "everything"}, "balance_scope"),
    ({"frames_per_sequence": "last"}, "frames_per_sequence"),
])
def test_protocol_config_errors(data, match):
    with pytest.raises(ConfigError, match=match):
        parse_config({"data": {"sources": ["data/x"], **data}})
