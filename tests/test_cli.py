"""The `ekspresi` command line as a whole: verbs share one spelling of each option (model,
detector with the registry's names, output), and a user's mistake is one ``error: ...`` line
with exit status 2, never a traceback."""

from __future__ import annotations

import argparse

from ekspresi.cli import COMMANDS, build_parser
from ekspresi.detect import BACKENDS

#: The verbs that run a face detector on a model's behalf.
DETECTING_VERBS = ("predict", "serve", "webcam", "benchmark", "evaluate")


def _verbs() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions}


def test_detecting_verbs_share_the_model_and_detector_options():
    verbs = _verbs()
    assert set(verbs) == set(COMMANDS)
    detector = {v: _actions(verbs[v])["detector"] for v in DETECTING_VERBS}
    for action in detector.values():
        assert action.option_strings == ["--detector"]
        assert list(action.choices) == ["default", *BACKENDS]
    model = {v: _actions(verbs[v])["model"] for v in DETECTING_VERBS}
    assert len({(a.help, a.default, a.metavar) for a in model.values()}) == 1
    assert {v: a.option_strings for v, a in model.items()} == {
        "predict": ["--model"], "serve": ["--model"], "webcam": ["--model"],
        "benchmark": ["--model"], "evaluate": []}   # evaluate MODEL: the thing it is about
    # the same tuning options wherever a verb lets users tune the detector
    tuning = ("sensitivity", "min_face_size", "score_threshold", "max_faces", "margin")
    for verb in ("predict", "webcam"):
        assert all(_actions(verbs[verb])[d].help == _actions(verbs["predict"])[d].help
                   for d in tuning)


def test_every_output_option_is_spelt_the_same():
    for name, parser in _verbs().items():
        parsers = [parser] + [p for a in parser._actions
                              if isinstance(a, argparse._SubParsersAction)
                              for p in a.choices.values()]
        for p in parsers:
            dests = _actions(p)
            assert "output" not in dests and "json" not in dests, p.prog
            if "out" in dests:
                assert dests["out"].option_strings == ["-o", "--out"], p.prog
            if "format" in dests:
                assert dests["format"].default == dests["format"].choices[0] == "table"
