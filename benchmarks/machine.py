"""What a benchmark's JSON records about the machine it ran on (shared by the scripts):
``ekspresi.machine`` (CPU model, kind and the AVX-512/bf16/AMX features that change speeds)."""

from __future__ import annotations

from ekspresi.machine import cpu_model, machine_info

__all__ = ["cpu_model", "machine_info"]
