"""`ekspresi campaign FILE [--out DIR] [--detach]`: a prioritised list of runs;
`ekspresi campaign status DIR` and `ekspresi campaign stop DIR` ask and stop a running one."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from ekspresi.cli.options import add_format, add_output, add_overrides

VERBS = ("status", "stop")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "campaign", help="run a prioritised list of trainings (also: campaign status|stop DIR)",
        description="Run the configs of a campaign file in order on one machine (a GPU, or a "
                    "CPU for days in the background with --detach), each with its own time "
                    "cap, one log line per epoch and a checkpoint every few minutes; then "
                    "pack every finished run (bundle, metrics, logs, fp16 weights, no "
                    "optimiser state) into at most --max-archives .tar.xz files of at most "
                    "--archive-mb MiB. Rerunning continues where it stopped. "
                    "`ekspresi campaign status DIR` prints each run's state, epoch, best "
                    "validation accuracy, images/s and ETA; `ekspresi campaign stop DIR` "
                    "stops it at the next training step, with a checkpoint.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE|status|stop",
                   help="campaign file (configs/campaign/*.yaml), or `status` / `stop`")
    p.add_argument("folder", nargs="?", metavar="DIR",
                   help="with status/stop: the campaign's state folder (its --out)")
    add_output(p, metavar="DIR",
               help="state folder for the runs and campaign.json (default "
                    "~/.cache/ekspresi/campaigns/NAME: outside the checkout, so the next "
                    "session on this machine resumes it)")
    p.add_argument("--budget-minutes", type=float,
                   help="wall-clock budget for all runs together (default: none)")
    p.add_argument("--detach", action="store_true",
                   help="run in the background (own process group; log in DIR/campaign.log)")
    p.add_argument("--nice", type=int, metavar="N",
                   help="with --detach: CPU priority against other work on the machine, e.g. "
                        "-10 so tests beside it do not halve its speed (Linux autogroup "
                        "nice; below 0 needs root)")
    add_overrides(p, each=" in every run")
    p.add_argument("--only", help="comma list of run names to run (in file order)")
    p.add_argument("--archive-dir", help="where the result archives go (default OUT/archives)")
    p.add_argument("--archive-mb", type=float, default=16.0, help="MiB per archive (16)")
    p.add_argument("--max-archives", type=int, default=8, help="most archives (8)")
    p.add_argument("--reserve-minutes", type=float, default=0.5,
                   help="kept free at the end for packing (0.5)")
    add_format(p, ("table", "json"))
    p.add_argument("--wait", type=float, default=120.0, metavar="SECONDS",
                   help="stop: wait this long for the campaign to exit (120; 0 = do not wait)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ekspresi.errors import ConfigError

    if args.file in VERBS:
        if not args.folder:
            raise ConfigError(f"ekspresi campaign {args.file} DIR: give the campaign's folder")
        return _status(Path(args.folder), args.format == "json") if args.file == "status" else \
            _stop(Path(args.folder), args.wait)
    if args.folder:
        raise ConfigError(f"unexpected argument {args.folder!r} (the state folder is --out)")
    from ekspresi.train.campaign import read_campaign
    from ekspresi.train.campaign_control import default_out

    out = Path(args.out) if args.out else default_out(read_campaign(args.file).name)
    if args.detach:
        return _detach(args, out)
    from ekspresi.train.campaign import run_campaign

    summary = run_campaign(args.file, out, budget_minutes=args.budget_minutes,
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
    budget = summary["budget_minutes"]
    print(f"{summary['elapsed_minutes']:.1f} minutes"
          + (f" of {budget}" if budget is not None else "")
          + (" (stopped on request; the same command continues it)"
             if summary.get("stopped") else ""))
    return 0 if all(r["status"] != "failed" for r in summary["runs"]) else 1


def _detach(args: argparse.Namespace, out: Path) -> int:
    """Check everything a foreground start would check, then start it in the background."""
    from ekspresi.train.campaign import check_campaign
    from ekspresi.train.campaign_control import LOG_NAME, detach

    check_campaign(args.file, out, overrides=args.overrides,
                   only=args.only.split(",") if args.only else None)
    argv = ["campaign", str(Path(args.file).resolve()), "--out", str(out.resolve())]
    if args.budget_minutes is not None:
        argv += ["--budget-minutes", str(args.budget_minutes)]
    for s in args.overrides:
        argv += ["--set", s]
    for opt in ("only", "archive_dir"):
        if getattr(args, opt):
            argv += [f"--{opt.replace('_', '-')}", str(getattr(args, opt))]
    argv += ["--archive-mb", str(args.archive_mb), "--max-archives", str(args.max_archives),
             "--reserve-minutes", str(args.reserve_minutes)]
    pid = detach(argv, out, nice=args.nice)
    print(f"campaign running in the background: pid {pid}, log {out / LOG_NAME}\n"
          f"  ekspresi campaign status {out}\n  ekspresi campaign stop {out}")
    return 0


def _status(out: Path, as_json: bool) -> int:
    from ekspresi.train.campaign_control import campaign_status, format_status

    st = campaign_status(out)
    if as_json:
        st = {**st, "runs": [asdict(r) for r in st["runs"]]}
        print(json.dumps(st, indent=2))
    else:
        print(format_status(st))
    return 0


def _stop(out: Path, wait: float) -> int:
    from ekspresi.train.campaign_control import request_stop, running_pid

    pid = request_stop(out, wait=wait)
    if pid is None:
        print(f"{out}: no campaign is running")
        return 0
    if running_pid(out) is None:
        print(f"stopped the campaign (pid {pid}); its runs resume with the same command")
        return 0
    if wait > 0:
        print(f"asked the campaign (pid {pid}) to stop; it is still finishing its step "
              f"(evaluation or export?) after {wait:.0f} s", file=sys.stderr)
        return 1
    print(f"asked the campaign (pid {pid}) to stop at its next step")
    return 0
