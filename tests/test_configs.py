"""Every committed config parses (grids expanded) and builds its model; validation errors
name the offending key."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ekspresi.errors import ConfigError
from ekspresi.train.config import (
    apply_overrides,
    expand_grid,
    load_config,
    parse_config,
    read_config_file,
)
from ekspresi.train.loop import make_model

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGNS = sorted((ROOT / "configs" / "campaign").glob("*.yaml"))
CONFIGS = [p for p in sorted((ROOT / "configs").rglob("*.yaml"))
           + sorted((ROOT / "configs").rglob("*.toml")) if p not in CAMPAIGNS]
torch.set_num_threads(1)


def test_there_are_paper_configs():
    names = {p.name for p in CONFIGS}
    for prefix in ("p1-", "p2-", "p3-", "p4-", "p5-"):
        assert any(n.startswith(prefix) for n in names), prefix
    assert "default-model.yaml" in names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parses_and_builds(path):
    runs = expand_grid(read_config_file(path))
    assert runs
    built = set()
    for _, data in runs:
        cfg = parse_config(data)
        assert cfg.data.sources and all(s.split(":")[-1].startswith("data/")
                                        for s in cfg.data.sources)
        key = (cfg.model.name, cfg.model.input_size, str(cfg.model.options))
        if key in built:
            continue
        built.add(key)
        cfg.model.pretrained = False  # weights are tested in test_models_weights.py
        model = make_model(cfg, 7)
        assert model.input_spec.size == (cfg.model.input_size or model.input_spec.size)


@pytest.mark.parametrize("path", CAMPAIGNS, ids=lambda p: p.name)
def test_campaign_files_resolve_every_run(path, tmp_path, monkeypatch):
    from ekspresi.train.campaign import _config_for, read_campaign

    monkeypatch.chdir(ROOT)
    camp = read_campaign(path.relative_to(ROOT))
    assert camp.runs
    for run in camp.runs:
        cfg = _config_for(run, camp, tmp_path, [])
        assert cfg.name == run.name
        assert cfg.train.fit_to_budget or "train.fit_to_budget=false" in [*camp.overrides,
                                                                          *run.overrides]
        if cfg.train.distill is not None:   # the campaign's own runs, or shipped models
            from ekspresi.infer.resolve import resolve_model
            for t in cfg.train.distill.teachers:
                assert t.startswith(str(tmp_path)) or resolve_model(t).bundled_name, t


def test_paper_configs_state_the_reported_figure():
    for path in CONFIGS:
        if path.parent.name == "papers":
            text = path.read_text()
            assert "Reported" in text and "%" in text, path


def write(tmp_path, text, name="c.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


BASE = "data: {sources: [data/x]}\n"


@pytest.mark.parametrize("text, match", [
    (BASE + "train: {epochs: ten}", "train.epochs: expected an integer"),
    (BASE + "train: {optimizer: {lr: fast}}", "train.optimizer.lr: expected a number"),
    (BASE + "train: {optimiser: {}}", "unknown config key.*train.optimiser"),
    (BASE + "modle: {}", "unknown config key.*modle"),
    (BASE + "train: {optimizer: {name: lbfgs}}", "train.optimizer.name: 'lbfgs' is not one of"),
    (BASE + "train: {epochs: 0}", "train.epochs: must be > 0"),
    (BASE + "train: {label_smoothing: 1.5}", "label_smoothing"),
    (BASE + "augment: {zoom: 3}", "augment.zoom"),
    ("train: {epochs: 1}", "data.sources"),
    (BASE + "data: {split: random}", "data.split"),
    (BASE + "model: {name: resnet-5000}",   # when the config is read, before any data
     r"model\.name: unknown model 'resnet-5000'; registered: .*fer-vgg"),
])
def test_validation_errors_name_the_key(tmp_path, text, match):
    if text.count("data:") > 1:  # merge two data sections
        text = text.replace(BASE, "").replace("data: {", "data: {sources: [data/x], ")
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, text))


def test_errors_name_the_file_and_every_bad_key(tmp_path):
    p = write(tmp_path, BASE + "train: {epochs: ten, optimizer: {lr: true}}\n"
                               "model: {pretrained: 1}")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert msg.startswith(f"{p}: ")
    for key in ("train.epochs: expected an integer, got 'ten'",
                "train.optimizer.lr: expected a number, got True",
                "model.pretrained: expected true or false or 'if-available', got 1"):
        assert key in msg
    with pytest.raises(ConfigError, match=r"a\.yaml: unknown config key\(s\) augment\.zom; "
                                          r"valid keys here: brightness"):
        load_config(write(tmp_path, BASE + "augment: {zom: 0.1}", "a.yaml"))
    with pytest.raises(ConfigError, match=r"c\.yaml: train\.epochs: must be > 0"):
        load_config(p, ["train.epochs=0", "train.optimizer.lr=1", "model.pretrained=false"])


@pytest.mark.parametrize("path", CONFIGS + [ROOT / "src/ekspresi/assets/models/default/"
                                                    "config.resolved.yaml"],
                         ids=lambda p: p.name)
def test_resolved_config_round_trips(path):
    """config.resolved.yaml (what a run folder keeps, and resumes from) reads back to the same
    config, including one written before newer keys existed (the bundled model's)."""
    import yaml

    from ekspresi.train.config import dump_yaml

    for _, data in expand_grid(read_config_file(path)):
        text = dump_yaml(parse_config(data))
        again = dump_yaml(parse_config(yaml.safe_load(text)))
        assert again == text


def test_toml_and_overrides(tmp_path):
    p = write(tmp_path, 'name = "t"\n[data]\nsources = ["data/x"]\n[train]\nepochs = 3\n',
              "c.toml")
    cfg = load_config(p, ["train.epochs=5", "train.optimizer.lr=1e-2", "model.name=fer-vgg",
                          "train.ema=null"])
    assert cfg.train.epochs == 5 and cfg.train.optimizer.lr == 0.01
    assert cfg.model.name == "fer-vgg" and cfg.name == "t"
    noted = load_config(p, ["notes=reduced: 1 epoch", "model.options={widths: [8]}"])
    assert noted.notes == "reduced: 1 epoch" and noted.model.options == {"widths": [8]}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides({}, ["train.epochs"])
    bad = write(tmp_path, "data: [1, 2", "bad.yaml")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_grid_expansion_names_runs():
    runs = expand_grid({"name": "g", "data": {"sources": ["data/x"]},
                        "grid": {"model.name": ["fer-vgg", "paper-cnn"],
                                 "train.batch_size": [8, 16]}})
    assert [n for n, _ in runs] == ["g_model-fer-vgg_batch_size-8", "g_model-fer-vgg_batch_size-16",
                                    "g_model-paper-cnn_batch_size-8",
                                    "g_model-paper-cnn_batch_size-16"]
    assert runs[3][1]["train"]["batch_size"] == 16 and "grid" not in runs[0][1]
    with pytest.raises(ConfigError, match="sweep"):
        parse_config({"data": {"sources": ["x"]}, "grid": {"seed": [1]}})
    one = apply_overrides({"data": {"sources": ["x"]}, "grid": {"seed": [1, 2]}},
                          ["grid=null", "seed=2"])
    assert parse_config(one).seed == 2  # one cell of a grid, run with `ekspresi train`
