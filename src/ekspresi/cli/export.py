"""`ekspresi export RUN [--int8] [-o DIR]`: write a shippable model bundle from a run."""

from __future__ import annotations

import argparse
import json

from ekspresi.cli.options import add_data, add_output


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="write an ONNX model bundle (optionally int8) from a training run",
        description="RUN is a training run directory (with bundle/, final_metrics.json, "
                    "predictions_test.npz), a bundle directory or a bundled model's name. "
                    "--int8 quantises the graph and measures the accuracy drop on the "
                    "run's test images (or --data).")
    p.add_argument("run", metavar="RUN")
    add_output(p, metavar="DIR",
               help="output bundle folder (default RUN/export or RUN/export-int8)")
    p.add_argument("--int8", action="store_true", help="static int8 quantisation (QDQ)")
    add_data(p, help="dataset to measure int8 accuracy on (its test split if it has one) "
                     "and to calibrate on (its train split)")
    p.add_argument("--calib-data", metavar="SPEC",
                   help="dataset whose train split calibrates the int8 activations "
                        "(default: --data, else the run's first training data source)")
    p.add_argument("--name", help="bundle name (default: the source's, + '-int8')")
    p.add_argument("--evaluation", metavar="EVAL_DIR",
                   help="an `ekspresi evaluate --out` folder: its test-set metrics and plots "
                        "go into the bundle (shown on the About page's model card)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ekspresi.export.package import export

    bundle = export(args.run, args.out, int8=args.int8, data=args.data,
                    calib_data=args.calib_data, name=args.name,
                    evaluation=args.evaluation)
    print(f"wrote {bundle.path} ({bundle.metadata['onnx']['bytes']:,} bytes, "
          f"sha256 {bundle.sha256[:12]}…)")
    q = bundle.metadata.get("quantization")
    if q:
        print("int8: " + json.dumps({k: q[k] for k in ("fp32_accuracy", "int8_accuracy",
                                                         "accuracy_drop",
                                                         "prediction_agreement")})
              + f" on {q['evaluation']['faces']} faces of {q['evaluation']['data']}")
    return 0
