"""One resolver for every MODEL argument (:mod:`ekspresi.infer.resolve`): bundled models by
name, bundle folders and their files, run folders holding ``bundle/``; each bad spec gets its
own message. And the one ONNX Runtime session set-up (:mod:`ekspresi.onnxrt`)."""

from __future__ import annotations

import json
import shutil

import pytest
from infer_support import PHOTO, run_cli

import ekspresi.infer.resolve as resolve
from ekspresi.errors import ModelError
from ekspresi.infer import Classifier, Recognizer, load_model, resolve_model
from ekspresi.infer.resolve import ResolvedModel


@pytest.fixture()
def run_dir(conv_bundle, tmp_path):
    """A finished training run: its bundle under ``bundle/`` plus its final metrics."""
    run = tmp_path / "run"
    shutil.copytree(conv_bundle, run / "bundle")
    (run / "final_metrics.json").write_text(json.dumps({"splits": {"test": {"accuracy": 0.5}}}))
    return run


def test_predict_and_recognizer_take_a_run_directory(capsys, run_dir):
    code, out, _ = run_cli(capsys, "predict", PHOTO, "--model", run_dir, "--format", "json")
    assert code == 0 and len(json.loads(out)[0]["faces"]) == 1
    rec = Recognizer(model=run_dir, threads=1)
    assert rec.classifier.bundle.path == run_dir / "bundle"
    assert len(rec.analyze(PHOTO)) == 1
    assert Classifier(run_dir / "bundle" / "model.onnx").bundle.path == run_dir / "bundle"


def test_the_web_app_serves_a_run_directory(run_dir):
    from ekspresi.web.engine import Engine
    from ekspresi.web.settings import WebSettings

    engine = Engine(WebSettings(model=run_dir, threads=1))
    assert engine.available and engine.info()["bundle"] == "bundle"


def test_a_bundle_inside_a_run_belongs_to_the_run(run_dir, conv_bundle, tmp_path):
    shutil.copytree(conv_bundle, run_dir / "export-int8")
    shutil.copytree(conv_bundle, tmp_path / "loose")
    assert resolve_model(run_dir) == ResolvedModel(run_dir / "bundle", run_dir)
    assert resolve_model(run_dir / "export-int8") == ResolvedModel(run_dir / "export-int8",
                                                                   run_dir)
    assert resolve_model(tmp_path / "loose" / "model.json") == ResolvedModel(tmp_path / "loose")
    assert resolve_model(conv_bundle).run_dir is None     # a lone x/bundle/: x is no run
    assert load_model(str(run_dir)).sha256 == load_model(conv_bundle).sha256


def test_bundled_models_are_found_by_folder_name(monkeypatch, tmp_path, make_bundle):
    """A new bundled model is a folder in assets/models/, found by its name, and a bare
    name wins over a local folder of that name (``./accurate`` is the folder)."""
    monkeypatch.setattr(resolve, "BUNDLED_MODELS_DIR", tmp_path / "models")
    make_bundle(out=tmp_path / "models" / "default")
    make_bundle(out=tmp_path / "models" / "accurate", name="accurate-net")
    (tmp_path / "models" / "notes").mkdir()                 # not a bundle: not listed
    assert resolve.bundled_models() == ["accurate", "default"]
    assert resolve_model(None) == resolve_model("default") == ResolvedModel(
        tmp_path / "models" / "default", bundled_name="default")
    assert load_model("accurate").name == "accurate-net"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "accurate").mkdir()
    assert resolve_model("accurate").bundle_dir == tmp_path / "models" / "accurate"
    with pytest.raises(ModelError, match="not a model bundle or run directory"):
        resolve_model("./accurate")


def test_the_shipped_default_model(monkeypatch, tmp_path):
    if "default" in resolve.bundled_models():
        bundle = load_model("default")                      # the shipped one must verify
        assert bundle.path == resolve.default_bundle_path()
        assert len(Recognizer().analyze(PHOTO)) == 1
    monkeypatch.setattr(resolve, "BUNDLED_MODELS_DIR", tmp_path / "absent")
    with pytest.raises(ModelError, match="no bundled default model in this install"):
        Recognizer()


def test_each_bad_spec_says_what_is_wrong(tmp_path, conv_bundle, capsys):
    with pytest.raises(ModelError, match=r"no such model \(.*bundled models?: .*default"):
        resolve_model(tmp_path / "missing")
    with pytest.raises(ModelError, match="not a model bundle or run directory"):
        resolve_model(tmp_path)
    half = tmp_path / "half"
    half.mkdir()
    shutil.copyfile(conv_bundle / "model.json", half / "model.json")   # model.onnx missing
    with pytest.raises(ModelError, match="not a model bundle or run directory"):
        resolve_model(half)
    run = tmp_path / "unfinished"
    run.mkdir()
    (run / "train.log").write_text("epoch 1\n")
    with pytest.raises(ModelError, match="run directory has no bundle/.*ekspresi export"):
        resolve_model(run)
    code, _, err = run_cli(capsys, "predict", PHOTO, "--model", run)
    assert code == 2 and "has no bundle/" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "export", "default")      # never writes into the package
    assert code == 2 and "choose an output folder with -o" in err


def test_one_session_set_up(conv_bundle, tmp_path):
    from ekspresi.onnxrt import open_session

    opts = open_session(conv_bundle / "model.onnx", threads=2).get_session_options()
    assert opts.intra_op_num_threads == 2 and opts.inter_op_num_threads == 1
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not an onnx graph")
    with pytest.raises(ModelError, match="broken.onnx: ONNX Runtime cannot load the model"):
        open_session(bad)
