"""Packed datasets: exact round trip of every reader's output, and clear errors for
truncated, corrupted and wrong-version files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from ekspresi.cli import main
from ekspresi.data.loading import load, load_many
from ekspresi.data.pack import MAGIC, read_header, read_pack
from ekspresi.data.pack_writer import write_pack
from ekspresi.errors import BadInputError

FIX = Path(__file__).parent / "fixtures" / "datasets"
SOURCES = [f"fer2013-folder:{FIX / 'fer2013'}", f"ferplus:{FIX / 'ferplus'}",
           f"folders:{FIX / 'ckplus48'}", f"jaffe:{FIX / 'jaffe'}"]


def _same(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a.images, b.images):
        assert x.dtype == np.uint8 and np.array_equal(x, y)
    for col in ("labels", "sources", "splits", "subjects", "paths"):
        assert (getattr(a, col) == getattr(b, col)).all(), col
    assert (a.soft is None) == (b.soft is None)
    if a.soft is not None:
        np.testing.assert_array_equal(a.soft, b.soft)
    assert a.report.dropped == b.report.dropped


@pytest.mark.parametrize("codec", ["auto", "raw"])
def test_round_trip_every_layout_exactly(tmp_path, codec):
    out = tmp_path / "all.ekpack"
    header = write_pack(SOURCES, out, codec=codec)
    ref = load_many(SOURCES, cache=False)
    _same(ref, read_pack(out))
    _same(ref, load(f"pack:{out}", cache=False))
    _same(ref, load(str(out), cache=False))  # the layout is detected from the suffix
    assert header["samples"] == len(ref)
    assert [s["spec"] for s in header["sources"]] == SOURCES
    if codec == "raw":
        assert header["codecs"]["file"] == 0
    else:  # the JPEG/PNG files are kept as they are: smaller than their pixels
        assert header["codecs"]["file"] > 0
    assert read_header(out)["pixels_sha256"] == header["pixels_sha256"]


def test_cli_pack_then_inspect(tmp_path, capsys):
    out = tmp_path / "fer"
    assert main(["data", "pack", SOURCES[0], "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fer.ekpack" in printed and "samples" in printed
    assert main(["data", "inspect", f"pack:{out}.ekpack", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    ref = load(SOURCES[0], cache=False)
    assert summary["total"] == len(ref)
    assert summary["classes"] == {k: v for k, v in ref.class_counts().items() if v}


def test_training_config_accepts_a_pack(tmp_path):
    from ekspresi.train.config import parse_config
    from ekspresi.train.data import prepare_data

    pack = tmp_path / "fer.ekpack"
    write_pack([SOURCES[0]], pack)
    cfgs = [parse_config({"data": {"sources": [s], "split": "stratified",
                                   "ratios": [0.5, 0.25, 0.25]}}) for s in (SOURCES[0],
                                                                            f"pack:{pack}")]
    a, b = (prepare_data(c, 48) for c in cfgs)
    for split in ("train", "val", "test"):
        assert np.array_equal(a.splits[split].images, b.splits[split].images)
        assert (a.splits[split].labels == b.splits[split].labels).all()


@pytest.fixture()
def pack(tmp_path) -> Path:
    out = tmp_path / "p.ekpack"
    write_pack([SOURCES[2]], out)
    return out


def test_truncated_pack_names_the_file(pack):
    data = pack.read_bytes()
    for cut in (len(data) - 10, len(MAGIC) + 5, 30):
        pack.write_bytes(data[:cut])
        with pytest.raises(BadInputError, match="truncated") as exc:
            read_pack(pack)
        assert str(pack) in str(exc.value)


def test_corrupted_pack_is_detected(pack):
    data = bytearray(pack.read_bytes())
    data[-100] ^= 0xFF
    pack.write_bytes(bytes(data))
    with pytest.raises(BadInputError, match="checksum") as exc:
        read_pack(pack)
    assert str(pack) in str(exc.value)


def test_wrong_version_and_not_a_pack(pack, tmp_path):
    data = bytearray(pack.read_bytes())
    data[len(MAGIC):len(MAGIC) + 4] = struct.pack("<I", 99)
    pack.write_bytes(bytes(data))
    with pytest.raises(BadInputError, match="format 99"):
        read_pack(pack)
    other = tmp_path / "x.ekpack"
    other.write_bytes(b"PK\x03\x04 not a pack")
    with pytest.raises(BadInputError, match="not an ekspresi dataset pack"):
        read_pack(other)
    assert main(["data", "inspect", f"pack:{other}"]) == 2  # one line, no traceback


def test_decoder_mismatch_is_an_error_not_silent(pack, monkeypatch):
    """If this machine's decoder gave other pixels than the packing machine's, the pixel
    checksum says so instead of training on different data."""
    import ekspresi.data.listing as listing

    real = listing.decode_gray
    monkeypatch.setattr(listing, "decode_gray", lambda data: real(data) // 2 * 2)
    with pytest.raises(BadInputError, match="decoded pixels differ"):
        read_pack(pack)
