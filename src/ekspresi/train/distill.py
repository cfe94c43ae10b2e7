"""Knowledge distillation: teachers score the very batch the student sees.

A teacher is a finished run folder (its ``final_weights.pt``, run as a PyTorch model on the
training device) or an ONNX bundle folder (run by ONNX Runtime: CPU, or CUDA where its GPU
provider is installed). Several teachers form an ensemble; with ``flip`` each also scores
the mirrored view. Their softened distributions are averaged, so the target is the
ensemble's, not any one member's.

Teachers see the student's *augmented, mixed* batch (Beyer et al., "Knowledge distillation:
a good teacher is patient and consistent", 2022: consistent views are what make long
distillation work), resized to their own input size when it differs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from ekspresi.errors import ConfigError, ModelError
from ekspresi.runs import FINAL_WEIGHTS
from ekspresi.train.config import DistillConfig
from ekspresi.train.devices import Placement

log = logging.getLogger("ekspresi.train")


class Teacher(Protocol):
    name: str
    classes: tuple[str, ...]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """float (N, 1, H, W) pixels 0..255 on the training device -> (N, C) logits."""
        ...


class TorchTeacher:
    def __init__(self, name: str, model: torch.nn.Module, classes: tuple[str, ...], size: int,
                 place: Placement):
        self.name, self.classes, self.size, self.place = name, classes, size, place
        self.model = model.to(place.device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        with self.place.autocast():  # the student's precision
            return self.model(_resize(x, self.size)).float()


class OnnxTeacher:
    def __init__(self, name: str, path: Path, device: torch.device):
        from ekspresi.infer.bundle import load_bundle
        from ekspresi.onnxrt import open_session

        bundle = load_bundle(path)
        self.name, self.classes, self.size = name, bundle.classes, bundle.input_spec.size
        self.session = open_session(bundle.onnx_path, gpu=device.type == "cuda")
        self.input = self.session.get_inputs()[0].name

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        arr = _resize(x, self.size).float().contiguous().cpu().numpy()
        out = self.session.run(None, {self.input: arr})[0]
        return torch.from_numpy(np.asarray(out, np.float32)).to(x.device, non_blocking=True)


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False,
                         antialias=x.shape[-1] > size)


def load_teacher(spec: str, place: Placement) -> Teacher:
    """A run folder with ``final_weights.pt`` (run in PyTorch), else any MODEL argument
    (:func:`ekspresi.infer.resolve.resolve_model`: a bundle, a run's ``bundle/``, a
    bundled model's name) run by ONNX Runtime."""
    path = Path(spec).expanduser()
    if (path / FINAL_WEIGHTS).is_file():
        return _torch_teacher(path, place)
    from ekspresi.infer.resolve import resolve_model

    try:
        resolved = resolve_model(path)
    except ModelError as exc:
        raise ModelError(f"{path}: not a teacher: expected a finished run folder (with "
                         f"{FINAL_WEIGHTS}) or a model ({exc})") from None
    return OnnxTeacher(str(path), resolved.bundle_dir, place.device)


def _torch_teacher(path: Path, place: Placement) -> TorchTeacher:
    from ekspresi.train import checkpoint
    from ekspresi.train.config import parse_config
    from ekspresi.train.modeling import make_model

    state = checkpoint.load(path / FINAL_WEIGHTS)
    cfg = parse_config(state["config"])
    cfg.model.pretrained, cfg.model.weights = False, None  # the state replaces any weights
    classes = tuple(state["classes"])
    model = make_model(cfg, len(classes))
    model.load_state_dict({k: v.float() for k, v in state["model"].items()})
    return TorchTeacher(str(path), model, classes, model.input_spec.size, place)


class TeacherEnsemble:
    """The averaged, temperature-softened class distribution of one or more teachers."""

    def __init__(self, cfg: DistillConfig, classes: tuple[str, ...], place: Placement):
        self.cfg = cfg
        self.teachers: list[Teacher] = []
        self.orders: list[torch.Tensor] = []
        for spec in cfg.teachers:
            t = load_teacher(spec, place)
            if set(t.classes) != set(classes):
                raise ConfigError(f"teacher {t.name} predicts classes {list(t.classes)} but "
                                  f"the student is trained on {list(classes)}; distillation "
                                  "needs the same classes")
            self.orders.append(torch.tensor([t.classes.index(c) for c in classes],
                                            device=place.device))
            self.teachers.append(t)
        log.info("distilling from %d teacher(s) (T=%g, alpha=%g, flip=%s): %s",
                 len(self.teachers), cfg.temperature, cfg.alpha, cfg.flip,
                 ", ".join(t.name for t in self.teachers))

    @torch.no_grad()
    def probs(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of softmax(logits / T) over teachers (and mirrored views), student order."""
        views = [x, x.flip(-1)] if self.cfg.flip else [x]
        total = None
        for t, order in zip(self.teachers, self.orders):
            for v in views:
                p = torch.softmax(t.logits(v)[:, order] / self.cfg.temperature, dim=1)
                total = p if total is None else total + p
        return total / (len(self.teachers) * len(views))

    def loss(self, student_logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
        """KL(teacher || student) at temperature T, times T^2 so its gradients keep the same
        scale as the label loss whatever T is."""
        t = self.cfg.temperature
        log_p = F.log_softmax(student_logits.float() / t, dim=1)
        return F.kl_div(log_p, teacher_probs, reduction="batchmean") * (t * t)
