"""Experiment configuration: schema, YAML/TOML loading, ``--set`` overrides, grids.

A config is plain data (YAML or TOML) checked against the pydantic models below before
anything runs: an unknown key, a wrong type or a bad value is a :class:`ConfigError` naming
the file and the key (``c.yaml: train.optimizer.lr: expected a number, got 'fast'``), so a
typo never silently falls back to a default. The resolved config (defaults filled in) is
written into every run directory, which is what makes a run reproducible from its folder
alone.

A top-level ``grid:`` maps dotted keys to lists of values; ``ekspresi sweep`` expands it
into one run per combination.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import tomllib
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from ekspresi.data.augment import AugmentConfig
from ekspresi.errors import ConfigError
from ekspresi.models.registry import model_names
from ekspresi.train.devices import DEVICE_CHOICES, is_device_spec


def _number(value: Any) -> Any:
    """A YAML number: ints count (stored as floats), booleans do not; YAML 1.1 reads
    ``1e-3`` (no dot) as a string, which pydantic then parses."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    return value


# Types as a config means them: no "3" for 3, no 1 for true; 1 is a valid float.
Int = StrictInt
Bool = StrictBool
Str = StrictStr
Float = Annotated[float, BeforeValidator(_number)]


class _Section(BaseModel):
    """Every section rejects unknown keys (a typo must not fall back to a default)."""

    model_config = ConfigDict(extra="forbid")


class DataConfig(_Section):
    sources: list[Str] = Field(default_factory=list)  # dataset specs ("LAYOUT:PATH" or PATH)
    classes: Str | list[Str] | None = None  # None = the 7 FER2013 classes; "three"; a list
    use_splits: list[Str] | None = None  # keep only these official splits before splitting
    split: Literal["official", "stratified", "kfold", "group"] = "official"
    ratios: list[Float] = Field(default_factory=lambda: [0.8, 0.1, 0.1])
    val_fraction: Float = 0.1            # val carved from train when the split has none
    split_seed: Int = 42
    k: Int = 5                           # kfold: number of folds, and which one is test
    fold: Int = 0
    balance: Literal[None, "none", "oversample", "undersample"] = None
    per_class: Int | None = None         # balancing target per class (train only)
    val_per_class: Int | None = None     # cap on validation images per class (paper 5)
    class_weights: Bool = False          # weight the loss by inverse class frequency
    skip_bad: Bool = False
    test_by_source: Bool = True          # report test accuracy per dataset source too
    # -- paper protocols (ekspresi.data.protocol), applied before class selection/splitting
    optional_sources: list[Str] = Field(default_factory=list)  # used when the path exists
    #                                      (e.g. KDEF), else noted in final_metrics.json
    relabel: dict = Field(default_factory=dict)  # class -> class, e.g. {contempt: neutral}
    frames_per_sequence: Int | None = None  # CK+: keep the last N frames of each sequence
    kdef_views: list[Str] | None = None  # KDEF views to keep (S = straight/frontal)
    kdef_sessions: list[Str] | None = None  # KDEF sessions to keep (A, B)
    balance_scope: Literal["train", "pooled"] = "train"  # pooled: balance all
    #                                      data before the split (paper 3), so val/test too
    protocol: Str = ""                   # "paper: ..." or "ours: ..." (which protocol and why)


class ModelConfig(_Section):
    name: Str = "fer-resnet"
    input_size: Int | None = None        # default: the model's own size
    # true: ImageNet weights (an error names the file when it is not found offline);
    # "if-available": use them when found, else train from scratch, labelled "scratch" in
    # final_metrics.json, reports and `ekspresi compare`
    pretrained: Bool | Literal["if-available"] = False
    weights: Str | None = None           # explicit ImageNet weight file (implies pretrained)
    options: dict = Field(default_factory=dict)  # builder options (see `ekspresi models`)
    freeze_first: Int = 0                # freeze the first N backbone blocks
    freeze_backbone: Bool = False
    unfreeze_after: Int | None = None    # epochs after which everything is trainable


class OptimizerConfig(_Section):
    name: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    lr: Float = 1e-3
    weight_decay: Float = 0.0
    momentum: Float = 0.9                # sgd, rmsprop
    nesterov: Bool = False               # sgd
    betas: list[Float] = Field(default_factory=lambda: [0.9, 0.999])
    rho: Float = 0.99                    # rmsprop's squared-gradient decay (torch alpha;
    #                                      Keras' default is 0.9)
    eps: Float | None = None             # adam/adamw/rmsprop; None = torch's 1e-8 (Keras 1e-7)


