"""`ekspresi compare`: one table across training runs (and cross-dataset evaluations)."""

from __future__ import annotations

import argparse

from ekspresi.cli.options import add_output


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare", help="compare training runs",
        description="Compare training runs in one table (training time, train/val/test loss "
                    "and accuracy, macro precision/recall/F1) and, where `ekspresi evaluate` "
                    "outputs exist (RUN/eval/ or folders given here), a model x test-set "
                    "accuracy matrix. Prints Markdown; --out also writes CSV, HTML and a "
                    "bar chart.")
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="run directories and/or `ekspresi evaluate` output folders")
    add_output(p, metavar="DIR",
               help="write comparison.{md,csv,html,png,svg} (+ cross_dataset.csv) here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ekspresi.evaluate.compare import build_comparison, write_comparison

    table, rows, cross = build_comparison(args.runs)
    if table.rows:
        print(table.to_markdown())
    if cross is not None:
        print("Accuracy per test set (cross-dataset):\n")
        print(cross.to_markdown())
    if args.out:
        files = write_comparison(Path(args.out), table, rows, cross)
        print("wrote " + ", ".join(str(p) for p in files.values()))
    return 0
