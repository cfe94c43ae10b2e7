"""The decoded-dataset cache: hits, invalidation when files change, atomic writes, and the
one preprocessing path for face arrays."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from ekspresi.data import cache, load, loading
from ekspresi.data.cache import faces_array
from ekspresi.data.synthetic import write_class_folders, write_fer2013_csv
from ekspresi.preprocess import prepare_face

FIX = Path(__file__).parent / "fixtures" / "datasets"


@pytest.fixture()
def count_reads(monkeypatch) -> list[str]:
    """Records every real (uncached) read."""
    calls: list[str] = []
    for name, layout in list(loading.LAYOUTS.items()):
        def wrapped(p, *, strict, _r=layout.read, _n=name):
            calls.append(_n)
            return _r(p, strict=strict)
        monkeypatch.setitem(loading.LAYOUTS, name, dataclasses.replace(layout, read=wrapped))
    return calls


def _same(a, b) -> None:
    assert np.array_equal(a.images, b.images)
    assert a.labels.tolist() == b.labels.tolist()
    for col in ("sources", "splits", "subjects", "paths"):
        assert getattr(a, col).tolist() == getattr(b, col).tolist()


def test_second_load_is_a_cache_hit(dataset_cache, count_reads):
    first = load(FIX / "fer2013")
    assert count_reads == ["fer2013-folder"]
    assert len(list((dataset_cache / "datasets").glob("*.npz"))) == 1
    second = load(FIX / "fer2013")
    assert count_reads == ["fer2013-folder"]  # not read again
    _same(first, second)
    assert second.sources.dtype == object and isinstance(second.paths[0], str)


def test_soft_labels_and_reports_round_trip(tmp_path, count_reads):
    a = load(FIX / "ferplus", cache_dir=tmp_path / "c")
    b = load(FIX / "ferplus", cache_dir=tmp_path / "c")
    assert count_reads == ["ferplus"]
    _same(a, b)
    np.testing.assert_array_equal(a.soft, b.soft)
    assert a.report == b.report and b.report.dropped


def test_mixed_sizes_round_trip(tmp_path, count_reads):
    write_class_folders(tmp_path / "d", {"happy": 2}, size=48)
    write_class_folders(tmp_path / "d", {"sad": 2}, size=30, seed=1)
    a = load(tmp_path / "d", cache_dir=tmp_path / "c")
    b = load(tmp_path / "d", cache_dir=tmp_path / "c")
    assert count_reads == ["folders"] and not b.uniform
    assert [im.shape for im in b.images] == [im.shape for im in a.images]
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images))


def test_changed_added_and_removed_files_invalidate(tmp_path, count_reads):
    root = write_class_folders(tmp_path / "d", {"happy": 3})
    c = tmp_path / "c"
    assert len(load(root, cache_dir=c)) == 3
    write_class_folders(root, {"sad": 1}, seed=9)                      # added
    assert len(load(root, cache_dir=c)) == 4
    victim = sorted((root / "happy").iterdir())[0]
    victim.unlink()                                                    # removed
    assert len(load(root, cache_dir=c)) == 3
    other = sorted((root / "happy").iterdir())[0]
    before = load(root, cache_dir=c)
    write_class_folders(tmp_path / "new", {"happy": 1}, seed=42)
    os.replace(next((tmp_path / "new" / "happy").iterdir()), other)   # content changed
    after = load(root, cache_dir=c)
    assert count_reads == ["folders"] * 4  # `before` was a cache hit
    i = list(after.paths).index(str(other))
    assert not np.array_equal(before.images[i], after.images[i])


def test_csv_change_invalidates(tmp_path, count_reads):
    p = write_fer2013_csv(tmp_path / "fer2013.csv", [(0, "Training")])
    load(p, cache_dir=tmp_path / "c")
    write_fer2013_csv(p, [(0, "Training"), (2, "PrivateTest")], seed=3)
    os.utime(p, ns=(1, 1))  # even with an old mtime the size differs
    assert len(load(p, cache_dir=tmp_path / "c")) == 2
    assert count_reads == ["fer2013-csv"] * 2


def test_no_cache_option_reads_again(tmp_path, count_reads):
    load(FIX / "jaffe", cache=False, cache_dir=tmp_path / "c")
    load(FIX / "jaffe", cache=False, cache_dir=tmp_path / "c")
    assert count_reads == ["jaffe", "jaffe"] and not (tmp_path / "c").exists()


def test_atomic_write_leaves_no_temporary_files(tmp_path, monkeypatch):
    ss = load(FIX / "jaffe", cache=False)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(cache.np, "savez", boom)
    with pytest.raises(OSError):
        cache.store("k" * 32, ss, tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    path = cache.store("k" * 32, ss, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_corrupt_cache_entry_is_rebuilt(tmp_path, count_reads):
    load(FIX / "jaffe", cache_dir=tmp_path)
    entry = next(tmp_path.glob("*.npz"))
    entry.write_bytes(b"garbage")
    assert len(load(FIX / "jaffe", cache_dir=tmp_path)) == 3
    assert count_reads == ["jaffe", "jaffe"]


def test_faces_array_uses_prepare_face():
    ss = load(FIX / "jaffe", cache=False)  # 64x64
    faces = faces_array(ss, 48)
    assert faces.shape == (3, 48, 48) and faces.dtype == np.uint8
    for im, f in zip(ss.images, faces):
        np.testing.assert_array_equal(f, prepare_face(im, 48))
    same = load(FIX / "ckplus48", cache=False)
    np.testing.assert_array_equal(faces_array(same, 48), same.images)
