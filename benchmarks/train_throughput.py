"""Training throughput per model: images/s of a full train step (augmentation, forward,
backward, optimiser) at each model's input size, on random uint8 faces held on the device,
exactly as the training loop does it (same Placement: device, precision, channels-last; the
step that ekspresi.train.tuning times).

    python benchmarks/train_throughput.py [--device auto|cpu|cuda] [--precision auto]
        [--threads 2] [--batch 64] [--steps 10] [--models fer-resnet,fer-vgg]
        [--set fer-resnet:widths=[64,128,256,512]] [--compile] [--out FILE.json]

``--grid`` measures every CPU setting for each model (float32 and, where the CPU has native
bfloat16, bf16 autocast; channels-last off and on) and marks the fastest: the table in
docs/training-cpu.md. ``--models mobilenetv2@96,fer-vgg`` picks input sizes per model.
Records the CPU (model, kind, AVX-512/bf16/AMX features) from ``ekspresi.machine``.

``--preset gpu`` measures the nets the GPU campaign trains: fer-vgg (the shipped model),
fer-resnet at ResNet-18 size (widths 64-512, depths 2-2-2-2, 48 px) and a wide fer-vgg.
Prints one JSON object: {"device", "precision", "batch", "results": [{"model",
"input_size", "images_per_s", "ms_per_image", ...}]}. Numbers from a shared CPU are lower
bounds.
"""

from __future__ import annotations

import argparse
import json
import platform

import torch
import yaml
from machine import machine_info

from ekspresi.data.augment import AugmentConfig
from ekspresi.models import build_model, count_params
from ekspresi.models.registry import model_names
from ekspresi.train.devices import native_bf16, placement
from ekspresi.train.tuning import time_train_steps

AUG = AugmentConfig(rotation=15, width_shift=0.15, height_shift=0.15, shear=0.15, zoom=0.15,
                    hflip=True)
GPU_PRESET = [("fer-vgg", {}),
              ("fer-resnet", {"widths": [64, 128, 256, 512], "depths": [2, 2, 2, 2],
                              "stem_stride": 1}),
              ("fer-vgg", {"widths": [64, 128, 256, 512], "convs": 3})]


def measure(name: str, size: int | None, batch: int, steps: int, place, options: dict,
            compile_model: bool) -> dict:
    """One model under one setting: ``ekspresi.train.tuning.time_train_steps`` (the step the
    trainer's own CPU tuning times), after a torch.compile when asked."""
    model = build_model(name, 7, input_size=size, **options)
    size = model.input_spec.size
    net = torch.compile(model) if compile_model else model
    ips = time_train_steps(net, place, size, batch, steps, augment=AUG,
                           warmup=3 if compile_model else 2)
    return {"model": name, "options": options, "input_size": size,
            "trainable_params": count_params(model), "compile": compile_model,
            "images_per_s": round(ips, 1), "ms_per_image": round(1000 / ips, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--models", default=None, help="comma list (default: every model)")
    ap.add_argument("--preset", choices=("gpu",), help="the GPU campaign's nets")
    ap.add_argument("--size", type=int, help="override every model's input size")
    ap.add_argument("--set", action="append", default=[], metavar="MODEL:KEY=VALUE",
                    help="builder option for one model, e.g. fer-resnet:widths=[24,48,96,192]")
    ap.add_argument("--compile", action="store_true", help="torch.compile the models")
    ap.add_argument("--cpu-bf16", action="store_true", help="bf16 autocast on the CPU")
    ap.add_argument("--channels-last", action="store_true", help="channels-last tensors")
    ap.add_argument("--grid", action="store_true",
                    help="CPU: every precision x memory format per model; marks the fastest")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.grid:
        return grid(args)
    place = placement(args.device, args.precision, cpu_bf16=args.cpu_bf16,
                      channels_last=args.channels_last or None)
    opts: dict[str, dict] = {}
    for s in args.set:
        model, kv = s.split(":", 1)
        k, v = kv.split("=", 1)
        opts.setdefault(model, {})[k] = yaml.safe_load(v)
    if args.preset == "gpu":
        todo = GPU_PRESET
    else:
        names = args.models.split(",") if args.models else model_names()
        todo = [(n, opts.get(n, {})) for n in names]
    results = []
    for name, options in todo:
        name, size = _name_size(name, args.size)
        results.append(measure(name, size, args.batch, args.steps, place, options,
                               args.compile))
        print(json.dumps(results[-1]), flush=True)
    doc = {**place.describe(), "threads": args.threads, "batch": args.batch,
           "steps": args.steps, "torch": torch.__version__,
           "processor": platform.processor() or platform.machine(),
           "machine": machine_info(), "results": results}
    print(json.dumps(doc, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=2)


def _name_size(spec: str, default: int | None) -> tuple[str, int | None]:
    """``mobilenetv2@96`` -> (``mobilenetv2``, 96); no ``@``: the --size default."""
    name, _, size = spec.partition("@")
    return name, int(size) if size else default


def grid(args: argparse.Namespace) -> None:
    """Every CPU setting per model, measured back to back in one process; the fastest
    setting per model is marked ``best`` (ratios are comparable: same run, same load)."""
    precisions = ["fp32", "bf16"] if native_bf16() else ["fp32"]
    results = []
    for spec in (args.models or "fer-vgg").split(","):
        name, size = _name_size(spec, args.size)
        rows = []
        for prec in precisions:
            for cl in (False, True):
                place = placement("cpu", prec, cpu_bf16=prec == "bf16", channels_last=cl)
                r = measure(name, size, args.batch, args.steps, place, {}, args.compile)
                r.update(precision=prec, channels_last=cl)
                rows.append(r)
                print(json.dumps(r), flush=True)
        fastest = max(rows, key=lambda r: r["images_per_s"])
        for r in rows:
            r["best"] = r is fastest
            r["vs_fp32"] = round(r["images_per_s"] / rows[0]["images_per_s"], 2)
        results += rows
    doc = {"device": "cpu", "threads": args.threads, "batch": args.batch, "steps": args.steps,
           "torch": torch.__version__, "native_bf16": native_bf16(),
           "machine": machine_info(), "results": results}
    print(json.dumps(doc, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=2)


if __name__ == "__main__":
    main()
