"""`ekspresi sweep CONFIG... [--runs DIR] [--set key=value]`: experiments one after another."""

from __future__ import annotations

import argparse

from ekspresi.cli.options import add_training


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="run a set of experiments",
        description="Run each config (and each combination of a config's `grid:`) in turn, "
                    "skipping finished runs and resuming interrupted ones, then print the "
                    "comparison table.")
    p.add_argument("configs", nargs="+", help="config files (YAML or TOML)")
    p.add_argument("--runs", default="runs", help="parent folder of the run directories")
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    add_training(p, each=" in every run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ekspresi.train.sweep import comparison_text, plan, run_sweep, status

    if args.dry_run:
        for name, _ in plan(args.configs, args.overrides):
            print(f"{name}\t{status(Path(args.runs) / name)}")
        return 0
    dirs = run_sweep(args.configs, args.runs, args.overrides, max_minutes=args.max_minutes,
                     quiet=args.quiet, threads=args.threads)
    print(comparison_text(dirs))
    return 0
