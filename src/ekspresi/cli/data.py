"""``ekspresi data inspect|preview``. Imports of the data layer happen inside the handlers so
``ekspresi --help`` stays instant."""

from __future__ import annotations

import argparse
import json
import sys

from ekspresi.cli.options import DATA_SPEC_HELP, add_format, add_output


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="inspect and preview datasets",
                              description="Inspect and preview datasets.")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--skip-bad", action="store_true",
                        help="skip bad inputs (corrupt files, unknown class folders, bad CSV "
                             "rows) and list them instead of stopping at the first")
    common.add_argument("--classes", default=None,
                        help="keep only these classes: a comma list or a subset name "
                             "(fer7, ferplus8, three, ckplus6)")
    common.add_argument("--no-cache", action="store_true",
                        help="decode the files again instead of using the dataset cache")

    pi = sub.add_parser("inspect", parents=[common],
                        help="per-split, per-class counts, sizes, duplicates, bad files")
    pi.add_argument("paths", nargs="+", metavar="PATH", help=DATA_SPEC_HELP)
    add_format(pi, ("table", "json"))
    pi.set_defaults(func=_inspect)

    pp = sub.add_parser("preview", parents=[common], help="write a labelled grid per class")
    pp.add_argument("paths", nargs="+", metavar="PATH", help=DATA_SPEC_HELP)
    add_output(pp, metavar="IMAGE", required=True, help="image file to write (.png/.jpg)")
    pp.add_argument("--per-class", type=int, default=8, help="samples per class (default 8)")
    pp.add_argument("--size", type=int, default=64, help="thumbnail side in pixels")
    pp.add_argument("--seed", type=int, default=0, help="which random samples")
    pp.set_defaults(func=_preview)

    pk = sub.add_parser(
        "pack", help="pack datasets into one checksummed file (pack:FILE)",
        description="Write the decoded faces, labels, splits and provenance of one or more "
                    "datasets into one versioned, checksummed file, usable as pack:FILE "
                    "wherever a dataset is (train, evaluate, data inspect). Copy it to a "
                    "cloud GPU instead of thousands of image files.")
    pk.add_argument("paths", nargs="+", metavar="PATH", help=DATA_SPEC_HELP)
    add_output(pk, metavar="FILE", required=True, help="pack file to write (.ekpack)")
    pk.add_argument("--codec", choices=("auto", "raw"), default="auto",
                    help="auto: store each image as its source file's bytes when they decode "
                         "to exactly the reader's pixels (smallest), else raw pixels; raw: "
                         "always raw pixels (independent of the JPEG decoder)")
    pk.add_argument("--level", type=int, default=6, choices=range(0, 10), metavar="0-9",
                    help="xz compression level (default 6)")
    pk.add_argument("--skip-bad", action="store_true",
                    help="skip bad inputs (recorded in the pack's load report)")
    pk.set_defaults(func=_pack)

    p.set_defaults(func=lambda _a: (p.print_help(), 0)[1])


def _load_each(args: argparse.Namespace) -> dict:
    from ekspresi.data.loading import load
    return {spec: load(spec, classes=args.classes, skip_bad=args.skip_bad,
                       cache=not args.no_cache) for spec in args.paths}


def _inspect(args: argparse.Namespace) -> int:
    from ekspresi.data.inspect import format_text, inspect_many
    summary = inspect_many(_load_each(args))
    if args.format == "json":
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_text(summary))
    return 0


def _preview(args: argparse.Namespace) -> int:
    from ekspresi.data.preview import write_preview
    from ekspresi.data.records import SampleSet
    ss = SampleSet.concat(list(_load_each(args).values()))
    out = write_preview(ss, args.out, per_class=args.per_class, size=args.size,
                        seed=args.seed)
    print(f"wrote {out} ({len(ss.present_classes())} classes)")
    return 0


def _pack(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ekspresi.data.pack import SUFFIX, describe
    from ekspresi.data.pack_writer import write_pack

    out = Path(args.out)
    if out.suffix.lower() != SUFFIX:
        out = out.with_name(out.name + SUFFIX)
    header = write_pack(args.paths, out, codec=args.codec, skip_bad=args.skip_bad,
                        preset=args.level)
    print(describe(header, out))
    return 0
