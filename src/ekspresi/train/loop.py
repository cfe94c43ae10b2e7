"""The training loop: ``run_training(config, out_dir)`` -> a complete run directory.

Speed comes from keeping everything as tensors on the training device: each split is one
uint8 tensor (on the GPU when training there: FER2013 at 48 px is 83 MB), a batch is an
index into it, augmentation runs on the whole batch (:mod:`ekspresi.data.augment`), and
evaluation uses large batches without gradients. Device and precision come from
:mod:`ekspresi.train.devices`; under ``torchrun`` the model is wrapped in
DistributedDataParallel and each process trains on its slice of every global batch
(:mod:`ekspresi.train.distributed`).

Reproducibility: one CPU ``torch.Generator`` drives shuffling, augmentation and mixing (on
every device, so a run draws the same numbers on a CPU and a GPU); every epoch ends with a
checkpoint holding it and all other random states, and a single process also checkpoints
inside an epoch every ``train.checkpoint_minutes`` (the epoch's shuffle, the step reached and
the running sums travel with it), so ``resume=True`` continues exactly where an interrupted
run stopped, to the step (same seed, same thread count -> same metrics on the CPU). A
:class:`~ekspresi.train.callbacks.StopRequest` makes the loop save such a checkpoint at the
next step and raise :class:`~ekspresi.train.callbacks.TrainingInterrupted`.
Checkpoints hold CPU-loadable tensors only, so a run started on a GPU resumes on a CPU and
back. Validation selects the model; the test split is evaluated once, at the end.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ekspresi.data.augment import BatchAugment
from ekspresi.errors import ConfigError
from ekspresi.metrics_schema import TEST, TRAIN, VAL, Metrics, RunMetrics, SplitMetrics
from ekspresi.models import count_params
from ekspresi.models.base import FERModel
from ekspresi.runs import (
    BUNDLE_DIR,
    CONFIG_NAME,
    ENV_NAME,
    FINAL_NAME,
    FINAL_WEIGHTS,
    LOG_NAME,
    PREDICTIONS_NAME,
    PROGRESS_NAME,
    best_checkpoint,
    last_checkpoint,
)
from ekspresi.train import checkpoint as ckpt
from ekspresi.train import devices
from ekspresi.train.callbacks import Monitor, StopRequest, TimeBudget, TrainingInterrupted
from ekspresi.train.config import TrainConfig, dump_yaml, parse_config, read_config_file
from ekspresi.train.data import PreparedData, Split, prepare_data
from ekspresi.train.distributed import DistContext, from_environment, per_rank_batch
from ekspresi.train.modeling import apply_freeze, make_model
from ekspresi.train.optim import build_optimizer, build_scheduler
from ekspresi.train.runfiles import environment, write_history, write_json, write_text

PROGRESS_EVERY = 30.0            # seconds between progress.json updates inside an epoch

log = logging.getLogger("ekspresi.train")

__all__ = ["run_training", "make_model", "apply_freeze"]


class _Trainer:
    def __init__(self, cfg: TrainConfig, run_dir: Path, data: PreparedData, quiet: bool,
                 max_minutes: float | None, place: devices.Placement, ctx: DistContext,
                 stop: StopRequest | None = None):
        self.cfg, self.run_dir, self.data = cfg, run_dir, data
        self.place, self.ctx, self.dev = place, ctx, place.device
        self.quiet = quiet or not ctx.is_main
        t = cfg.train
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.np_rng = np.random.default_rng(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.model = make_model(cfg, len(data.classes))
        if ctx.enabled and t.sync_bn:
            if not place.is_cuda:
                raise ConfigError("train.sync_bn needs CUDA GPUs (PyTorch's SyncBatchNorm has "
                                  "no CPU kernel); turn it off for CPU processes")
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.model.to(self.dev, memory_format=place.memory_format)
        self.batch_size = per_rank_batch(t.batch_size, ctx)
        # Whole splits as uint8 on the device: one index per batch, no loader, no copies.
        self.x = {k: torch.from_numpy(np.ascontiguousarray(s.images)).to(self.dev)
                  for k, s in data.splits.items()}
        self.y = {k: torch.from_numpy(s.labels).to(self.dev) for k, s in data.splits.items()}
        self.steps = max(1, len(data.splits["train"]) // t.batch_size)  # drop last partial
        self.opt = build_optimizer(self.model, t)
        self.sched, self.per_step = build_scheduler(self.opt, t, self.steps)
        self.scaler = place.grad_scaler()
        self.ema = None
        if t.ema:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(t.ema),
                                     use_buffers=True)
        self.swa = self.swa_sched = None
        self.swa_start = _swa_start(cfg)
        if t.swa is not None:
            from torch.optim.swa_utils import SWALR, AveragedModel

            self.swa = AveragedModel(self.model)
            if t.swa.lr is not None:
                self.swa_sched = SWALR(self.opt, swa_lr=t.swa.lr,
                                       anneal_epochs=max(1, t.swa.anneal_epochs))
        self.teachers = None
        if t.distill is not None:
            from ekspresi.train.distill import TeacherEnsemble

            self.teachers = TeacherEnsemble(t.distill, data.classes, place)
        self.augment = BatchAugment(cfg.augment)
        self.class_weights = None
        if cfg.data.class_weights:
            from ekspresi.data.balance import class_weights

            self.class_weights = torch.tensor(
                class_weights(data.splits["train"].labels, len(data.classes)),
                dtype=torch.float32, device=self.dev)
        es = t.early_stopping
        self.monitor = Monitor(es.monitor, es.min_delta)
        self.history: list[dict[str, Any]] = []
        self.epoch = 0
        self.train_seconds = 0.0
        self.budget = TimeBudget(max_minutes)
        self._trainable: tuple[bool, ...] | None = None
        self.configured_epochs: int | None = None  # before fit_to_budget shortened the run
        self.net: torch.nn.Module = self.model
        self._freeze_and_wrap(0)
        # Mid-epoch checkpoints and stop requests: one process only (under torchrun every
        # rank would have to agree on the step, a collective per step; epochs end together).
        every = t.checkpoint_minutes
        if every is not None and every <= 0:
            raise ConfigError("train.checkpoint_minutes must be > 0 (or null for epoch ends "
                              "only)")
        self.checkpoint_seconds = None if ctx.enabled or every is None else every * 60.0
        self.stop = None if ctx.enabled else stop
        self.partial: dict[str, Any] | None = None  # an interrupted epoch, from a checkpoint
        self._last_checkpoint = self._last_progress = time.perf_counter()

    # -- the network the optimiser steps --------------------------------------------------
    def _freeze_and_wrap(self, epoch: int) -> None:
        """Apply the freezing schedule; (re)wrap in DDP and torch.compile when the set of
        trainable parameters changed (DDP only synchronises what was trainable when it
        wrapped the model)."""
        apply_freeze(self.model, self.cfg, epoch)
        trainable = tuple(p.requires_grad for p in self.model.parameters())
        if trainable == self._trainable:
            return
        self._trainable = trainable
        net: torch.nn.Module = self.model
        if self.ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            net = DDP(self.model, device_ids=[self.dev] if self.place.is_cuda else None)
        if self.cfg.train.compile:
            net = torch.compile(net)
        self.net = net

    # -- state ----------------------------------------------------------------------------
    def eval_model(self) -> FERModel:
        return self.ema.module if self.ema is not None else self.model

    def state(self, partial: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything a resume needs; ``partial`` is the position inside an unfinished
        epoch (its shuffle, the next step, the running sums) for a mid-epoch checkpoint."""
        return {"epoch": self.epoch, "partial": partial, "model": _cpu(self.model.state_dict()),
                "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict() if self.sched is not None else None,
                "ema": _cpu(self.ema.state_dict()) if self.ema is not None else None,
                "swa": _cpu(self.swa.state_dict()) if self.swa is not None else None,
                "swa_scheduler": (self.swa_sched.state_dict() if self.swa_sched is not None
                                  else None),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "monitor": self.monitor.state_dict(), "history": self.history,
                "train_seconds": self.train_seconds,
                "rng": ckpt.rng_state(self.gen, self.np_rng),
                "device": str(self.dev), "config": self.cfg.to_dict()}

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])  # moves its tensors to the params' device
        if self.sched is not None and state["scheduler"] is not None:
            self.sched.load_state_dict(state["scheduler"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        if self.swa is not None and state.get("swa") is not None:
            self.swa.load_state_dict(state["swa"])
        if self.swa_sched is not None and state.get("swa_scheduler") is not None:
            self.swa_sched.load_state_dict(state["swa_scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.monitor.load_state_dict(state["monitor"])
        self.history = list(state["history"])
        self.epoch = int(state["epoch"])
        self.train_seconds = float(state["train_seconds"])
        ckpt.restore_rng(state["rng"], self.gen, self.np_rng)
        self.partial = state.get("partial")
        self._freeze_and_wrap(self.epoch)

    # -- one epoch ------------------------------------------------------------------------
    def _batch(self, x_u8: torch.Tensor) -> torch.Tensor:
        return x_u8.unsqueeze(1).float().contiguous(memory_format=self.place.memory_format)

    def _mix(self, xb: torch.Tensor, yb: torch.Tensor):
        """Mixup or CutMix (chosen at random when both are on); returns (x, y_a, y_b, lam).
        Partners come from the process's own slice (every rank draws the same numbers)."""
        t = self.cfg.train
        if not (t.mixup or t.cutmix) or self.np_rng.random() >= t.mix_prob:
            return xb, yb, yb, 1.0
        use_cut = t.cutmix > 0 and (t.mixup == 0 or self.np_rng.random() < 0.5)
        alpha = t.cutmix if use_cut else t.mixup
        lam = float(self.np_rng.beta(alpha, alpha))
        perm = torch.randperm(xb.shape[0], generator=self.gen).to(self.dev)
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

    # -- progress and mid-epoch checkpoints -----------------------------------------------
    def write_progress(self, step: int, img_per_s: float | None) -> None:
        """``progress.json``: epoch, step and speed now, for ``ekspresi campaign status``."""
        if not self.ctx.is_main:
            return
        write_json(self.run_dir / PROGRESS_NAME, {
            "epoch": self.epoch, "epochs": self.cfg.train.epochs, "step": step,
            "steps": self.steps, "batch": self.cfg.train.batch_size,
            "img_per_s": round(img_per_s, 1) if img_per_s else None,
            "best_val": self.monitor.best, "best_epoch": self.monitor.best_epoch,
            "train_seconds": round(self.train_seconds, 1), "updated": time.time()})
        self._last_progress = time.perf_counter()

    def _between_steps(self, perm: torch.Tensor, step: int, sums: torch.Tensor, seen: int,
                       epoch_seconds: float, lr: float, img_per_s: float) -> None:
        """After ``step`` steps of the epoch: save a mid-epoch checkpoint when one is due
        or a stop was requested (then raise :class:`TrainingInterrupted`)."""
        now = time.perf_counter()
        stop = self.stop is not None and self.stop()
        due = (self.checkpoint_seconds is not None
               and now - self._last_checkpoint >= self.checkpoint_seconds)
        if (stop or due) and step < self.steps:
            partial = {"step": step, "perm": perm, "sums": sums.detach().cpu(), "seen": seen,
                       "seconds": epoch_seconds, "lr": lr}
            ckpt.save(last_checkpoint(self.run_dir), self.state(partial))
            self._last_checkpoint = now
            log.info("checkpoint in epoch %d at step %d/%d", self.epoch + 1, step, self.steps)
        if now - self._last_progress >= PROGRESS_EVERY:
            self.write_progress(step, img_per_s)
        if stop and step < self.steps:  # at the last step the epoch end checkpoints
            self.write_progress(step, img_per_s)
            raise TrainingInterrupted(self.run_dir, self.epoch, step, self.steps)

    def train_epoch(self, lr: float) -> tuple[float, float]:
        t = self.cfg.train
        self.model.train()
        b, rank = self.batch_size, self.ctx.rank
        resumed, self.partial = self.partial, None
        if resumed is None:
            n = len(self.data.splits["train"])
            perm = torch.randperm(n, generator=self.gen)
            sums = torch.zeros(2, dtype=torch.float64, device=self.dev)  # loss * n, correct
            first, seen, carried = 0, 0, 0.0
        else:  # the rest of an epoch a mid-epoch checkpoint interrupted
            perm, first, seen = resumed["perm"], int(resumed["step"]), int(resumed["seen"])
            sums = resumed["sums"].to(self.dev)
            carried = float(resumed["seconds"])
        t0 = time.perf_counter()
        bar = None
        if not self.quiet:
            from tqdm import tqdm

            bar = tqdm(total=self.steps, initial=first,
                       desc=f"epoch {self.epoch + 1}/{t.epochs}",
                       leave=False, dynamic_ncols=True, mininterval=1.0)
        for step in range(first, self.steps):
            lo = step * t.batch_size + rank * b
            idx = perm[lo:lo + b].to(self.dev, non_blocking=True)
            xb = self.augment(self._batch(self.x["train"][idx]), self.gen,
                              part=(rank * b, t.batch_size))
            yb = self.y["train"][idx]
            xb, ya, yb2, lam = self._mix(xb, yb)
            with self.place.autocast():
                logits = self.net(xb)
            logits = logits.float()
            loss = self._loss(logits, ya) if lam == 1.0 else (
                lam * self._loss(logits, ya) + (1 - lam) * self._loss(logits, yb2))
            if self.teachers is not None:
                a = t.distill.alpha
                kd = self.teachers.loss(logits, self.teachers.probs(xb))
                loss = a * kd + (1 - a) * loss
            self.opt.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                if t.grad_clip:
                    self.scaler.unscale_(self.opt)
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
                self.scaler.step(self.opt)
                self.scaler.update()
            else:
                loss.backward()
                if t.grad_clip:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
                self.opt.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            if self.sched is not None and self.per_step and not self._swa_active():
                self.sched.step()
            with torch.no_grad():  # accumulated on the device: no sync per step on GPUs
                sums += torch.stack([loss.detach().double() * len(idx),
                                     (logits.argmax(1) == ya).sum().double()])
            seen += len(idx)
            spent = time.perf_counter() - t0
            self._between_steps(perm, step + 1, sums, seen, carried + spent, lr,
                                (step + 1 - first) * t.batch_size / max(spent, 1e-9))
            if bar is not None:
                bar.update(1)
                if step % 20 == 0 or step == self.steps - 1:
                    s = sums.tolist()
                    bar.set_postfix(loss=f"{s[0] / seen:.4f}", acc=f"{s[1] / seen:.4f}",
                                    refresh=False)
        if bar is not None:
            bar.close()
        total_loss, correct, seen = self.ctx.all_sum([*sums.tolist(), float(seen)], self.dev)
        return total_loss / max(seen, 1), correct / max(seen, 1)

    @torch.no_grad()
    def predict(self, model: FERModel, split: str, amp: bool = True,
                shard: bool = True) -> np.ndarray:
        """Logits for a whole split (eval mode, big batches). Under torchrun each process
        scores every ``world``-th image and the rows are gathered (``shard=False``: this
        process scores all of them, as rank 0 does alone at the end). Final scores use
        float32 (``amp=False``) so they are the numbers the exported ONNX model
        reproduces."""
        model.eval()
        x, bs = self.x[split], self.cfg.train.eval_batch_size
        sharded = shard and self.ctx.enabled
        if sharded:
            x = x[self.ctx.rank::self.ctx.world_size]
        autocast = self.place.autocast() if amp else torch.autocast(self.dev.type,
                                                                    enabled=False)
        out = []
        for i in range(0, len(x), bs):
            with autocast:
                out.append(model(self._batch(x[i:i + bs])).float())
        c = len(self.data.classes)
        logits = torch.cat(out) if out else torch.zeros((0, c), device=self.dev)
        if sharded:
            logits = self.ctx.gather_rows(logits, len(self.y[split]))
        return logits.cpu().numpy()

    def scores(self, logits: np.ndarray, split: str) -> dict[str, float]:
        y = self.y[split].cpu()
        lg = torch.from_numpy(logits)
        return {"loss": float(F.cross_entropy(lg, y)),
                "acc": float((lg.argmax(1) == y).float().mean())}

    # -- weight averaging -----------------------------------------------------------------
    def _swa_active(self) -> bool:
        return self.swa is not None and self.epoch >= self.swa_start

    def _swa_epoch_end(self) -> None:
        """After an epoch at or past the SWA start: add the weights to the average."""
        if not self._swa_active():
            return
        self.swa.update_parameters(self.model)
        if self.swa_sched is not None:
            self.swa_sched.step()

    @torch.no_grad()
    def swa_model(self) -> FERModel | None:
        """The averaged weights with BatchNorm statistics recomputed on the (unaugmented)
        training images, as SWA requires; None when nothing was averaged yet."""
        if self.swa is None or int(self.swa.n_averaged) == 0:
            return None
        from torch.optim.swa_utils import update_bn

        model = copy.deepcopy(self.swa.module)
        x, bs = self.x["train"], self.cfg.train.eval_batch_size
        update_bn((self._batch(x[i:i + bs]) for i in range(0, len(x), bs)), model)
        return model

    # -- the run --------------------------------------------------------------------------
    def _fit_to_budget(self, elapsed: float, epoch_seconds: float) -> None:
        """Shorten the run to the epochs the time budget holds (measured on this process's
        first epoch, which includes warm-up, so the estimate errs short) and re-plan the
        per-step LR schedule for the new length by replaying the steps already taken."""
        t = self.cfg.train
        if self.budget.seconds is None:
            return
        fits = planned_epochs(self.epoch, self.budget.seconds, elapsed, epoch_seconds)
        fits = int(min(self.ctx.all_sum([float(fits)], self.dev)[0] / self.ctx.world_size,
                       fits))
        if fits >= t.epochs:
            return
        log.info("fitting to the time budget: %d epochs instead of %d (%.1f s an epoch)",
                 fits, t.epochs, epoch_seconds)
        self.configured_epochs = self.configured_epochs or t.epochs
        t.epochs = fits
        self.swa_start = _swa_start(self.cfg)
        if self.sched is not None and self.per_step:
            import warnings

            for g in self.opt.param_groups:
                g["lr"] = g.get("initial_lr", g["lr"])
            self.sched, _ = build_scheduler(self.opt, t, self.steps)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for _ in range(self.epoch * self.steps):
                    self.sched.step()
        if self.ctx.is_main:
            write_text(self.run_dir / CONFIG_NAME, dump_yaml(self.cfg))

    def fit(self) -> str:
        t, es = self.cfg.train, self.cfg.train.early_stopping
        main = self.ctx.is_main
        self._first_epoch = self.epoch
        started = time.perf_counter()
        last_epoch_seconds = 0.0
        while self.epoch < t.epochs:
            self._freeze_and_wrap(self.epoch)
            carried = float(self.partial["seconds"]) if self.partial else 0.0
            t0 = time.perf_counter() - carried
            # the epoch's first LR (kept by a mid-epoch checkpoint: a per-step schedule has
            # moved on since), so a resumed epoch's history row equals an uninterrupted one
            lr = self.partial["lr"] if self.partial else self.opt.param_groups[0]["lr"]
            train_loss, train_acc = self.train_epoch(lr)
            train_seconds = time.perf_counter() - t0
            val = self.scores(self.predict(self.eval_model(), "val"), "val")
            if self.sched is not None and not self.per_step and not self._swa_active():
                self.sched.step(val["acc"] if t.scheduler.monitor == "val_acc" else val["loss"])
            self.epoch += 1
            self._swa_epoch_end()
            seconds = time.perf_counter() - t0
            self.train_seconds += seconds
            row = {"epoch": self.epoch, "lr": lr, "train_loss": round(train_loss, 6),
                   "train_acc": round(train_acc, 6), "val_loss": round(val["loss"], 6),
                   "val_acc": round(val["acc"], 6), "seconds": round(seconds, 2),
                   "img_per_s": round(self.steps * t.batch_size / max(train_seconds, 1e-9), 1)}
            self.history.append(row)
            improved = self.monitor.update(val["acc"] if self.monitor.metric == "val_acc"
                                           else val["loss"], self.epoch)
            if main:
                if improved:
                    ckpt.save(best_checkpoint(self.run_dir), {"epoch": self.epoch,
                                                  "model": _cpu(self.eval_model().state_dict()),
                                                  "config": self.cfg.to_dict(),
                                                  "classes": list(self.data.classes)})
                ckpt.save(last_checkpoint(self.run_dir), self.state())
                write_history(self.run_dir, self.history)
            self._last_checkpoint = time.perf_counter()
            self.write_progress(0, row["img_per_s"])
            if self.stop is not None and self.stop() and self.epoch < t.epochs:
                raise TrainingInterrupted(self.run_dir, self.epoch, 0, self.steps)
            log.info("epoch %d/%d lr %.2e train loss %.4f acc %.4f | val loss %.4f acc %.4f%s "
                     "| %.1fs, %.0f img/s", self.epoch, t.epochs, lr, train_loss, train_acc,
                     val["loss"], val["acc"], " *" if improved else "", seconds,
                     row["img_per_s"])
            last_epoch_seconds = seconds
            if t.fit_to_budget and self.epoch == self._first_epoch + 1:
                self._fit_to_budget(time.perf_counter() - started, seconds)
            stop_early = es.patience is not None and self.monitor.bad_epochs >= es.patience
            if self.ctx.broadcast_flag(stop_early, self.dev):
                log.info("early stopping: no %s improvement > %g for %d epochs (best %.4f at "
                         "epoch %d)", es.monitor, es.min_delta, es.patience, self.monitor.best,
                         self.monitor.best_epoch)
                return "early_stopping"
            out_of_time = self.epoch < t.epochs and self.budget.exhausted(
                time.perf_counter() - started, last_epoch_seconds)
            if self.ctx.broadcast_flag(out_of_time, self.dev):
                log.info("time budget reached after epoch %d; resume with --resume %s",
                         self.epoch, self.run_dir)
                return "time_budget"
        return "completed"


def planned_epochs(done: int, budget_seconds: float, elapsed: float, epoch_seconds: float) -> int:
    """Epochs a time budget holds: those done plus whole epochs in the time left."""
    left = max(0.0, budget_seconds - elapsed)
    return done + int(left // max(epoch_seconds, 1e-9))


def _swa_start(cfg: TrainConfig) -> int:
    """The first epoch (1-based count of finished epochs) whose weights are averaged."""
    swa = cfg.train.swa
    if swa is None:
        return 0
    if swa.start < 1:
        return max(1, int(round(swa.start * cfg.train.epochs)))
    return int(swa.start)


def _cpu(state: dict[str, Any]) -> dict[str, Any]:
    """A state dict with CPU tensors, so checkpoints load anywhere (GPU runs resume on CPUs)."""
    return {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in state.items()}


def _final_model(tr: _Trainer) -> tuple[FERModel, str]:
    """The weights that are tested and exported: the SWA average when configured, else the
    best validation epoch unless the config asks for the last one (or early stopping was
    told not to restore the best)."""
    cfg = tr.cfg
    swa = tr.swa_model()
    if swa is not None:
        return swa, f"swa (epochs {tr.swa_start}-{tr.epoch}, {int(tr.swa.n_averaged)} averaged)"
    want_last = cfg.train.select == "last" or (
        cfg.train.early_stopping.patience is not None and not cfg.train.early_stopping.restore_best)
    model = copy.deepcopy(tr.eval_model())
    best = best_checkpoint(tr.run_dir)
    if want_last or not best.is_file():
        return model, f"last (epoch {tr.epoch})"
    state = ckpt.load(best)
    model.load_state_dict(state["model"])
    return model, f"best (epoch {state['epoch']})"


def _finish(tr: _Trainer, stop_reason: str) -> RunMetrics:
    from ekspresi.export.onnx import export_bundle

    cfg, data = tr.cfg, tr.data
    model, which = _final_model(tr)
    val_logits = tr.predict(model, "val", amp=False, shard=False)
    test_logits = tr.predict(model, "test", amp=False, shard=False)
    val, test = tr.scores(val_logits, "val"), tr.scores(test_logits, "test")
    train_row = next((h for h in tr.history if h["epoch"] == tr.monitor.best_epoch),
                     tr.history[-1] if tr.history else {})
    probs = torch.softmax(torch.from_numpy(test_logits), 1).numpy()
    ts: Split = data.splits["test"]
    np.savez_compressed(tr.run_dir / PREDICTIONS_NAME, labels=ts.labels,
                        probabilities=probs.astype(np.float32), paths=ts.paths.astype(str),
                        sources=ts.sources.astype(str), classes=np.array(data.classes))
    rates = [h["img_per_s"] for h in tr.history if "img_per_s" in h]
    from ekspresi.evaluate.split_scores import run_scores  # papers' metrics + collapse flag

    scores = run_scores(val_labels=data.splits["val"].labels, val_logits=val_logits,
                        test_labels=ts.labels, test_logits=test_logits,
                        test_sources=ts.sources, classes=data.classes,
                        by_source=cfg.data.test_by_source,
                        official_split=cfg.data.split == "official")
    scores.splits[VAL].log_loss, scores.splits[TEST].log_loss = val["loss"], test["loss"]
    scores.splits = {TRAIN: SplitMetrics(accuracy=train_row.get("train_acc"),
                                         loss=train_row.get("train_loss")), **scores.splits}
    scores.train_time_seconds = round(tr.train_seconds, 1)
    scores.train_img_per_s = round(float(np.median(rates)), 1) if rates else None
    scores.device = str(tr.dev)
    final = RunMetrics(
        name=cfg.name, model=cfg.model.name, classes=list(data.classes),
        input_size=model.input_spec.size, trainable_params=count_params(tr.model),
        **scores.to_dict(),
        best_epoch=tr.monitor.best_epoch, epochs_run=tr.epoch,
        epochs_planned=cfg.train.epochs, weights_used=which,
        epochs_configured=tr.configured_epochs or cfg.train.epochs,
        stop_reason=stop_reason, resumable=stop_reason == "time_budget",
        counts=data.counts, data_notes=data.notes,
        precision=tr.place.precision, bf16_used=tr.place.precision == "bf16",
        world_size=tr.ctx.world_size,
        distilled_from=list(cfg.train.distill.teachers) if cfg.train.distill else [],
        pretrained=getattr(model, "pretrained", False),
        init=getattr(model, "init", "scratch"), protocol=cfg.data.protocol)
    if final.collapsed:
        log.warning(final.collapse["message"])
    write_json(tr.run_dir / FINAL_NAME, final.to_dict())
    # The selected weights alone (no optimiser state): what teachers and archives use.
    ckpt.save(tr.run_dir / FINAL_WEIGHTS, {"model": _cpu(model.state_dict()),
                                           "config": cfg.to_dict(),
                                           "classes": list(data.classes), "weights": which})
    bundle_metrics = Metrics(splits={k: final.splits[k] for k in (VAL, TEST)})
    export_bundle(model.cpu(), tr.run_dir / BUNDLE_DIR, name=cfg.name, classes=data.classes,
                  training={"config": cfg.to_dict(), "run": str(tr.run_dir),
                            "epochs": tr.epoch, "best_epoch": tr.monitor.best_epoch,
                            "train_time_seconds": final.train_time_seconds,
                            "weights": which, "device": final.device},
                  metrics=bundle_metrics.to_dict())
    log.info("final (%s weights): val acc %.4f loss %.4f | test acc %.4f loss %.4f | %s in %.0fs",
             which, val["acc"], val["loss"], test["acc"], test["loss"], stop_reason,
             tr.train_seconds)
    return final


def _attach_log(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / LOG_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def run_training(config: dict | TrainConfig | str | Path | None, out_dir: str | Path, *,
                 resume: bool = False, max_minutes: float | None = None, quiet: bool = False,
                 threads: int | None = None, device: str | None = None,
                 stop: StopRequest | None = None) -> Path:
    """Train (or, with ``resume``, continue) the run in ``out_dir``; returns its path.

    ``config`` may be a mapping, a :class:`TrainConfig` or a config file path. When resuming,
    the run directory's own ``config.resolved.yaml`` is used and ``config`` may be None.
    ``device`` overrides ``train.device`` (``auto``/``cpu``/``cuda``/``cuda:N``). Under
    ``torchrun`` every process calls this; they train together and only rank 0 writes.
    ``stop``: checked between steps; when it fires the run saves a checkpoint of the exact
    position and raises :class:`TrainingInterrupted` (single process only).
    """
    from ekspresi.train import distributed

    run_dir = Path(out_dir)
    ctx = from_environment()
    if resume:
        stored = run_dir / CONFIG_NAME
        if not stored.is_file():
            raise ConfigError(f"{run_dir}: no {CONFIG_NAME}; not a run directory to resume")
        cfg = parse_config(read_config_file(stored))
    else:
        if isinstance(config, (str, Path)):
            config = read_config_file(config)
        cfg = parse_config(config)
        if last_checkpoint(run_dir).is_file():
            raise ConfigError(f"{run_dir}: already holds a run; use --resume {run_dir} to "
                              "continue it or choose another --out")
    if device is not None:
        cfg.train.device = device
    per_rank_batch(cfg.train.batch_size, ctx)  # fail before any work
    n_threads = threads or cfg.train.threads
    if n_threads:
        torch.set_num_threads(int(n_threads))
    t = cfg.train
    place = devices.placement(t.device, t.precision, cpu_bf16=t.bf16,
                              channels_last=t.channels_last,
                              local_rank=ctx.local_rank if ctx.enabled else None)
    distributed.init(ctx, place.device)
    if not ctx.is_main:  # one voice per job: other ranks report only problems
        logging.getLogger("ekspresi").setLevel(logging.WARNING)
    handler = None
    try:
        ctx.barrier()  # every rank has checked the run folder before rank 0 writes to it
        if ctx.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            handler = _attach_log(run_dir)
            if not resume:
                write_text(run_dir / CONFIG_NAME, dump_yaml(cfg))
        env = environment(torch.get_num_threads())
        env.update(place.describe(), world_size=ctx.world_size)
        if resume:  # keep how the setting was chosen (the first process measured it)
            try:
                earlier = json.loads((run_dir / ENV_NAME).read_text())
            except (OSError, ValueError):
                earlier = {}
            if "cpu_tuning" in earlier:
                env["cpu_tuning"] = earlier["cpu_tuning"]
        if ctx.is_main:
            write_json(run_dir / ENV_NAME, env)
        size = cfg.model.input_size or _default_size(cfg)
        t0 = time.perf_counter()
        data = prepare_data(cfg, size)
        log.info("data ready in %.1fs: %s", time.perf_counter() - t0,
                 {k: len(v) for k, v in data.splits.items()})
        if not resume and _wants_cpu_tuning(cfg, place, ctx):
            place, env["cpu_tuning"] = _tune_cpu(cfg, data, size, ctx)
            env.update(place.describe())
            if ctx.is_main:  # a resumed run reads its setting back from here
                write_text(run_dir / CONFIG_NAME, dump_yaml(cfg))
                write_json(run_dir / ENV_NAME, env)
        tr = _Trainer(cfg, run_dir, data, quiet, max_minutes, place, ctx, stop)
        if resume:
            tr.load(ckpt.load(last_checkpoint(run_dir)))
            at = f", step {tr.partial['step']}/{tr.steps}" if tr.partial else ""
            log.info("resumed %s at epoch %d%s on %s", run_dir, tr.epoch, at, place.device)
        else:
            log.info("model %s: %d trainable parameters, input %d px, %s %s, %d process(es), "
                     "threads %d", cfg.model.name, count_params(tr.model), size, place.device,
                     place.precision, ctx.world_size, torch.get_num_threads())
        reason = tr.fit() if tr.epoch < cfg.train.epochs else "completed"
        ctx.barrier()
        if ctx.is_main:
            final = _finish(tr, reason)
            env["train_img_per_s"] = final.train_img_per_s
            write_json(run_dir / ENV_NAME, env)
    finally:
        if handler is not None:
            log.removeHandler(handler)
            handler.close()
        distributed.shutdown(ctx)
    return run_dir


def _wants_cpu_tuning(cfg: TrainConfig, place: devices.Placement, ctx: DistContext) -> bool:
    t = cfg.train
    return (place.device.type == "cpu" and t.cpu_tune and t.channels_last is None
            and not ctx.enabled and os.environ.get("EKSPRESI_CPU_TUNE", "1") != "0")


def _tune_cpu(cfg: TrainConfig, data: PreparedData, size: int,
              ctx: DistContext) -> tuple[devices.Placement, dict[str, Any]]:
    """Measure the fastest CPU setting for this run's network and write it into the config
    (``train.channels_last`` and ``train.precision``), so a resume uses the same one."""
    from ekspresi.train.tuning import fastest_cpu_setting

    t = cfg.train
    model = make_model(cfg, len(data.classes))
    apply_freeze(model, cfg, 0)
    allow_bf16 = t.precision in ("auto", "bf16") and (t.bf16 or t.precision == "bf16")
    found = fastest_cpu_setting(model, size=size, batch=min(t.batch_size, 64),
                                allow_bf16=allow_bf16, augment=cfg.augment,
                                classes=len(data.classes))
    t.channels_last = found["channels_last"]
    t.precision = found["precision"]
    return devices.placement(t.device, t.precision, cpu_bf16=t.bf16,
                             channels_last=t.channels_last), found


def _default_size(cfg: TrainConfig) -> int:
    from ekspresi.models import get_info

    return get_info(cfg.model.name).input_size
