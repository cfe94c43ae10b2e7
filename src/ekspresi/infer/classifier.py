"""The expression classifier: a verified model bundle run by ONNX Runtime on the CPU.

All faces of a frame go through ONE batched ``session.run`` call: per-call overhead, not
arithmetic, dominates for 48x48 inputs. Large arrays (a whole test set in ``ekspresi
evaluate``) go in chunks of :data:`MAX_BATCH`, so memory stays bounded: one call on 3,589
faces held 10.9 GiB for a ResNet-18-sized flip ensemble. ONNX Runtime sessions may
be ``run`` from several threads at once, so one :class:`Classifier` serves a whole web
server.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ekspresi.errors import BadInputError, ModelError
from ekspresi.infer.bundle import INPUT_NAME, OUTPUT_NAME, Bundle
from ekspresi.infer.resolve import load_model
from ekspresi.onnxrt import open_session
from ekspresi.preprocess import InputSpec, prepare_face, to_model_input

#: Faces per ``session.run`` call: far more than a frame holds, and enough to amortise the
#: per-call overhead, while a large network's activations stay within a few hundred MB.
MAX_BATCH = 256

#: Default intra-op threads: one core per call leaves the other for detection/decoding
#: (measured in benchmarks/inference.py: batch-1 latency barely improves with 2 threads).
DEFAULT_THREADS = 1


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def default_threads() -> int:
    env = os.environ.get("EKSPRESI_THREADS")
    return int(env) if env and env.isdigit() and int(env) > 0 else DEFAULT_THREADS


class Classifier:
    """``Classifier(model).predict_proba(faces)`` -> (N, C) probabilities. ``model``: a
    :class:`Bundle` or any MODEL argument :func:`~ekspresi.infer.resolve.load_model` takes
    (``None`` = the bundled default)."""

    def __init__(self, bundle: Bundle | str | Path | None = None, *,
                 threads: int | None = None):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_model(bundle)
        self.threads = threads or default_threads()
        self.session = open_session(self.bundle.onnx_path, threads=self.threads)
        onnx_meta = self.bundle.metadata.get("onnx", {})
        self._input = onnx_meta.get("input", INPUT_NAME)
        self._output = onnx_meta.get("output", OUTPUT_NAME)
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if self._input not in inputs or self._output not in outputs:
            raise ModelError(f"{self.bundle.onnx_path}: graph has inputs {sorted(inputs)} and "
                             f"outputs {sorted(outputs)}, metadata names {self._input!r} -> "
                             f"{self._output!r}")
        shape = inputs[self._input].shape
        size = self.input_spec.size
        if len(shape) != 4 or any(isinstance(d, int) and d != want
                                  for d, want in zip(shape[1:], (1, size, size))):
            raise ModelError(f"{self.bundle.onnx_path}: input shape {shape} does not match "
                             f"the metadata's (N, 1, {size}, {size})")

    @property
    def classes(self) -> tuple[str, ...]:
        return self.bundle.classes

    @property
    def input_spec(self) -> InputSpec:
        return self.bundle.input_spec

    def prepare(self, faces: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """uint8 (N, size, size) from faces of any size/colour, through the training path."""
        size = self.input_spec.size
        if isinstance(faces, np.ndarray) and faces.ndim == 3 and faces.dtype == np.uint8 \
                and faces.shape[1:] == (size, size):
            return faces
        if isinstance(faces, np.ndarray) and faces.ndim == 2:
            faces = [faces]
        out = []
        for i, f in enumerate(faces):
            f = np.asarray(f)
            if f.dtype != np.uint8 or f.ndim not in (2, 3) or f.size == 0:
                raise BadInputError(f"face {i}", f"expected a uint8 gray/BGR face image, got "
                                                 f"{f.dtype} {f.shape}")
            out.append(prepare_face(f, size))
        return np.stack(out) if out else np.zeros((0, size, size), np.uint8)

    def logits(self, faces: np.ndarray | list[np.ndarray]) -> np.ndarray:
        batch = self.prepare(faces)
        if not len(batch):
            return np.zeros((0, len(self.classes)), np.float32)
        out = [self.session.run([self._output],
                                {self._input: to_model_input(batch[i:i + MAX_BATCH])})[0]
               for i in range(0, len(batch), MAX_BATCH)]
        return np.concatenate(out).astype(np.float32, copy=False)

    def predict_proba(self, faces: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """faces: uint8 (N, size, size) (others are prepared first) -> (N, C) softmax."""
        return softmax(self.logits(faces))

    def __repr__(self) -> str:
        return (f"Classifier({self.bundle.name!r}, classes={list(self.classes)}, "
                f"size={self.input_spec.size}, threads={self.threads})")
