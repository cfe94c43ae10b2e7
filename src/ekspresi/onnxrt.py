"""The one way ekspresi opens an ONNX Runtime session (classifier, detectors, int8 checks,
distillation teachers).

Every session gets the same settings: the CPU provider (CUDA first only when asked and
available), ``intra_op`` threads as given and one ``inter_op`` thread, sequential execution,
every graph optimisation, warnings silenced. A file ONNX Runtime cannot load becomes a
:class:`ModelError` naming it, whatever exception type the runtime raised. It sits at the
ground floor so that both ``detect`` and ``infer`` use it; ``onnxruntime`` is imported only
when a session is made (``ekspresi --help`` stays instant).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ekspresi.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    import onnxruntime

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def providers(gpu: bool = False) -> list[str]:
    """The CPU provider, behind CUDA when ``gpu`` and this onnxruntime build has it."""
    import onnxruntime as ort

    return [CUDA, CPU] if gpu and CUDA in ort.get_available_providers() else [CPU]


def open_session(model: str | Path, *, threads: int | None = None, spin: bool = True,
                 gpu: bool = False, what: str = "the model") -> onnxruntime.InferenceSession:
    """An ``InferenceSession`` for the ONNX file ``model``.

    ``threads``: intra-op threads (None: ONNX Runtime's choice, all cores). ``spin=False``
    stops idle threads busy-waiting between operators, which on a small shared machine only
    steals CPU from the detector or the classifier beside them. ``what`` names the model in
    the error message."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(model), sess_options=opts, providers=providers(gpu))
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
        raise ModelError(f"{model}: ONNX Runtime cannot load {what} ({exc})") from None