class SchedulerConfig(_Section):
    name: Literal["none", "plateau", "cosine", "onecycle"] = "none"
    # plateau = Keras' ReduceLROnPlateau: after `patience` epochs in a row without an
    # improvement of the monitor by more than `min_delta` (absolute), lr *= factor (not
    # below min_lr), then `cooldown` epochs without counting.
    monitor: Literal["val_loss", "val_acc"] = "val_loss"  # plateau
    factor: Float = 0.1                  # plateau
    patience: Int = 5                    # plateau
    min_delta: Float = 1e-4              # plateau (Keras' default)
    cooldown: Int = 0                    # plateau
    min_lr: Float = 0.0
    warmup_epochs: Float = 0.0           # cosine
    pct_start: Float = 0.3               # onecycle


class EarlyStoppingConfig(_Section):
    patience: Int | None = None          # None = off
    monitor: Literal["val_acc", "val_loss"] = "val_acc"
    min_delta: Float = 0.0
    restore_best: Bool = True


class DistillConfig(_Section):
    """Knowledge distillation: the loss mixes ``alpha`` x KL(teacher || student) at
    ``temperature`` (scaled by T^2, Hinton et al.) with ``1 - alpha`` x the label loss."""
    teachers: list[Str] = Field(default_factory=list)  # run folders or ONNX bundle folders
    temperature: Float = 4.0
    alpha: Float = 0.9
    flip: Bool = True                    # average each teacher over the view and its mirror


class SwaConfig(_Section):
    """Stochastic weight averaging (Izmailov et al.): the equal-weight mean of the weights
    at the end of each epoch from ``start`` on becomes the final model (BatchNorm statistics
    recomputed on the training set). ``start`` < 1 is a fraction of the epochs."""
    start: Float = 0.75
    lr: Float | None = None              # constant SWA learning rate from `start` (SWALR)
    anneal_epochs: Int = 2


class TrainSection(_Section):
    epochs: Int = 30
    batch_size: Int = 64
    eval_batch_size: Int = 256
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    label_smoothing: Float = 0.0
    mixup: Float = 0.0                   # Beta(alpha, alpha); 0 = off
    cutmix: Float = 0.0                  # Beta(alpha, alpha); 0 = off
    mix_prob: Float = 1.0                # fraction of batches that get mixup/cutmix
    ema: Float | None = None             # EMA decay of the weights (e.g. 0.999); None = off
    grad_clip: Float | None = None       # max gradient norm
    select: Literal["best", "last"] = "best"  # which weights are tested/exported
    threads: Int | None = None           # torch.set_num_threads; None = leave as is
    device: Str = "auto"                 # auto | cpu | cuda | cuda:N (auto = CUDA if usable)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16
    #                                      on GPUs that have it, else fp16 + GradScaler; on
    #                                      the CPU fp32, or bf16 when `bf16` says so
    channels_last: Bool | None = None    # None = on for CUDA, off on the CPU
    bf16: Bool = False                   # CPU: bfloat16 autocast; ignored (with a warning)
    #                                      on CPUs without native bf16 (~15x slower there)
    compile: Bool = False                # torch.compile the model (worth it on GPUs)
    sync_bn: Bool = False                # SyncBatchNorm across torchrun processes (CUDA)
    distill: DistillConfig | None = None
    swa: SwaConfig | None = None
    fit_to_budget: Bool = False          # with a time budget: after the first epoch, cut
    #                                      `epochs` to what fits and re-plan the LR schedule
    #                                      (a one-cycle/cosine run then still anneals)
    cpu_tune: Bool = True                # CPU, channels_last unset: time a few steps per
    #                                      memory format (and bf16 when `bf16` allows it and
    #                                      the CPU has it natively), keep the fastest
    #                                      (ekspresi.train.tuning; EKSPRESI_CPU_TUNE=0 skips)
    checkpoint_minutes: Float | None = 5.0  # also checkpoint inside an epoch this often
    #                                      (exact resume mid-epoch: a CPU epoch of a large
    #                                      net takes 10+ minutes); None = at epoch ends only


class TrainConfig(_Section):
    name: Str = "run"
    seed: Int = 0
    notes: Str = ""
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    train: TrainSection = Field(default_factory=TrainSection)

    def to_dict(self) -> dict:
        """Plain data (lists, not tuples): what ``config.resolved.yaml`` holds."""
        return self.model_dump(mode="json")


