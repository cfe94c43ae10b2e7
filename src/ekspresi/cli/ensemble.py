"""`ekspresi ensemble MEMBER... -o DIR [--tta flip]`: one bundle averaging several models."""

from __future__ import annotations

import argparse

from ekspresi.cli.options import add_output


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ensemble", help="combine model bundles (and flip TTA) into one ONNX bundle",
        description="MEMBER is a model bundle, a training run or a bundled model's name. "
                    "The written bundle averages the members' softmax probabilities "
                    "(optionally also over the mirrored face) inside one ONNX graph, so "
                    "every command and the web app use it "
                    "like any model. Evaluate it, then fold the evaluation in with "
                    "`ekspresi export DIR -o OUT --evaluation EVAL_DIR`.")
    p.add_argument("members", nargs="+", metavar="MEMBER")
    add_output(p, metavar="DIR", required=True, help="output bundle folder")
    p.add_argument("--tta", choices=("none", "flip"), default="none",
                   help="also average each member over the horizontally mirrored face")
    p.add_argument("--weights", type=float, nargs="+", metavar="W",
                   help="one positive weight per member (default: equal)")
    p.add_argument("--name", help="bundle name (default: the members' names joined by +)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ekspresi.export.ensemble import build_ensemble

    bundle = build_ensemble(args.members, args.out, tta=args.tta, weights=args.weights,
                            name=args.name)
    print(f"wrote {bundle.path}: {len(args.members)} member(s), tta {args.tta} "
          f"({bundle.metadata['onnx']['bytes']:,} bytes, sha256 {bundle.sha256[:12]}…)")
    return 0
