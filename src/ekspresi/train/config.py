"""Experiment configuration: schema, YAML/TOML loading, ``--set`` overrides, grids.

A config is plain data (YAML or TOML) checked against the dataclasses below before anything
runs: an unknown key, a wrong type or a bad value is a :class:`ConfigError` naming the key
(``train.optimizer.lr: expected a number, got 'fast'``), so a typo never silently falls
back to a default. The resolved config (defaults filled in) is written into every run
directory, which is what makes a run reproducible from its folder alone.

A top-level ``grid:`` maps dotted keys to lists of values; ``ekspresi sweep`` expands it
into one run per combination.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import tomllib
import yaml

from ekspresi.data.augment import AugmentConfig
from ekspresi.errors import ConfigError
from ekspresi.train.devices import DEVICE_CHOICES


def _choice(*options: Any, default: Any) -> Any:
    return field(default=default, metadata={"choices": options})


@dataclass
class DataConfig:
    sources: list[str] = field(default_factory=list)  # dataset specs ("LAYOUT:PATH" or PATH)
    classes: str | list[str] | None = None  # None = the 7 FER2013 classes; "three"; a list
    use_splits: list[str] | None = None  # keep only these official splits before splitting
    split: str = _choice("official", "stratified", "kfold", "group", default="official")
    ratios: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    val_fraction: float = 0.1            # val carved from train when the split has none
    split_seed: int = 42
    k: int = 5                           # kfold: number of folds, and which one is test
    fold: int = 0
    balance: str | None = _choice(None, "none", "oversample", "undersample", default=None)
    per_class: int | None = None         # balancing target per class (train only)
    val_per_class: int | None = None     # cap on validation images per class (paper 5)
    class_weights: bool = False          # weight the loss by inverse class frequency
    skip_bad: bool = False
    test_by_source: bool = True          # report test accuracy per dataset source too
    # -- paper protocols (ekspresi.data.protocol), applied before class selection/splitting
    optional_sources: list[str] = field(default_factory=list)  # used when the path exists
    #                                      (e.g. KDEF), else noted in final_metrics.json
    relabel: dict = field(default_factory=dict)  # class -> class, e.g. {contempt: neutral}
    frames_per_sequence: int | None = None  # CK+: keep the last N frames of each sequence
    kdef_views: list[str] | None = None  # KDEF views to keep (S = straight/frontal)
    kdef_sessions: list[str] | None = None  # KDEF sessions to keep (A, B)
    balance_scope: str = _choice("train", "pooled", default="train")  # pooled: balance all
    #                                      data before the split (paper 3), so val/test too
    protocol: str = ""                   # "paper: ..." or "ours: ..." (which protocol and why)


@dataclass
class ModelConfig:
    name: str = "fer-resnet"
    input_size: int | None = None        # default: the model's own size
    # true: ImageNet weights (an error names the file when it is not found offline);
    # "if-available": use them when found, else train from scratch, labelled "scratch" in
    # final_metrics.json, reports and `ekspresi compare`
    pretrained: bool | str = _choice(False, True, "if-available", default=False)
    weights: str | None = None           # explicit ImageNet weight file (implies pretrained)
    options: dict = field(default_factory=dict)  # builder options (see `ekspresi models`)
    freeze_first: int = 0                # freeze the first N backbone blocks
    freeze_backbone: bool = False
    unfreeze_after: int | None = None    # epochs after which everything is trainable


@dataclass
class OptimizerConfig:
    name: str = _choice("adam", "adamw", "sgd", "rmsprop", default="adam")
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9                # sgd, rmsprop
    nesterov: bool = False               # sgd
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    rho: float = 0.99                    # rmsprop's squared-gradient decay (torch alpha;
    #                                      Keras' default is 0.9)
    eps: float | None = None             # adam/adamw/rmsprop; None = torch's 1e-8 (Keras 1e-7)


@dataclass
class SchedulerConfig:
    name: str = _choice("none", "plateau", "cosine", "onecycle", default="none")
    # plateau = Keras' ReduceLROnPlateau: after `patience` epochs in a row without an
    # improvement of the monitor by more than `min_delta` (absolute), lr *= factor (not
    # below min_lr), then `cooldown` epochs without counting.
    monitor: str = _choice("val_loss", "val_acc", default="val_loss")  # plateau
    factor: float = 0.1                  # plateau
    patience: int = 5                    # plateau
    min_delta: float = 1e-4              # plateau (Keras' default)
    cooldown: int = 0                    # plateau
    min_lr: float = 0.0
    warmup_epochs: float = 0.0           # cosine
    pct_start: float = 0.3               # onecycle


@dataclass
class EarlyStoppingConfig:
    patience: int | None = None          # None = off
    monitor: str = _choice("val_acc", "val_loss", default="val_acc")
    min_delta: float = 0.0
    restore_best: bool = True


@dataclass
class DistillConfig:
    """Knowledge distillation: the loss mixes ``alpha`` x KL(teacher || student) at
    ``temperature`` (scaled by T^2, Hinton et al.) with ``1 - alpha`` x the label loss."""
    teachers: list[str] = field(default_factory=list)  # run folders or ONNX bundle folders
    temperature: float = 4.0
    alpha: float = 0.9
    flip: bool = True                    # average each teacher over the view and its mirror


@dataclass
class SwaConfig:
    """Stochastic weight averaging (Izmailov et al.): the equal-weight mean of the weights
    at the end of each epoch from ``start`` on becomes the final model (BatchNorm statistics
    recomputed on the training set). ``start`` < 1 is a fraction of the epochs."""
    start: float = 0.75
    lr: float | None = None              # constant SWA learning rate from `start` (SWALR)
    anneal_epochs: int = 2


@dataclass
class TrainSection:
    epochs: int = 30
    batch_size: int = 64
    eval_batch_size: int = 256
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    label_smoothing: float = 0.0
    mixup: float = 0.0                   # Beta(alpha, alpha); 0 = off
    cutmix: float = 0.0                  # Beta(alpha, alpha); 0 = off
    mix_prob: float = 1.0                # fraction of batches that get mixup/cutmix
    ema: float | None = None             # EMA decay of the weights (e.g. 0.999); None = off
    grad_clip: float | None = None       # max gradient norm
    select: str = _choice("best", "last", default="best")  # which weights are tested/exported
    threads: int | None = None           # torch.set_num_threads; None = leave as is
    device: str = "auto"                 # auto | cpu | cuda | cuda:N (auto = CUDA if usable)
    precision: str = _choice("auto", "fp32", "bf16", "fp16", default="auto")  # auto: bf16
    #                                      on GPUs that have it, else fp16 + GradScaler; on
    #                                      the CPU fp32, or bf16 when `bf16` says so
    channels_last: bool | None = None    # None = on for CUDA, off on the CPU
    bf16: bool = False                   # CPU: bfloat16 autocast; ignored (with a warning)
    #                                      on CPUs without native bf16 (~15x slower there)
    compile: bool = False                # torch.compile the model (worth it on GPUs)
    sync_bn: bool = False                # SyncBatchNorm across torchrun processes (CUDA)
    distill: DistillConfig | None = None
    swa: SwaConfig | None = None
    fit_to_budget: bool = False          # with a time budget: after the first epoch, cut
    #                                      `epochs` to what fits and re-plan the LR schedule
    #                                      (a one-cycle/cosine run then still anneals)


@dataclass
class TrainConfig:
    name: str = "run"
    seed: int = 0
    notes: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainSection = field(default_factory=TrainSection)

    def to_dict(self) -> dict:
        return to_plain(self)


# -- validation --------------------------------------------------------------------------
def to_plain(obj: Any) -> Any:
    if is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "null")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (ints are accepted as floats)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None  # an optional section left null stays off
        errors = []
        for alt in typing.get_args(tp):
            try:
                return _coerce(value, alt, key)
            except ConfigError as exc:
                errors.append(exc)
        names = " or ".join(_type_name(a) for a in typing.get_args(tp))
        raise ConfigError(f"{key}: expected {names}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{key}: expected null, got {value!r}")
    if is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} values, got {value!r}")
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        out = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and bad values."""
    where = prefix or "config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        dotted = ", ".join(f"{prefix}.{u}" if prefix else u for u in unknown)
        raise ConfigError(f"unknown config key(s) {dotted}; valid keys here: "
                          f"{', '.join(sorted(names))}")
    kwargs = {}
    for f in fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        if f.name not in data:
            continue
        value = _coerce(data[f.name], hints[f.name], key)
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of "
                              f"{', '.join(str(c) for c in choices)}")
        kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _check(cfg: TrainConfig) -> TrainConfig:
    """Cross-field rules that types alone cannot express."""
    t, d = cfg.train, cfg.data
    positive = {"train.epochs": t.epochs, "train.batch_size": t.batch_size,
                "train.eval_batch_size": t.eval_batch_size,
                "train.optimizer.lr": t.optimizer.lr}
    for key, v in positive.items():
        if v <= 0:
            raise ConfigError(f"{key}: must be > 0, got {v}")
    if not 0 <= t.label_smoothing < 1:
        raise ConfigError(f"train.label_smoothing: must be in [0, 1), got {t.label_smoothing}")
    if t.ema is not None and not 0 < t.ema < 1:
        raise ConfigError(f"train.ema: decay must be in (0, 1), got {t.ema}")
    if t.mixup < 0 or t.cutmix < 0 or not 0 <= t.mix_prob <= 1:
        raise ConfigError("train.mixup/cutmix must be >= 0 and train.mix_prob in [0, 1]")
    if t.distill is not None:
        if not t.distill.teachers:
            raise ConfigError("train.distill.teachers: give at least one run or bundle folder")
        if t.distill.temperature <= 0 or not 0 <= t.distill.alpha <= 1:
            raise ConfigError("train.distill: temperature must be > 0 and alpha in [0, 1]")
    if t.swa is not None and (t.swa.start <= 0 or (t.swa.start >= 1 and
                                                   t.swa.start > t.epochs)):
        raise ConfigError(f"train.swa.start: a fraction in (0, 1) or an epoch <= train.epochs "
                          f"({t.epochs}), got {t.swa.start}")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", t.device.strip().lower()):
        raise ConfigError(f"train.device: unknown device {t.device!r}; use one of "
                          f"{', '.join(DEVICE_CHOICES)}")
    if t.grad_clip is not None and t.grad_clip <= 0:
        raise ConfigError(f"train.grad_clip: must be > 0, got {t.grad_clip}")
    if not d.sources:
        raise ConfigError("data.sources: give at least one dataset (e.g. fer2013:data/fer2013)")
    if d.balance_scope == "pooled" and d.balance in (None, "none"):
        raise ConfigError("data.balance_scope: pooled needs data.balance (undersample or "
                          "oversample)")
    if d.balance_scope == "pooled" and d.balance == "oversample":
        raise ConfigError("data.balance_scope: pooled oversampling would copy training "
                          "images into val/test; oversample the training part only")
    if d.use_splits and set(d.use_splits) - {"train", "val", "test"}:
        raise ConfigError(f"data.use_splits: use train, val, test; got {d.use_splits}")
    if len(t.optimizer.betas) != 2:
        raise ConfigError("train.optimizer.betas: expected two numbers")
    if not 0 <= t.optimizer.rho < 1:
        raise ConfigError(f"train.optimizer.rho: must be in [0, 1), got {t.optimizer.rho}")
    if t.optimizer.eps is not None and t.optimizer.eps <= 0:
        raise ConfigError(f"train.optimizer.eps: must be > 0, got {t.optimizer.eps}")
    s = t.scheduler
    if s.name == "plateau" and (not 0 < s.factor < 1 or s.patience < 0 or s.min_delta < 0
                                or s.cooldown < 0 or s.min_lr < 0):
        raise ConfigError("train.scheduler: plateau needs 0 < factor < 1 and patience, "
                          "min_delta, cooldown, min_lr >= 0")
    if cfg.model.input_size is not None and cfg.model.input_size < 8:
        raise ConfigError(f"model.input_size: too small ({cfg.model.input_size})")
    return cfg


