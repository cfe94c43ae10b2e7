"""Where training runs and in which precision: ``--device`` / ``train.device`` and
``train.precision`` resolved once, at start-up, into a :class:`Placement`.

The loop asks the placement for everything device-specific (autocast context, whether a
``GradScaler`` is needed, the memory format), so the same code path trains on a laptop CPU,
one GPU or one GPU per ``torchrun`` process. Resolution fails early, with what was found,
when the request cannot be met: ``--device cuda`` on a machine without a usable GPU is an
error, never a silent CPU run that would take a hundred times longer.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Any

import torch

from ekspresi.errors import ConfigError

log = logging.getLogger("ekspresi.train")

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def is_device_spec(spec: str) -> bool:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (any case, spaces around ignored): what the
    config accepts when read and what :func:`resolve_device` accepts at start-up."""
    return re.fullmatch(r"auto|cpu|cuda(:\d+)?", spec.strip().lower()) is not None


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX). Elsewhere autocast
    emulates it: benchmarks/train_throughput.py measured fer-vgg at 9 img/s with bf16 vs
    150 img/s in float32 on an AVX2 AMD EPYC, so the trainer falls back to float32."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_device(spec: str | None, local_rank: int | None = None) -> torch.device:
    """``auto`` (CUDA when usable, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Under ``torchrun`` with CUDA, each process takes the GPU of its ``LOCAL_RANK``
    (``cuda:N`` is then rejected: the launcher, not the config, places processes).
    """
    spec = (spec or "auto").strip().lower()
    if not is_device_spec(spec):
        raise ConfigError(f"unknown device {spec!r}; use one of {', '.join(DEVICE_CHOICES)}")
    if spec == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if spec == "auto" and not available:
        return torch.device("cpu")
    if not available:
        raise ConfigError(f"device {spec!r} requested but {cuda_status()}; use --device cpu "
                          "(or auto) to train on the CPU")
    count = torch.cuda.device_count()
    if local_rank is not None:
        if spec.startswith("cuda:"):
            raise ConfigError(f"device {spec!r} under torchrun: each process uses the GPU of "
                              "its LOCAL_RANK; give --device cuda (or auto)")
        if local_rank >= count:
            raise ConfigError(f"torchrun started local rank {local_rank} but this machine has "
                              f"{count} GPU(s); use --nproc_per_node {count} or fewer")
        return torch.device("cuda", local_rank)
    index = int(spec.split(":")[1]) if ":" in spec else 0
    if index >= count:
        raise ConfigError(f"device {spec!r} requested but this machine has {count} GPU(s) "
                          f"(cuda:0..cuda:{count - 1})")
    return torch.device("cuda", index)


def cuda_status() -> str:
    """Why CUDA is not usable, in words (for error messages)."""
    if torch.version.cuda is None:
        return f"this PyTorch ({torch.__version__}) is a CPU-only build"
    try:
        n = torch.cuda.device_count()
    except Exception as exc:  # noqa: BLE001 - driver problems surface as any error
        return f"CUDA {torch.version.cuda} build, but the driver failed ({exc})"
    return (f"PyTorch is built for CUDA {torch.version.cuda} but found {n} usable GPU(s) "
            "(no NVIDIA driver, or CUDA_VISIBLE_DEVICES hides them)")


@dataclass(frozen=True)
class Placement:
    """The resolved device and precision of one training process."""

    device: torch.device
    precision: str            # fp32 | bf16 | fp16 (what autocast actually uses)
    channels_last: bool

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self) -> contextlib.AbstractContextManager:
        dtype = self.amp_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """fp16 needs loss scaling (its exponent range underflows small gradients); bf16
        and fp32 do not."""
        return torch.amp.GradScaler("cuda") if self.precision == "fp16" else None

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"device": str(self.device), "precision": self.precision,
                             "channels_last": self.channels_last}
        if self.is_cuda:
            props = torch.cuda.get_device_properties(self.device)
            d.update(gpu_name=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1),
                     gpu_capability=f"{props.major}.{props.minor}",
                     cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
        else:
            d["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        return d


def resolve_precision(requested: str, device: torch.device, cpu_bf16: bool) -> str:
    """``auto``: bf16 on GPUs that support it, else fp16 (+ GradScaler); on the CPU, bf16
    only when ``train.bf16`` asks for it and the CPU has it natively, else fp32."""
    if requested not in PRECISIONS:
        raise ConfigError(f"train.precision: {requested!r} is not one of {', '.join(PRECISIONS)}")
    if device.type == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if requested == "auto":
            return "bf16" if bf16_ok else "fp16"
        if requested == "bf16" and not bf16_ok:
            raise ConfigError(f"train.precision bf16: {torch.cuda.get_device_name(device)} has "
                              "no bfloat16; use fp16 or auto")
        return requested
    if requested == "fp16":
        raise ConfigError("train.precision fp16 is for CUDA GPUs; on the CPU use fp32 or bf16")
    want_bf16 = requested == "bf16" or (requested == "auto" and cpu_bf16)
    if want_bf16 and not native_bf16():
        log.warning("bfloat16 requested but this CPU has no native bfloat16 (%s): training "
                    "in float32 instead (emulated bf16 measured ~15x slower)",
                    torch.backends.cpu.get_cpu_capability())
        return "fp32"
    return "bf16" if want_bf16 else "fp32"


def placement(device: str | None, precision: str, *, cpu_bf16: bool, channels_last: bool | None,
              local_rank: int | None = None) -> Placement:
    """Resolve the device, precision and memory format (channels-last defaults to on for
    CUDA, where cuDNN's NHWC kernels are faster under autocast, and off on the CPU)."""
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    prec = resolve_precision(precision, dev, cpu_bf16)
    cl = (dev.type == "cuda") if channels_last is None else channels_last
    return Placement(dev, prec, cl)
