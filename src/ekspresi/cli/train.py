"""`ekspresi train CONFIG [--set key=value ...] [--out RUN_DIR] [--resume RUN_DIR] ...`"""

from __future__ import annotations

import argparse
from pathlib import Path

from ekspresi.cli.options import add_output, add_training


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model from a config",
        description="Train a model from a YAML/TOML config. Writes a run directory with the "
                    "resolved config, per-epoch metrics, checkpoints, final metrics, test "
                    "predictions and an ONNX bundle of the selected model.")
    p.add_argument("config", nargs="?", help="config file (YAML or TOML); optional with --resume")
    add_output(p, metavar="RUN_DIR", help="run directory (default: runs/<config name>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    add_training(p)
    p.add_argument("--device", help="auto (CUDA when usable, the default), cpu, cuda or cuda:N; "
                   "overrides train.device. Several GPUs/machines: torchrun --nproc_per_node "
                   "N -m ekspresi train CONFIG")
    p.add_argument("--weights", metavar="PATH", help="ImageNet weight file for the model "
                   "(torchvision's, e.g. resnet50-0676ba61.pth); same as --set model.weights=PATH")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ekspresi.errors import ConfigError
    from ekspresi.runs import CONFIG_NAME, FINAL_NAME
    from ekspresi.train.config import apply_overrides, parse_config, read_config_file
    from ekspresi.train.loop import run_training

    if args.weights:
        args.overrides.append(f"model.weights={args.weights}")
    if args.resume:
        run_dir = Path(args.resume)
        stored = run_dir / CONFIG_NAME
        if args.overrides:  # e.g. more epochs: rewrite the stored config, validated
            if not stored.is_file():
                raise ConfigError(f"{run_dir}: no {CONFIG_NAME}; not a run directory")
            from ekspresi.train.config import dump_yaml

            cfg = parse_config(apply_overrides(read_config_file(stored), args.overrides))
            stored.write_text(dump_yaml(cfg))
        out = run_training(None, run_dir, resume=True, max_minutes=args.max_minutes,
                           quiet=args.quiet, threads=args.threads, device=args.device)
    else:
        if not args.config:
            raise ConfigError("give a CONFIG file (or --resume RUN_DIR)")
        data = apply_overrides(read_config_file(args.config), args.overrides)
        cfg = parse_config(data)
        run_dir = Path(args.out) if args.out else Path("runs") / cfg.name
        out = run_training(cfg, run_dir, max_minutes=args.max_minutes, quiet=args.quiet,
                           threads=args.threads, device=args.device)
    import os

    from ekspresi.metrics_schema import load_metrics

    if int(os.environ.get("RANK", "0") or 0) != 0:
        return 0  # torchrun: rank 0 reports

    final = load_metrics(out / FINAL_NAME)
    print(f"{out}: val acc {final.split('val').accuracy:.4f}, "
          f"test acc {final.test.accuracy:.4f} ({final.stop_reason}, {final.epochs_run} "
          f"epochs, {final.train_time_seconds:.0f} s)")
    return 0
