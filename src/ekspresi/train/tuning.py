"""The fastest correct CPU setting for one network on this CPU, measured before training.

The right memory format and precision differ by network and by CPU, several-fold: on a
2-core AMD EPYC with AVX-512 and native bf16 (2026-12-07, shared machine) a train step ran

============================  =======  ============  =======  ============
images/s                       fp32     fp32 + CL     bf16     bf16 + CL
============================  =======  ============  =======  ============
fer-vgg, 48 px                  163        195          283       378
MobileNetV2, 96 px               80        112           78        98
MobileNetV2, 48 px              167        276          155       228
EfficientNet-Lite0, 64 px       107        214          104       127
============================  =======  ============  =======  ============

(CL = channels-last), while on AVX2 CPUs without native bf16 autocast emulates bfloat16 ~15x
slower. So instead of a fixed rule, a CPU run that leaves ``train.channels_last`` unset times
a few real train steps of a copy of its network under each candidate and keeps the fastest;
bf16 is a candidate only when the config allows it (``train.bf16``: the papers' configs stay
float32) and the CPU has it natively. The choice is written into the run's config, so a
resumed run keeps it (and stays exact), and the timings go to ``env.json``.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

import torch
import torch.nn.functional as F

from ekspresi.data.augment import AugmentConfig, BatchAugment
from ekspresi.models.base import FERModel
from ekspresi.train import devices

log = logging.getLogger("ekspresi.train")


def time_train_steps(model: torch.nn.Module, place: devices.Placement, size: int, batch: int,
                     steps: int, *, augment: AugmentConfig | None = None, warmup: int = 2,
                     classes: int = 7) -> float:
    """Images/s of full train steps (augmentation, forward, backward, Adam) on random faces,
    as the training loop runs them; the model is trained on noise: pass a copy."""
    dev = place.device
    model.to(dev, memory_format=place.memory_format).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, 1e-4)
    scaler = place.grad_scaler()
    aug, g = BatchAugment(augment or AugmentConfig()), torch.Generator().manual_seed(0)
    data = torch.randint(0, 256, (batch * 2, size, size), dtype=torch.uint8,
                         generator=g).to(dev)
    y = torch.randint(0, classes, (batch,), generator=g).to(dev)

    def step(i: int) -> None:
        xb = data[(i % 2) * batch:(i % 2 + 1) * batch].unsqueeze(1).float()
        xb = aug(xb, g).contiguous(memory_format=place.memory_format)
        with place.autocast():
            out = model(xb)
        loss = F.cross_entropy(out.float(), y)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()

    for i in range(warmup):
        step(i)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return batch * steps / (time.perf_counter() - t0)


def candidates(allow_bf16: bool) -> list[tuple[str, bool]]:
    """(precision, channels_last) pairs worth timing on this CPU."""
    precs = ["fp32", "bf16"] if allow_bf16 and devices.native_bf16() else ["fp32"]
    return [(p, cl) for p in precs for cl in (False, True)]


def fastest_cpu_setting(model: FERModel, *, size: int, batch: int, allow_bf16: bool,
                        augment: AugmentConfig | None = None, steps: int = 4,
                        classes: int = 7) -> dict[str, Any]:
    """Time each candidate on a copy of ``model`` (the original, its weights and every
    random state the run draws from are untouched); returns ``{"precision",
    "channels_last", "img_per_s", "candidates": [...]}`` for the fastest."""
    rows = []
    cpu_state = torch.get_rng_state()
    try:
        for prec, cl in candidates(allow_bf16):
            place = devices.Placement(torch.device("cpu"), prec, cl)
            ips = time_train_steps(copy.deepcopy(model), place, size, batch, steps,
                                   augment=augment, classes=classes)
            rows.append({"precision": prec, "channels_last": cl, "img_per_s": round(ips, 1)})
    finally:
        torch.set_rng_state(cpu_state)  # dropout draws during timing leave no trace
    best = max(rows, key=lambda r: r["img_per_s"])
    log.info("CPU setting: %s", ", ".join(
        f"{r['precision']}{' + channels-last' if r['channels_last'] else ''} "
        f"{r['img_per_s']:.0f} img/s{' *' if r is best else ''}" for r in rows))
    return {**best, "candidates": rows}
