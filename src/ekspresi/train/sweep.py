"""Running a set of experiments one after another (``ekspresi sweep``).

Each config file (and each combination of its ``grid:``) becomes one run directory under
``runs_root``. A run whose ``final_metrics.json`` says it completed is skipped, one with a
checkpoint is resumed, so re-running the same sweep after an interruption finishes what is
left. The sweep ends with the comparison table of :mod:`ekspresi.evaluate.compare` (or a
plain table of final metrics when the evaluation layer is not installed).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ekspresi.errors import BadInputError
from ekspresi.metrics_schema import load_metrics
from ekspresi.runs import FINAL_NAME, last_checkpoint
from ekspresi.train.config import apply_overrides, expand_grid, parse_config, read_config_file

log = logging.getLogger("ekspresi.train")


def plan(configs: list[str], overrides: list[str] | None = None) -> list[tuple[str, dict]]:
    """(run name, validated config dict) for every config file and grid combination."""
    runs = []
    for path in configs:
        raw = apply_overrides(read_config_file(path), overrides)
        for name, data in expand_grid(raw):
            parse_config(data)  # validate every run before the first starts
            runs.append((name, data))
    names = [n for n, _ in runs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        from ekspresi.errors import ConfigError

        raise ConfigError(f"sweep: several runs would be named {dup}; give the configs "
                          "distinct `name:` values")
    return runs


def status(run_dir: Path) -> str:
    final = run_dir / FINAL_NAME
    if final.is_file():
        try:
            if load_metrics(final).stop_reason != "time_budget":
                return "done"
        except BadInputError:  # unreadable: treated as unfinished
            pass
    if last_checkpoint(run_dir).is_file():
        return "resume"
    return "new"


def run_sweep(configs: list[str], runs_root: str | Path = "runs",
              overrides: list[str] | None = None, *, max_minutes: float | None = None,
              quiet: bool = False, threads: int | None = None) -> list[Path]:
    from ekspresi.train.loop import run_training

    root = Path(runs_root)
    out = []
    for name, data in plan(configs, overrides):
        run_dir = root / name
        st = status(run_dir)
        if st == "done":
            log.info("sweep: %s already finished, skipped", run_dir)
        else:
            log.info("sweep: %s %s", "resuming" if st == "resume" else "starting", run_dir)
            run_training(data, run_dir, resume=st == "resume", max_minutes=max_minutes,
                         quiet=quiet, threads=threads)
        out.append(run_dir)
    return out


def comparison_text(run_dirs: list[Path]) -> str:
    try:
        from ekspresi.evaluate.compare import compare_runs
    except ImportError:
        compare_runs = None
    if compare_runs is not None:
        return compare_runs(run_dirs, run_dirs[0].parent / "sweep-comparison").to_markdown()
    lines = ["| run | model | epochs | val acc | test acc | time (s) |",
             "|---|---|---|---|---|---|"]
    for d in run_dirs:
        f = load_metrics(d / FINAL_NAME)
        lines.append(f"| {d.name} | {f.model} | {f.epochs_run} | "
                     f"{f.split('val').accuracy:.4f} | {f.test.accuracy:.4f} | "
                     f"{f.train_time_seconds:.0f} |")
    return "\n".join(lines)
