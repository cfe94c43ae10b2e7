"""Canonical classes, synonyms and class subsets."""

from __future__ import annotations

import pytest

from ekspresi.errors import LabelError
from ekspresi.labels import (
    ALL_CLASSES,
    CLASSES,
    FERPLUS_VOTE_COLUMNS,
    KDEF_CODES,
    SUBSETS,
    SYNONYMS,
    canonical,
    class_index,
    is_known,
    parse_classes,
)


def test_fer2013_order_and_contempt_last():
    assert CLASSES == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert ALL_CLASSES == CLASSES + ("contempt",)


@pytest.mark.parametrize("name, want", [
    ("anger", "angry"), (" Sadness ", "sad"), ("HAPPINESS", "happy"), ("surprised", "surprise"),
    ("marah", "angry"), ("senang", "happy"), ("terkejut", "surprise"), ("netral", "neutral"),
    ("AN", "angry"), ("ne", "neutral"), ("contempt", "contempt"), ("fearful", "fear"),
])
def test_synonyms(name, want):
    assert canonical(name) == want
    assert is_known(name)
    assert class_index(name) == ALL_CLASSES.index(want)


def test_unknown_label_is_an_error_naming_it():
    assert not is_known("grumpy")
    with pytest.raises(LabelError, match="'grumpy'"):
        canonical("grumpy")


def test_every_synonym_and_dataset_code_maps_to_a_known_class():
    assert set(SYNONYMS.values()) == set(ALL_CLASSES)
    assert set(KDEF_CODES.values()) == set(CLASSES)
    assert {canonical(c) for c in FERPLUS_VOTE_COLUMNS[:8]} == set(ALL_CLASSES)
    assert FERPLUS_VOTE_COLUMNS[8:] == ("unknown", "NF")


def test_parse_classes():
    assert parse_classes(None) == CLASSES
    assert parse_classes("three") == ("happy", "sad", "surprise")
    assert parse_classes("surprise,happiness , sad") == ("happy", "sad", "surprise")
    assert parse_classes(["contempt", "anger"]) == ("angry", "contempt")
    assert parse_classes("ferplus8") == ALL_CLASSES
    assert all(parse_classes(name) == SUBSETS[name] for name in SUBSETS)
    with pytest.raises(LabelError):
        parse_classes(",")
    with pytest.raises(LabelError):
        parse_classes("happy,grumpy")
