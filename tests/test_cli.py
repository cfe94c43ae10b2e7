"""The `ekspresi` command line as a whole: verbs share one spelling of each option (model,
detector with the registry's names, output), and a user's mistake is one ``error: ...`` line
with exit status 2, never a traceback."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from ekspresi.cli import COMMANDS, build_parser, main
from ekspresi.detect import BACKENDS

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PHOTO = FIXTURES / "photos" / "astronaut.jpg"
FER = FIXTURES / "datasets" / "fer2013"

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
            if "overrides" in dests:
                assert dests["overrides"].option_strings == ["--set"], p.prog
    assert all("overrides" in _actions(_verbs()[v]) for v in ("train", "sweep", "campaign"))


def test_dataset_help_names_every_registered_layout():
    """Written out in cli/options.py because the readers' registry imports OpenCV."""
    from ekspresi.cli.options import DATA_SPEC_HELP
    from ekspresi.data.loading import LAYOUTS

    listed = DATA_SPEC_HELP.rsplit("one of ", 1)[1].split(", ")
    assert listed == list(LAYOUTS)


def _config(tmp_path: Path, **model) -> str:
    cfg = {"name": "tiny", "seed": 1,
           "data": {"sources": [f"fer2013-folder:{FER}"], "split": "official"},
           "model": {"name": "fer-vgg", "input_size": 16, "options": {"widths": [8, 16]},
                     **model},
           "train": {"epochs": 1, "batch_size": 16, "threads": 1}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


BAD_INPUTS = {
    "unknown model name in a config": (
        lambda t: ["train", _config(t, name="nope"), "-o", str(t / "run")], "unknown model"),
    "model options the builder rejects": (
        lambda t: ["train", _config(t, name="fer-resnet",
                                    options={"widths": [8, 16], "depths": [1]}),
                   "-o", str(t / "run")], "as many widths as depths"),
    "model input size the builder rejects": (
        lambda t: ["train", _config(t, name="paper-cnn", input_size=20, options={}),
                   "-o", str(t / "run")], "divisible by 16"),
    "unknown detector": (
        lambda t: ["predict", str(PHOTO), "--detector", "nope"], "invalid choice: 'nope'"),
    "count below one": (
        lambda t: ["predict", str(PHOTO), "--threads", "0"], "must be at least 1"),
    "missing config file": (
        lambda t: ["train", str(t / "missing.yaml")], "config file not found"),
    "missing dataset": (
        lambda t: ["evaluate", "--data", str(t / "missing")], "no such file or folder"),
    "broken config file": (
        lambda t: (t / "b.yaml").write_text("name: [x\n") and ["train", str(t / "b.yaml")],
        "cannot parse (line 2"),
    "bad --set value": (
        lambda t: ["train", _config(t), "--set", "train.epochs=abc"], "expected an integer"),
    "bad dataset spec": (
        lambda t: ["data", "inspect", f"nolayout:{FER}"], "unknown dataset layout 'nolayout'"),
    "Ray engine without Parquet output": (
        lambda t: ["predict", str(PHOTO), "--engine", "ray"], "add -o RESULTS.parquet"),
    "Ray address on the local engine": (
        lambda t: ["predict", str(PHOTO), "-o", str(t / "r.parquet"), "--address", "auto"],
        "--address needs --engine ray"),
    "output under a file": (
        lambda t: (t / "f").write_text("x") and ["predict", str(PHOTO), "--detector", "haar",
                                                "-o", str(t / "f" / "out.json")],
        str(Path("f"))),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_user_errors_are_one_line_without_traceback(case, tmp_path, capsys):
    argv, message = BAD_INPUTS[case]
    assert main(argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()     # progress ("evaluating X ...") may come first
    assert [line for line in lines if line.startswith("error")] == lines[-1:], err
    assert lines[-1].startswith("error: ") and message in lines[-1]
