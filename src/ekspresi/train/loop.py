"""The training loop: ``run_training(config, out_dir)`` -> a complete run directory.

Speed on a small CPU comes from keeping everything as tensors: each split is one uint8
tensor in memory, a batch is an index into it, augmentation runs on the whole batch
(:mod:`ekspresi.data.augment`), and evaluation uses large batches without gradients.

Reproducibility: one ``torch.Generator`` drives shuffling, augmentation and mixing; every
epoch ends with a checkpoint holding it and all other random states, so ``resume=True``
continues exactly where an interrupted run stopped (same seed, same thread count -> same
metrics). Validation selects the model; the test split is evaluated once, at the end.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ekspresi.data.augment import BatchAugment
from ekspresi.errors import ConfigError
from ekspresi.models import build_model, count_params
from ekspresi.models.base import FERModel
from ekspresi.train import checkpoint as ckpt
from ekspresi.train.callbacks import Monitor, TimeBudget
from ekspresi.train.config import TrainConfig, dump_yaml, parse_config, read_config_file
from ekspresi.train.data import PreparedData, Split, prepare_data
from ekspresi.train.optim import build_optimizer, build_scheduler
from ekspresi.train.runfiles import environment, write_history, write_json, write_text

log = logging.getLogger("ekspresi.train")
CONFIG_FILE = "config.resolved.yaml"


def make_model(cfg: TrainConfig, num_classes: int) -> FERModel:
    m = cfg.model
    return build_model(m.name, num_classes, input_size=m.input_size, pretrained=m.pretrained,
                       weights=m.weights, **m.options)


def apply_freeze(model: FERModel, cfg: TrainConfig, epoch: int) -> None:
    """Freezing for the epoch about to start (0-based): the configured freeze until
    ``unfreeze_after`` epochs have passed, then everything trainable."""
    m = cfg.model
    if m.unfreeze_after is not None and epoch >= m.unfreeze_after:
        model.freeze(0)
    elif m.freeze_backbone or m.freeze_first:
        model.freeze(m.freeze_first, backbone=m.freeze_backbone)


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX). Elsewhere autocast
    emulates it: benchmarks/train_throughput.py measured fer-vgg at 9 img/s with bf16 vs
    150 img/s in float32 on an AVX2 AMD EPYC, so the trainer falls back to float32."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


class _Trainer:
    def __init__(self, cfg: TrainConfig, run_dir: Path, data: PreparedData, quiet: bool,
                 max_minutes: float | None):
        self.cfg, self.run_dir, self.data, self.quiet = cfg, run_dir, data, quiet
        t = cfg.train
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.np_rng = np.random.default_rng(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.model = make_model(cfg, len(data.classes))
        apply_freeze(self.model, cfg, 0)
        self.memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        self.x = {k: torch.from_numpy(np.ascontiguousarray(s.images)) for k, s in data.splits.items()}
        self.y = {k: torch.from_numpy(s.labels) for k, s in data.splits.items()}
        self.steps = max(1, len(self.y["train"]) // t.batch_size)  # drop the last partial batch
        self.opt = build_optimizer(self.model, t)
        self.sched, self.per_step = build_scheduler(self.opt, t, self.steps)
        self.ema = None
        if t.ema:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(t.ema),
                                     use_buffers=True)
        self.bf16 = t.bf16 and native_bf16()
        if t.bf16 and not self.bf16:
            log.warning("train.bf16 is set but this CPU has no native bfloat16 (%s): training "
                        "in float32 instead (emulated bf16 measured ~15x slower)",
                        torch.backends.cpu.get_cpu_capability())
        self.augment = BatchAugment(cfg.augment)
        weights = None
        if cfg.data.class_weights:
            from ekspresi.data.balance import class_weights

            weights = torch.tensor(class_weights(data.splits["train"].labels,
                                                 len(data.classes)), dtype=torch.float32)
        self.class_weights = weights
        es = t.early_stopping
        self.monitor = Monitor(es.monitor, es.min_delta)
        self.history: list[dict[str, Any]] = []
        self.epoch = 0
        self.train_seconds = 0.0
        self.budget = TimeBudget(max_minutes)

    # -- state ----------------------------------------------------------------------------
    def eval_model(self) -> FERModel:
        return self.ema.module if self.ema is not None else self.model

    def state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict() if self.sched is not None else None,
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "monitor": self.monitor.state_dict(), "history": self.history,
                "train_seconds": self.train_seconds, "rng": ckpt.rng_state(self.gen, self.np_rng),
                "config": self.cfg.to_dict()}

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        if self.sched is not None and state["scheduler"] is not None:
            self.sched.load_state_dict(state["scheduler"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.monitor.load_state_dict(state["monitor"])
        self.history = list(state["history"])
        self.epoch = int(state["epoch"])
        self.train_seconds = float(state["train_seconds"])
        ckpt.restore_rng(state["rng"], self.gen, self.np_rng)
        apply_freeze(self.model, self.cfg, self.epoch)

    # -- one epoch ------------------------------------------------------------------------
    def _batch(self, x_u8: torch.Tensor) -> torch.Tensor:
        return x_u8.unsqueeze(1).float().contiguous(memory_format=self.memory_format)

    def _mix(self, xb: torch.Tensor, yb: torch.Tensor):
        """Mixup or CutMix (chosen at random when both are on); returns (x, y_a, y_b, lam)."""
        t = self.cfg.train
        if not (t.mixup or t.cutmix) or self.np_rng.random() >= t.mix_prob:
            return xb, yb, yb, 1.0
        use_cut = t.cutmix > 0 and (t.mixup == 0 or self.np_rng.random() < 0.5)
        alpha = t.cutmix if use_cut else t.mixup
        lam = float(self.np_rng.beta(alpha, alpha))
        perm = torch.randperm(xb.shape[0], generator=self.gen)
        if use_cut:
            h, w = xb.shape[-2:]
            ch, cw = int(h * np.sqrt(1 - lam)), int(w * np.sqrt(1 - lam))
            cy, cx = int(self.np_rng.integers(h)), int(self.np_rng.integers(w))
            y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
            x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
            xb = xb.clone()
            xb[:, :, y0:y1, x0:x1] = xb[perm][:, :, y0:y1, x0:x1]
            lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
        else:
            xb = lam * xb + (1 - lam) * xb[perm]
        return xb, yb, yb[perm], lam

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, weight=self.class_weights,
                               label_smoothing=self.cfg.train.label_smoothing)

    def train_epoch(self) -> tuple[float, float]:
        t = self.cfg.train
        self.model.train()
        n = len(self.y["train"])
        perm = torch.randperm(n, generator=self.gen)
        total_loss = correct = seen = 0.0
        bar = None
        if not self.quiet:
            from tqdm import tqdm

            bar = tqdm(total=self.steps, desc=f"epoch {self.epoch + 1}/{t.epochs}",
                       leave=False, dynamic_ncols=True, mininterval=1.0)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)
        for step in range(self.steps):
            idx = perm[step * t.batch_size:(step + 1) * t.batch_size]
            xb = self.augment(self._batch(self.x["train"][idx]), self.gen)
            yb = self.y["train"][idx]
            xb, ya, yb2, lam = self._mix(xb, yb)
            with autocast:
                logits = self.model(xb)
            logits = logits.float()
            loss = self._loss(logits, ya) if lam == 1.0 else (
                lam * self._loss(logits, ya) + (1 - lam) * self._loss(logits, yb2))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if t.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
            self.opt.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            if self.sched is not None and self.per_step:
                self.sched.step()
            b = len(idx)
            total_loss += float(loss.detach()) * b
            correct += float((logits.argmax(1) == ya).sum())
            seen += b
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}",
                                refresh=False)
        if bar is not None:
            bar.close()
        return total_loss / max(seen, 1), correct / max(seen, 1)

    @torch.no_grad()
    def predict(self, model: FERModel, split: str, bf16: bool | None = None) -> np.ndarray:
        """Logits for a whole split (eval mode, big batches). Final scores use float32
        (``bf16=False``) so they are the numbers the exported ONNX model reproduces."""
        model.eval()
        x, bs, out = self.x[split], self.cfg.train.eval_batch_size, []
        bf16 = self.bf16 if bf16 is None else bf16
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
        for i in range(0, len(x), bs):
            with autocast:
                out.append(model(self._batch(x[i:i + bs])).float())
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.data.classes)), np.float32)

    def scores(self, logits: np.ndarray, split: str) -> dict[str, float]:
        y = self.y[split]
        lg = torch.from_numpy(logits)
        return {"loss": float(F.cross_entropy(lg, y)), "acc": float((lg.argmax(1) == y).float().mean())}

    # -- the run --------------------------------------------------------------------------
    def fit(self) -> str:
        t, es = self.cfg.train, self.cfg.train.early_stopping
        ckdir = self.run_dir / "checkpoints"
        started = time.perf_counter()
        last_epoch_seconds = 0.0
        while self.epoch < t.epochs:
            apply_freeze(self.model, self.cfg, self.epoch)
            t0 = time.perf_counter()
            lr = self.opt.param_groups[0]["lr"]
            train_loss, train_acc = self.train_epoch()
            val = self.scores(self.predict(self.eval_model(), "val"), "val")
            if self.sched is not None and not self.per_step:
                self.sched.step(val["acc"] if t.scheduler.monitor == "val_acc" else val["loss"])
            self.epoch += 1
            seconds = time.perf_counter() - t0
            self.train_seconds += seconds
            row = {"epoch": self.epoch, "lr": lr, "train_loss": round(train_loss, 6),
                   "train_acc": round(train_acc, 6), "val_loss": round(val["loss"], 6),
                   "val_acc": round(val["acc"], 6), "seconds": round(seconds, 2)}
            self.history.append(row)
            improved = self.monitor.update(val["acc"] if self.monitor.metric == "val_acc"
                                           else val["loss"], self.epoch)
            if improved:
                ckpt.save(ckdir / "best.pt", {"epoch": self.epoch,
                                              "model": self.eval_model().state_dict(),
                                              "config": self.cfg.to_dict(),
                                              "classes": list(self.data.classes)})
            ckpt.save(ckdir / "last.pt", self.state())
            write_history(self.run_dir, self.history)
            log.info("epoch %d/%d lr %.2e train loss %.4f acc %.4f | val loss %.4f acc %.4f%s "
                     "| %.1fs", self.epoch, t.epochs, lr, train_loss, train_acc, val["loss"],
                     val["acc"], " *" if improved else "", seconds)
            last_epoch_seconds = seconds
            if es.patience is not None and self.monitor.bad_epochs >= es.patience:
                log.info("early stopping: no %s improvement > %g for %d epochs (best %.4f at "
                         "epoch %d)", es.monitor, es.min_delta, es.patience, self.monitor.best,
                         self.monitor.best_epoch)
                return "early_stopping"
            if self.epoch < t.epochs and self.budget.exhausted(time.perf_counter() - started,
                                                               last_epoch_seconds):
                log.info("time budget reached after epoch %d; resume with --resume %s",
                         self.epoch, self.run_dir)
                return "time_budget"
        return "completed"


def _final_model(tr: _Trainer, stop_reason: str) -> tuple[FERModel, str]:
    """The weights that are tested and exported: the best validation epoch unless the config
    asks for the last one (or early stopping was told not to restore the best)."""
    cfg = tr.cfg
    want_last = cfg.train.select == "last" or (
        cfg.train.early_stopping.patience is not None and not cfg.train.early_stopping.restore_best)
    model = copy.deepcopy(tr.eval_model())
    best = tr.run_dir / "checkpoints" / "best.pt"
    if want_last or not best.is_file():
        return model, f"last (epoch {tr.epoch})"
    state = ckpt.load(best)
    model.load_state_dict(state["model"])
    return model, f"best (epoch {state['epoch']})"


def _finish(tr: _Trainer, stop_reason: str) -> dict[str, Any]:
    from ekspresi.train.export import export_bundle

    cfg, data = tr.cfg, tr.data
    model, which = _final_model(tr, stop_reason)
    val_logits = tr.predict(model, "val", bf16=False)
    test_logits = tr.predict(model, "test", bf16=False)
    val, test = tr.scores(val_logits, "val"), tr.scores(test_logits, "test")
    train_row = next((h for h in tr.history if h["epoch"] == tr.monitor.best_epoch),
                     tr.history[-1] if tr.history else {})
    probs = torch.softmax(torch.from_numpy(test_logits), 1).numpy()
    ts: Split = data.splits["test"]
    np.savez_compressed(tr.run_dir / "predictions_test.npz", labels=ts.labels,
                        probabilities=probs.astype(np.float32), paths=ts.paths.astype(str),
                        sources=ts.sources.astype(str), classes=np.array(data.classes))
    by_source = {}
    if cfg.data.test_by_source:
        pred = probs.argmax(1)
        for src in sorted(set(ts.sources.tolist())):
            m = ts.sources == src
            by_source[src] = {"n": int(m.sum()), "acc": float((pred[m] == ts.labels[m]).mean())}
    final = {
        "name": cfg.name, "model": cfg.model.name, "classes": list(data.classes),
        "input_size": model.input_spec.size, "trainable_params": count_params(tr.model),
        "val_acc": val["acc"], "val_loss": val["loss"], "test_acc": test["acc"],
        "test_loss": test["loss"], "train_acc": train_row.get("train_acc"),
        "train_loss": train_row.get("train_loss"),
        "best_epoch": tr.monitor.best_epoch, "epochs_run": tr.epoch,
        "epochs_planned": cfg.train.epochs, "weights_used": which,
        "train_time_seconds": round(tr.train_seconds, 1), "stop_reason": stop_reason,
        "resumable": stop_reason == "time_budget", "test_by_source": by_source,
        "counts": data.counts, "data_notes": data.notes, "bf16_used": tr.bf16,
    }
    from ekspresi.evaluate.split_scores import run_scores  # papers' metrics + collapse flag

    final.update(run_scores(val_labels=data.splits["val"].labels, val_logits=val_logits,
                            test_labels=ts.labels, test_logits=test_logits,
                            test_sources=ts.sources, classes=data.classes,
                            by_source=cfg.data.test_by_source,
                            official_split=cfg.data.split == "official"),
                 pretrained=getattr(model, "pretrained", False),
                 init=getattr(model, "init", "scratch"), protocol=cfg.data.protocol)
    if final["collapse"]["collapsed"]:
        log.warning(final["collapse"]["message"])
    write_json(tr.run_dir / "final_metrics.json", final)
    export_bundle(model, tr.run_dir / "bundle", name=cfg.name, classes=data.classes,
                  training={"config": cfg.to_dict(), "run": str(tr.run_dir),
                            "epochs": tr.epoch, "best_epoch": tr.monitor.best_epoch,
                            "train_time_seconds": final["train_time_seconds"],
                            "weights": which},
                  metrics={"val_accuracy": val["acc"], "test_accuracy": test["acc"],
                           "test_loss": test["loss"], "test_by_source": by_source})
    log.info("final (%s weights): val acc %.4f loss %.4f | test acc %.4f loss %.4f | %s in %.0fs",
             which, val["acc"], val["loss"], test["acc"], test["loss"], stop_reason,
             tr.train_seconds)
    return final


def _attach_log(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def run_training(config: dict | TrainConfig | str | Path, out_dir: str | Path, *,
                 resume: bool = False, max_minutes: float | None = None, quiet: bool = False,
                 threads: int | None = None) -> Path:
    """Train (or, with ``resume``, continue) the run in ``out_dir``; returns its path.

    ``config`` may be a mapping, a :class:`TrainConfig` or a config file path. When resuming,
    the run directory's own ``config.resolved.yaml`` is used and ``config`` may be None.
    """
    run_dir = Path(out_dir)
    if resume:
        stored = run_dir / CONFIG_FILE
        if not stored.is_file():
            raise ConfigError(f"{run_dir}: no {CONFIG_FILE}; not a run directory to resume")
        cfg = parse_config(read_config_file(stored))
    else:
        if isinstance(config, (str, Path)):
            config = read_config_file(config)
        cfg = parse_config(config)
        if (run_dir / "checkpoints" / "last.pt").is_file():
            raise ConfigError(f"{run_dir}: already holds a run; use --resume {run_dir} to "
                              "continue it or choose another --out")
    n_threads = threads or cfg.train.threads
    if n_threads:
        torch.set_num_threads(int(n_threads))
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = _attach_log(run_dir)
    try:
        if not resume:
            write_text(run_dir / CONFIG_FILE, dump_yaml(cfg))
        write_json(run_dir / "env.json", environment(torch.get_num_threads()))
        size = cfg.model.input_size or _default_size(cfg)
        t0 = time.perf_counter()
        data = prepare_data(cfg, size)
        log.info("data ready in %.1fs: %s", time.perf_counter() - t0,
                 {k: len(v) for k, v in data.splits.items()})
        tr = _Trainer(cfg, run_dir, data, quiet, max_minutes)
        if resume:
            tr.load(ckpt.load(run_dir / "checkpoints" / "last.pt"))
            log.info("resumed %s at epoch %d", run_dir, tr.epoch)
        else:
            log.info("model %s: %d trainable parameters, input %d px, threads %d",
                     cfg.model.name, count_params(tr.model), size, torch.get_num_threads())
        reason = tr.fit() if tr.epoch < cfg.train.epochs else "completed"
        _finish(tr, reason)
    finally:
        log.removeHandler(handler)
        handler.close()
    return run_dir


def _default_size(cfg: TrainConfig) -> int:
    from ekspresi.models import get_info

    return get_info(cfg.model.name).input_size
