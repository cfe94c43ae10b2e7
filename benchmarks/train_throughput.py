"""Training throughput per model: images/s of a full train step (augmentation, forward,
backward, optimiser) at each model's input size, on random uint8 faces in memory.

    python benchmarks/train_throughput.py [--threads 2] [--batch 64] [--steps 10]
        [--models fer-resnet,fer-vgg] [--set fer-resnet:widths=[24,48,96,192]] [--out FILE.json]

Prints one JSON object: {"threads", "batch", "results": [{"model", "input_size",
"images_per_s", "ms_per_image", "channels_last", "bf16", ...}]}. Run it on an idle machine;
numbers from a shared CPU are lower bounds.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import yaml

from ekspresi.data.augment import AugmentConfig, BatchAugment
from ekspresi.models import build_model, count_params
from ekspresi.models.registry import model_names

AUG = AugmentConfig(rotation=15, width_shift=0.15, height_shift=0.15, shear=0.15, zoom=0.15,
                    hflip=True)


def measure(name: str, size: int | None, batch: int, steps: int, channels_last: bool,
            bf16: bool, options: dict) -> dict:
    model = build_model(name, 7, input_size=size, **options)
    size = model.input_spec.size
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=fmt).train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    aug, g = BatchAugment(AUG), torch.Generator().manual_seed(0)
    data = torch.randint(0, 256, (batch * 4, size, size), dtype=torch.uint8)
    y = torch.randint(0, 7, (batch,))

    def step(i: int) -> None:
        xb = data[(i % 4) * batch:(i % 4 + 1) * batch].unsqueeze(1).float()
        xb = aug(xb, g).contiguous(memory_format=fmt)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(xb)
        loss = torch.nn.functional.cross_entropy(out.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for i in range(2):
        step(i)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    dt = time.perf_counter() - t0
    ips = batch * steps / dt
    return {"model": name, "options": options, "input_size": size,
            "trainable_params": count_params(model), "channels_last": channels_last,
            "bf16": bf16, "images_per_s": round(ips, 1), "ms_per_image": round(1000 / ips, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--models", default=",".join(model_names()))
    ap.add_argument("--size", type=int, help="override every model's input size")
    ap.add_argument("--set", action="append", default=[], metavar="MODEL:KEY=VALUE",
                    help="builder option for one model, e.g. fer-resnet:widths=[24,48,96,192]")
    ap.add_argument("--variants", action="store_true",
                    help="also measure channels_last and bf16 autocast")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    opts: dict[str, dict] = {}
    for s in args.set:
        model, kv = s.split(":", 1)
        k, v = kv.split("=", 1)
        opts.setdefault(model, {})[k] = yaml.safe_load(v)
    variants = [(False, False)] + ([(True, False), (False, True), (True, True)] if args.variants else [])
    results = []
    for name in args.models.split(","):
        for cl, bf in variants:
            results.append(measure(name, args.size, args.batch, args.steps, cl, bf,
                                   opts.get(name, {})))
            print(json.dumps(results[-1]), flush=True)
    doc = {"threads": args.threads, "batch": args.batch, "steps": args.steps,
           "torch": torch.__version__, "results": results}
    print(json.dumps(doc, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=2)


if __name__ == "__main__":
    main()
