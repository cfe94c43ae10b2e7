"""`ekspresi campaign FILE --budget-minutes M --out DIR`: a prioritised list of runs."""

from __future__ import annotations

import argparse

from ekspresi.cli.options import add_output, add_overrides


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "campaign", help="run a prioritised list of trainings in a time budget",
        description="Run the configs of a campaign file in order on one machine (typically "
                    "one GPU), each with its own time cap inside --budget-minutes, one log "
                    "line per epoch; then pack every finished run (bundle, metrics, logs, "
                    "fp16 weights, no optimiser state) into at most --max-archives .tar.xz "
                    "files of at most --archive-mb MiB. Rerunning continues where it stopped.")
    p.add_argument("file", help="campaign file (configs/campaign/*.yaml)")
    p.add_argument("--budget-minutes", type=float, required=True,
                   help="wall-clock budget for all runs together")
    add_output(p, metavar="DIR", required=True, help="folder for the runs and campaign.json")
    add_overrides(p, each=" in every run")
    p.add_argument("--only", help="comma list of run names to run (in file order)")
    p.add_argument("--archive-dir", help="where the result archives go (default OUT/archives)")
    p.add_argument("--archive-mb", type=float, default=16.0, help="MiB per archive (16)")
    p.add_argument("--max-archives", type=int, default=8, help="most archives (8)")
    p.add_argument("--reserve-minutes", type=float, default=0.5,
                   help="kept free at the end for packing (0.5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ekspresi.train.campaign import run_campaign

    summary = run_campaign(args.file, args.out, budget_minutes=args.budget_minutes,
                           overrides=args.overrides,
                           only=args.only.split(",") if args.only else None,
                           archive_dir=args.archive_dir, archive_mb=args.archive_mb,
                           max_archives=args.max_archives, reserve_minutes=args.reserve_minutes)
    for r in summary["runs"]:
        m = r.get("metrics") or {}
        score = (f"val {m['splits']['val']['accuracy']:.4f} test "
                 f"{m['splits']['test']['accuracy']:.4f}, {m['epochs_run']} epochs"
                 if m else r.get("note") or r.get("error", ""))
        print(f"{r['name']:<32} {r['status']:<8} {score}")
    for a in summary["archives"]:
        print(f"{a['file']}: {a['bytes'] / 2**20:.1f} MiB ({', '.join(a['runs']) or 'index'})")
    print(f"{summary['elapsed_minutes']:.1f} of {summary['budget_minutes']} minutes")
    return 0 if all(r["status"] != "failed" for r in summary["runs"]) else 1
