"""`ekspresi models [--format json]`: the model registry with input sizes and parameter counts."""

from __future__ import annotations

import argparse

from ekspresi.cli.options import add_format


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list the model registry",
                              description="List every registry model: input size and "
                                          "channels, trainable parameters (7 classes), "
                                          "ImageNet weight file, the paper it reproduces "
                                          "and builder options. Builds no network.")
    add_format(p, ("table", "json"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from ekspresi.models.registry import list_models  # data only: no torch, no network

    rows = list_models()
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<20}{'input':>8}{'ch':>4}{'trainable params':>18}  imagenet weights / options")
    for r in rows:
        extra = r["imagenet_weights"] or "-"
        if r["torchvision_weights"]:
            extra += f" (torchvision {r['torchvision_weights']})"
        print(f"{r['name']:<20}{r['input_size']:>5} px{r['channels']:>4}"
              f"{r['trainable_params']:>18,}  {extra}; options: {', '.join(r['options']) or '-'}")
        print(f"{'':<20}{r['summary']}")
        if r["paper"]:
            print(f"{'':<20}reproduces {r['paper']}")
    return 0