# -- pydantic's errors as one line per key -------------------------------------------------
_EXPECTED = {"int_type": "an integer", "int_from_float": "an integer", "float_type": "a number",
             "float_parsing": "a number", "bool_type": "true or false",
             "string_type": "a string", "list_type": "a list", "tuple_type": "a list",
             "dict_type": "a mapping", "model_type": "a mapping", "dataclass_type": "a mapping",
             "model_attributes_type": "a mapping", "none_required": "null"}


def _fields(tp: Any) -> dict[str, Any]:
    """Field name -> annotation of a config section (pydantic model or dataclass)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return {n: f.annotation for n, f in tp.model_fields.items()}
    if dataclasses.is_dataclass(tp):
        return typing.get_type_hints(tp)
    return {}


def _section(tp: Any) -> Any:
    """The section type inside ``X | None`` (or ``tp`` itself)."""
    for alt in typing.get_args(tp) or (tp,):
        if _fields(alt):
            return alt
    return tp


def _where(loc: tuple) -> tuple[str, list[str]]:
    """Dotted key of an error location (union member tags skipped) and the keys valid in
    the section that holds it."""
    parts: list[str] = []
    tp: Any = TrainConfig
    valid: list[str] = list(_fields(tp))
    for item in loc:
        fields = _fields(tp)
        if isinstance(item, int) and parts:
            parts[-1] += f"[{item}]"
        elif isinstance(item, str) and item in fields:
            parts.append(item)
            valid = list(fields)
            tp = _section(fields[item])
        elif isinstance(item, str) and not fields and not parts:
            parts.append(item)
        elif isinstance(item, str) and fields:  # unknown key at this level
            parts.append(item)
            valid = list(fields)
    return ".".join(parts), sorted(valid)


def _explain(exc: ValidationError) -> str:
    unknown: dict[str, list[str]] = {}
    by_key: dict[str, list[dict]] = {}
    for err in exc.errors():
        key, valid = _where(err["loc"])
        if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            unknown.setdefault(", ".join(valid), []).append(key)
        else:
            by_key.setdefault(key, []).append(err)
    lines = [f"unknown config key(s) {', '.join(keys)}; valid keys here: {valid}"
             for valid, keys in unknown.items()]
    for key, errs in by_key.items():
        where = key or "config"
        value = errs[0].get("input")
        values = [e for e in errs if e["type"] == "value_error"]
        if values:
            msg = str(values[0]["ctx"]["error"])
            lines.append(msg if msg.startswith(where) else f"{where}: {msg}")
            continue
        literals = [e["ctx"]["expected"] for e in errs if e["type"] == "literal_error"]
        nouns = list(dict.fromkeys(_EXPECTED.get(e["type"], e["msg"]) for e in errs
                                   if e["type"] != "literal_error"))
        if literals and not nouns:
            lines.append(f"{where}: {value!r} is not one of {literals[0]}")
        else:
            nouns += literals
            lines.append(f"{where}: expected {' or '.join(nouns)}, got {value!r}")
    return "; ".join(lines)


def _check(cfg: TrainConfig) -> TrainConfig:
    """Cross-field rules that types alone cannot express."""
    t, d = cfg.train, cfg.data
    if cfg.model.name not in model_names():   # the registry is data: no network is built
        raise ConfigError(f"model.name: unknown model {cfg.model.name!r}; registered: "
                          f"{', '.join(model_names())} (see `ekspresi models`)")
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
    if not is_device_spec(t.device):
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


def parse_config(data: dict | TrainConfig, source: str | Path | None = None) -> TrainConfig:
    """Validated :class:`TrainConfig` from a mapping (``grid`` must be expanded first);
    errors name ``source`` (the config file) when given."""
    if isinstance(data, TrainConfig):
        return _check(data)
    prefix = f"{source}: " if source else ""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix}config: expected a mapping, got {data!r}")
    if data.get("grid"):
        raise ConfigError("this config has a grid: run it with `ekspresi sweep` (or pick one "
                          "combination with --set grid=null --set KEY=VALUE)")
    data = copy.deepcopy(data)
    data.pop("grid", None)
    try:
        cfg = TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(prefix + _explain(exc)) from None
    try:
        return _check(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}") from None


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
    return parse_config(apply_overrides(read_config_file(path), overrides), source=path)


def dump_yaml(cfg: TrainConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


__all__ = ["TrainConfig", "DataConfig", "ModelConfig", "TrainSection", "OptimizerConfig",
           "DistillConfig", "SwaConfig",
           "SchedulerConfig", "EarlyStoppingConfig", "AugmentConfig", "load_config",
           "parse_config", "apply_overrides", "expand_grid", "read_config_file", "dump_yaml"]
