"""The CPU a figure was measured on: model name and the instruction-set features that change
training and inference speed several-fold (AVX2 vs AVX-512, native bfloat16, AMX).

Every timing ekspresi records (a run's ``env.json``, the benchmarks' JSON) carries these,
because the same command runs about 3x faster on an Intel AVX-512/AMX machine than on an
AVX2 AMD one, and figures from the two must never be compared as if from one machine.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

#: /proc/cpuinfo flags worth recording (the rest do not move FER workloads).
FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile",
            "avx_vnni")


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def cpu_model() -> str:
    for line in _cpuinfo():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_features() -> list[str]:
    """The :data:`FEATURES` this CPU has (empty where /proc/cpuinfo is not readable)."""
    for line in _cpuinfo():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return [f for f in FEATURES if f in flags]
    return []


def cpu_kind() -> str:
    """A short class for tables: ``intel-amx``, ``avx512``, ``avx2`` or ``other``."""
    feats = set(cpu_features())
    if "amx_bf16" in feats:
        return "intel-amx"
    if "avx512f" in feats:
        return "avx512"
    return "avx2" if "avx2" in feats else "other"


def machine_info() -> dict[str, object]:
    return {"cpu": cpu_model(), "cpu_kind": cpu_kind(), "cpu_features": cpu_features(),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}