def parse_config(data: dict | TrainConfig) -> TrainConfig:
    """Validated :class:`TrainConfig` from a mapping (``grid`` must be expanded first)."""
    if isinstance(data, TrainConfig):
        return _check(data)
    data = copy.deepcopy(data)
    if isinstance(data, dict) and data.get("grid"):
        raise ConfigError("this config has a grid: run it with `ekspresi sweep` (or pick one "
                          "combination with --set grid=null --set KEY=VALUE)")
    if isinstance(data, dict):
        data.pop("grid", None)
    return _check(from_dict(TrainConfig, data))


# -- files and overrides -----------------------------------------------------------------
def read_config_file(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    text = p.read_text()
    try:
        if p.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{p}: cannot parse ({_one_line(exc)})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of sections")
    data.setdefault("name", p.stem)
    return data


def _one_line(exc: Exception) -> str:
    """A parser's message on one line: YAML's names the line and column, then the problem
    (its multi-line form quotes the text with a caret under it)."""
    mark = getattr(exc, "problem_mark", None)
    if isinstance(exc, yaml.YAMLError) and mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return " ".join(str(exc).split())


def set_key(data: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = data
    for part in parts[:-1]:
        nxt = cur.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {dotted}: {part} is not a section")
        cur = nxt
    cur[parts[-1]] = value


def apply_overrides(data: dict, overrides: list[str] | None) -> dict:
    """Apply ``key.sub=value`` strings; values are parsed as YAML (``1e-3``, ``[1, 2]``,
    ``null``, ``true``)."""
    data = copy.deepcopy(data)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        if isinstance(value, dict) and not raw.lstrip().startswith("{"):
            value = raw  # "text: with a colon" is a sentence, not a mapping
        set_key(data, key.strip(), value)
    return data


def expand_grid(data: dict) -> list[tuple[str, dict]]:
    """One ``(run name, config dict)`` per combination of the ``grid`` values (a single
    entry without a grid). Run names append ``key-value`` parts so they are readable."""
    grid = data.get("grid") or {}
    base = {k: v for k, v in data.items() if k != "grid"}
    if not isinstance(grid, dict):
        raise ConfigError("grid: expected a mapping of dotted keys to lists of values")
    if not grid:
        return [(str(base.get("name", "run")), base)]
    keys = list(grid)
    for k in keys:
        if not isinstance(grid[k], list) or not grid[k]:
            raise ConfigError(f"grid.{k}: expected a non-empty list of values")
    out = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        d = copy.deepcopy(base)
        parts = [str(base.get("name", "run"))]
        for k, v in zip(keys, combo):
            set_key(d, k, v)
            label = "-".join(str(x) for x in v.values()) if isinstance(v, dict) else v
            kp = k.split(".")
            parts.append(f"{kp[-2] if kp[-1] == 'name' and len(kp) > 1 else kp[-1]}-{label}")
        d["name"] = "_".join(parts)
        out.append((d["name"], d))
    return out


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    return parse_config(apply_overrides(read_config_file(path), overrides))


def dump_yaml(cfg: TrainConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


__all__ = ["TrainConfig", "DataConfig", "ModelConfig", "TrainSection", "OptimizerConfig",
           "DistillConfig", "SwaConfig",
           "SchedulerConfig", "EarlyStoppingConfig", "AugmentConfig", "load_config",
           "parse_config", "apply_overrides", "expand_grid", "read_config_file", "dump_yaml"]
