"""Data-parallel training across processes with PyTorch's own runtime (torchrun + DDP).

``torchrun --nproc_per_node N [--nnodes M --rdzv-endpoint HOST:PORT] -m ekspresi train CFG``
starts N processes per machine; each reads the launcher's environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``...) here and joins one process group: NCCL
between GPUs, gloo between CPU processes. A plain ``ekspresi train`` (no torchrun variables,
or a world of one) never touches ``torch.distributed``.

How the work is divided (see :mod:`ekspresi.train.loop`): every rank draws the same epoch
permutation and the same augmentation parameters from identically seeded generators, then
trains on its own contiguous ``batch_size / world_size`` slice of each global batch; DDP
averages gradients, so an update equals the single-process update on the whole global batch
(up to float summation order, BatchNorm statistics per rank unless ``train.sync_bn``, and
dropout masks). Validation is sharded and gathered; rank 0 alone writes run files.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ekspresi.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job; ``world_size == 1`` means no process group."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_sum(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise sum of ``values`` over all ranks (float64 so counts stay exact)."""
        if not self.enabled:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def broadcast_flag(self, flag: bool, device: torch.device) -> bool:
        """Rank 0's decision, everywhere (stopping must be unanimous or ranks deadlock)."""
        if not self.enabled:
            return flag
        t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
        dist.broadcast(t, src=0)
        return bool(t.item())

    def gather_rows(self, local: torch.Tensor, total: int) -> torch.Tensor:
        """Reassemble rows sharded as ``rank::world_size`` into the original order."""
        if not self.enabled:
            return local
        per = (total + self.world_size - 1) // self.world_size
        padded = torch.zeros((per, *local.shape[1:]), dtype=local.dtype, device=local.device)
        padded[: local.shape[0]] = local
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        out = torch.empty((total, *local.shape[1:]), dtype=local.dtype, device=local.device)
        for r, part in enumerate(parts):
            n = len(range(r, total, self.world_size))
            out[r::self.world_size] = part[:n]
        return out


def from_environment() -> DistContext:
    """The torchrun environment, if any (``WORLD_SIZE`` > 1), else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return DistContext()
    try:
        rank = int(os.environ["RANK"])
        local = int(os.environ.get("LOCAL_RANK", rank))
    except (KeyError, ValueError):
        raise ConfigError("WORLD_SIZE is set but RANK is missing: start distributed training "
                          "with torchrun (torchrun --nproc_per_node N -m ekspresi train ...)"
                          ) from None
    return DistContext(rank=rank, local_rank=local, world_size=world)


def init(ctx: DistContext, device: torch.device) -> None:
    """Join the process group (NCCL for CUDA devices, gloo on CPUs)."""
    if not ctx.enabled or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs = {"device_id": device} if device.type == "cuda" else {}
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30), **kwargs)


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def per_rank_batch(batch_size: int, ctx: DistContext) -> int:
    """The global batch is split evenly; a remainder would change the optimisation (the
    learning rate is tuned per global batch), so it is an error, not a silent rounding."""
    if batch_size % ctx.world_size:
        lo = batch_size - batch_size % ctx.world_size
        raise ConfigError(f"train.batch_size {batch_size} is the global batch and must divide "
                          f"evenly over {ctx.world_size} processes; use {lo or ctx.world_size} "
                          f"or {lo + ctx.world_size}")
    return batch_size // ctx.world_size
