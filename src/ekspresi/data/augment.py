"""Batched data augmentation with tensor ops (fast on a 2-core CPU).

Per-image Python transforms (PIL, Keras' ImageDataGenerator) cost more than the small FER
networks' training step itself. Here a whole batch is augmented at once: rotation,
width/height shift, shear, zoom and horizontal flip become one affine matrix per image and
one ``affine_grid`` + ``grid_sample`` call for the batch; brightness/contrast and random
erasing are broadcast arithmetic. Every random draw comes from a caller-supplied
``torch.Generator`` so training is reproducible and resumable.

Parameter meanings follow Keras' ImageDataGenerator, which the papers used: ``rotation`` in
degrees (uniform in +-rotation), ``width_shift``/``height_shift`` as fractions of the side,
``shear`` as an angle in **degrees** (Keras' ``shear_range=0.15`` is 0.15 degrees, a
quirk the paper configs keep), ``zoom`` z draws independent x/y scales in [1-z, 1+z].
Borders are filled by edge replication (Keras' default ``fill_mode='nearest'``).
Inputs/outputs are float ``(N, C, H, W)`` in 0..255.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F

from ekspresi.errors import ConfigError


@dataclass(frozen=True)
class AugmentConfig:
    rotation: float = 0.0        # degrees
    width_shift: float = 0.0     # fraction of width
    height_shift: float = 0.0    # fraction of height
    shear: float = 0.0           # degrees (Keras semantics)
    zoom: float = 0.0            # scale in [1 - zoom, 1 + zoom]
    hflip: bool = False
    brightness: float = 0.0      # add uniform(-b, b) * 255
    contrast: float = 0.0        # scale around the image mean by uniform(1 - c, 1 + c)
    erasing: float = 0.0         # probability of erasing one random rectangle per image
    erasing_area: tuple[float, float] = (0.02, 0.2)  # erased fraction of the image

    #: Read by pydantic when the training config validates its ``augment:`` section: an
    #: unknown key there is an error, not a silent default.
    __pydantic_config__ = {"extra": "forbid"}

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "erasing_area":
                lo, hi = v
                if not 0 < lo <= hi <= 1:
                    raise ConfigError(f"augment.erasing_area must be 0 < lo <= hi <= 1, got {v}")
            elif f.name != "hflip" and (not isinstance(v, (int, float)) or v < 0):
                raise ConfigError(f"augment.{f.name} must be a number >= 0, got {v!r}")
        for name in ("zoom", "contrast", "erasing", "width_shift", "height_shift"):
            if getattr(self, name) > 1:
                raise ConfigError(f"augment.{name} must be <= 1, got {getattr(self, name)}")

    @property
    def geometric(self) -> bool:
        return any((self.rotation, self.width_shift, self.height_shift, self.shear, self.zoom))

    @property
    def enabled(self) -> bool:
        return self.geometric or self.hflip or any(
            (self.brightness, self.contrast, self.erasing))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["erasing_area"] = list(self.erasing_area)
        return d


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g) * (hi - lo) + lo


def affine_matrices(n: int, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """(n, 2, 3) matrices mapping output to input coordinates in ``affine_grid``'s [-1, 1]
    space: flip, rotation, shear, zoom and shift drawn per image."""
    rot = torch.deg2rad(_uniform(n, -cfg.rotation, cfg.rotation, g))
    shear = torch.deg2rad(_uniform(n, -cfg.shear, cfg.shear, g))
    zx = _uniform(n, 1 - cfg.zoom, 1 + cfg.zoom, g)
    zy = _uniform(n, 1 - cfg.zoom, 1 + cfg.zoom, g)
    # A shift of s * side is 2 * s in normalised coordinates.
    tx = _uniform(n, -cfg.width_shift, cfg.width_shift, g) * 2
    ty = _uniform(n, -cfg.height_shift, cfg.height_shift, g) * 2
    flip = torch.ones(n)
    if cfg.hflip:
        flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    c, s = torch.cos(rot), torch.sin(rot)
    # input = R @ Shear @ Zoom @ Flip @ output + t   (Keras composes the same factors)
    a = c * zx * flip
    b = (-s + c * torch.tan(shear)) * zy
    d = s * zx * flip
    e = (c + s * torch.tan(shear)) * zy
    theta = torch.stack([torch.stack([a, b, tx], 1), torch.stack([d, e, ty], 1)], 1)
    return theta


class BatchAugment:
    """Callable ``(x, generator) -> augmented x`` for float batches in 0..255.

    Random parameters are always drawn on the CPU from the caller's generator and then moved
    to ``x``'s device, so a run draws the same numbers on a CPU and on a GPU (and resumes
    across them); the pixel work runs where ``x`` lives. ``part=(offset, total)`` draws the
    parameters of a whole global batch of ``total`` images and applies those of rows
    ``offset..offset+len(x)``: data-parallel ranks each augment only their slice yet stay in
    step with one another and with a single-process run.
    """

    def __init__(self, cfg: AugmentConfig):
        self.cfg = cfg

    def __call__(self, x: torch.Tensor, g: torch.Generator,
                 part: tuple[int, int] | None = None) -> torch.Tensor:
        cfg, m = self.cfg, x.shape[0]
        offset, n = part if part is not None else (0, m)
        if not cfg.enabled or m == 0:
            return x
        rows = slice(offset, offset + m)

        def mine(t: torch.Tensor) -> torch.Tensor:
            return t[rows].to(x.device, non_blocking=True)

        if cfg.geometric:
            theta = mine(affine_matrices(n, cfg, g)).to(x.dtype)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                              align_corners=False)
        elif cfg.hflip:
            flip = mine(torch.rand(n, generator=g) < 0.5)
            x = torch.where(flip.view(m, 1, 1, 1), x.flip(-1), x)
        if cfg.contrast or cfg.brightness:
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            k = mine(_uniform(n, 1 - cfg.contrast, 1 + cfg.contrast, g)).view(m, 1, 1, 1)
            b = mine(_uniform(n, -cfg.brightness, cfg.brightness, g)).view(m, 1, 1, 1) * 255
            x = ((x - mean) * k.to(x.dtype) + mean + b.to(x.dtype)).clamp_(0, 255)
        if cfg.erasing:
            x = self._erase(x, g, rows, n)
        return x

    def _erase(self, x: torch.Tensor, g: torch.Generator, rows: slice, n: int) -> torch.Tensor:
        """Random erasing (Zhong et al.): one rectangle of random area/aspect per chosen
        image, filled with uniform noise; built as a mask so the batch stays one op."""
        m, c, h, w = x.shape
        lo, hi = self.cfg.erasing_area
        area = _uniform(n, lo, hi, g) * h * w
        aspect = torch.exp(_uniform(n, math.log(0.3), math.log(1 / 0.3), g))
        eh = torch.sqrt(area * aspect).clamp(1, h)
        ew = torch.sqrt(area / aspect).clamp(1, w)
        y0 = torch.rand(n, generator=g) * (h - eh)
        x0 = torch.rand(n, generator=g) * (w - ew)
        on = torch.rand(n, generator=g) < self.cfg.erasing
        dev = x.device
        if dev.type == "cpu":
            noise = (torch.rand((n, c, h, w), generator=g, dtype=torch.float32) * 255)[rows]
        else:  # draw the (large) noise on the device, from a seed the CPU generator gives
            seed = int(torch.randint(0, 2**62, (1,), generator=g))
            dg = torch.Generator(device=dev).manual_seed(seed)
            noise = torch.rand((n, c, h, w), generator=dg, device=dev)[rows] * 255
        y0, x0, eh, ew, on = (t[rows].to(dev) for t in (y0, x0, eh, ew, on))
        ys = torch.arange(h, device=dev).view(1, h, 1)
        xs = torch.arange(w, device=dev).view(1, 1, w)
        mask = ((ys >= y0.view(m, 1, 1)) & (ys < (y0 + eh).view(m, 1, 1))
                & (xs >= x0.view(m, 1, 1)) & (xs < (x0 + ew).view(m, 1, 1))
                & on.view(m, 1, 1)).unsqueeze(1)
        return torch.where(mask, noise.to(x.dtype), x)
