"""Running a campaign in the background and asking it how far it is, without PyTorch.

A campaign's state folder (``--out``; by default ``~/.cache/ekspresi/campaigns/NAME``, outside
any checkout, so the next session on the same machine resumes it) holds:

- ``campaign.lock``: held (``flock``) by the one process running the campaign; a second one
  on the same folder refuses with the first one's pid;
- ``campaign.pid``, ``campaign.log``: the background process (``--detach``) and its output;
- ``stop.request``: written by ``ekspresi campaign stop``; the running training saves a
  checkpoint of its exact position at the next step and the campaign exits;
- ``campaign.json``: every run's outcome, plus which run is training now;
- ``RUN/progress.json``: epoch, step and images/s of a run, updated every 30 s.

``status`` turns these into one line per run (state, epoch, best validation accuracy,
images/s, ETA) from files alone, so it answers while the training holds both cores.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ekspresi.errors import ConfigError
from ekspresi.runs import FINAL_NAME, HISTORY_JSONL, PROGRESS_NAME

LOCK_NAME = "campaign.lock"
PID_NAME = "campaign.pid"
LOG_NAME = "campaign.log"
STOP_NAME = "stop.request"
SUMMARY = "campaign.json"
DONE_REASONS = ("completed", "early_stopping")


def default_out(name: str) -> Path:
    """``$XDG_CACHE_HOME/ekspresi/campaigns/NAME`` (``~/.cache/...`` when unset): outside the
    checkout, so a fresh clone in the next session finds and resumes it."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ekspresi" / "campaigns" / name


# -- one campaign per folder --------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def running_pid(out: Path) -> int | None:
    """The pid of the process that holds this folder's lock, or None when none does."""
    lock = out / LOCK_NAME
    if not lock.is_file():
        return None
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass  # held: someone runs it
        else:
            fcntl.flock(f, fcntl.LOCK_UN)
            return None
    try:
        pid = int((out / PID_NAME).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return -1  # held, pid not written yet
    return pid if _pid_alive(pid) else -1


@contextlib.contextmanager
def hold(out: Path):
    """Hold the folder's lock for the life of the campaign (released by the OS when the
    process dies, even on SIGKILL, so a killed campaign never blocks the next one)."""
    out.mkdir(parents=True, exist_ok=True)
    f: IO[str] = open(out / LOCK_NAME, "a+")  # noqa: SIM115 - held across the yield
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pid = running_pid(out)
            who = f" (pid {pid})" if pid and pid > 0 else ""
            raise ConfigError(f"{out}: another campaign is running on this folder{who}; "
                              f"`ekspresi campaign status {out}` shows it, `ekspresi "
                              f"campaign stop {out}` stops it") from None
        (out / PID_NAME).write_text(f"{os.getpid()}\n")
        (out / STOP_NAME).unlink(missing_ok=True)  # an old request must not stop this run
        yield
    finally:
        with contextlib.suppress(OSError):
            if (out / PID_NAME).read_text().strip() == str(os.getpid()):
                (out / PID_NAME).unlink()
        f.close()


# -- background start and stop ------------------------------------------------------------
def set_priority(pid: int, nice: int) -> str:
    """Give a process ``nice`` against the rest of the machine; returns what was done.

    On Linux with scheduler autogroups (the default on desktops and these VMs) every
    session is one group with an equal CPU share whatever its processes' nice values, so a
    training in its own session gets half the cores as soon as one test runs beside it (a
    MobileNetV2 epoch measured 400 s instead of 45 s with three test processes around).
    The autogroup's nice (``/proc/PID/autogroup``) is what shifts that share; lower than 0
    needs root (CAP_SYS_NICE)."""
    group = Path(f"/proc/{pid}/autogroup")
    try:
        if group.is_file() and Path("/proc/sys/kernel/sched_autogroup_enabled").read_text() \
                .strip() == "1":
            group.write_text(str(nice))
            return f"autogroup nice {nice}"
        os.setpriority(os.PRIO_PROCESS, pid, nice)
        return f"nice {nice}"
    except OSError as exc:
        return f"priority unchanged ({exc.strerror}: nice {nice} needs root below 0)"


def detach(argv: list[str], out: Path, nice: int | None = None) -> int:
    """Start ``ekspresi ARGV`` as a background process in its own session (process group),
    output appended to ``OUT/campaign.log``, optionally with its CPU priority set
    (:func:`set_priority`); returns its pid once it holds the lock (or raises with the
    log's last lines when it failed to start)."""
    pid = running_pid(out)
    if pid is not None:
        raise ConfigError(f"{out}: a campaign is already running here (pid {pid}); "
                          f"`ekspresi campaign status {out}`")
    out.mkdir(parents=True, exist_ok=True)
    log = out / LOG_NAME
    with open(log, "ab") as f, open(os.devnull, "rb") as nul:
        f.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} ekspresi {' '.join(argv)}\n"
                .encode())
        f.flush()
        proc = subprocess.Popen([sys.executable, "-m", "ekspresi", *argv], stdin=nul,
                                stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        if nice is not None:
            f.write(f"priority: {set_priority(proc.pid, nice)}\n".encode())
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        if running_pid(out) == proc.pid:
            return proc.pid
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise ConfigError(f"the campaign stopped at once (exit {proc.returncode}):\n"
                              + "\n".join(tail))
        time.sleep(0.2)
    return proc.pid  # still loading (imports, data): it will take the lock


def request_stop(out: Path, *, wait: float = 0.0) -> int | None:
    """Ask the campaign on ``out`` to stop at its next checkpoint (a request file the
    training polls between steps, and SIGTERM, which the campaign handles the same way);
    with ``wait`` > 0, wait up to that many seconds for it to exit. Returns its pid, or None
    when nothing runs there."""
    pid = running_pid(out)
    if pid is None:
        return None
    (out / STOP_NAME).write_text(f"{time.time()}\n")
    if pid > 0:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while wait > 0 and time.monotonic() < deadline and running_pid(out) is not None:
        time.sleep(0.5)
    return pid


# -- status -------------------------------------------------------------------------------
@dataclass
class RunStatus:
    name: str
    state: str                 # done | training | paused | failed | skipped | pending
    epoch: str = ""            # "12/45" (finished epochs of planned)
    best_val: float | None = None
    img_per_s: float | None = None
    eta_minutes: float | None = None
    test: float | None = None
    note: str = ""


def _json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _recent_epoch_seconds(run_dir: Path, last: int = 3) -> float | None:
    """Median length of the last epochs (the first ones ran beside other work, or before a
    resume warmed up, and would skew an ETA from the run's mean)."""
    try:
        lines = (run_dir / HISTORY_JSONL).read_text().splitlines()[-last:]
        secs = sorted(float(json.loads(x)["seconds"]) for x in lines)
    except (OSError, ValueError, KeyError):
        return None
    return secs[len(secs) // 2] if secs else None


def run_status(out: Path, name: str, entry: dict[str, Any] | None, current: str | None,
               alive: bool) -> RunStatus:
    """One run's state from its files: final metrics, progress, checkpoint, campaign entry."""
    run_dir = out / name
    final = _json(run_dir / FINAL_NAME)
    prog = _json(run_dir / PROGRESS_NAME)
    if final is not None and final.get("stop_reason") in DONE_REASONS:
        test = ((final.get("splits") or {}).get("test") or {}).get("accuracy")
        val = ((final.get("splits") or {}).get("val") or {}).get("accuracy")
        return RunStatus(name, "done", f"{final.get('epochs_run')}/{final.get('epochs_planned')}",
                         val, final.get("train_img_per_s"), 0.0, test,
                         f"{final.get('stop_reason')}, {final.get('weights_used', '')}")
    if alive and current == name:
        state = "training"
    elif entry is not None and entry.get("status") in ("failed", "skipped"):
        state = entry["status"]
    elif (run_dir / "checkpoints").is_dir() or prog is not None:
        state = "paused"
    else:
        state = "pending"
    rs = RunStatus(name, state, note=(entry or {}).get("error") or (entry or {}).get("note")
                   or "")
    if prog is not None:
        epochs, steps = int(prog["epochs"]), max(int(prog["steps"]), 1)
        rs.epoch = f"{prog['epoch']}/{epochs}"
        if prog.get("step"):
            rs.epoch += f" +{int(prog['step']) * 100 // steps}%"
        rs.best_val, rs.img_per_s = prog.get("best_val"), prog.get("img_per_s")
        done = int(prog["epoch"]) + int(prog.get("step") or 0) / steps
        per_epoch = _recent_epoch_seconds(run_dir) or (
            float(prog["train_seconds"]) / int(prog["epoch"]) if int(prog["epoch"]) else None)
        if per_epoch is None and rs.img_per_s and prog.get("batch"):
            per_epoch = steps * int(prog["batch"]) / rs.img_per_s
        if per_epoch:
            rs.eta_minutes = round(max(epochs - done, 0.0) * per_epoch / 60.0, 1)
        if state == "training":
            age = time.time() - float(prog.get("updated", 0))
            if age > 600:
                rs.note = (rs.note + "; " if rs.note else "") + \
                    f"no progress for {age / 60:.0f} min (evaluating or exporting?)"
    return rs


def campaign_status(out: Path, names: list[str] | None = None) -> dict[str, Any]:
    """The campaign on ``out``: running or not (pid), the run training now, and one
    :class:`RunStatus` per run (in the campaign file's order when its names are given)."""
    if not out.is_dir():
        raise ConfigError(f"{out}: no campaign folder here")
    summary = _json(out / SUMMARY) or {}
    entries = {r["name"]: r for r in summary.get("runs", [])}
    names = names or summary.get("planned") or list(entries)
    pid = running_pid(out)
    alive = pid is not None
    current = summary.get("current")
    return {"out": str(out), "campaign": summary.get("campaign"), "file": summary.get("file"),
            "running": alive, "pid": pid if alive else None, "current": current if alive else None,
            "stop_requested": (out / STOP_NAME).exists(),
            "runs": [run_status(out, n, entries.get(n), current, alive) for n in names]}


def format_status(st: dict[str, Any]) -> str:
    """The table ``ekspresi campaign status`` prints."""
    head = (f"campaign {st['campaign'] or '?'} in {st['out']}: "
            + (f"running (pid {st['pid']})" if st["running"] else "not running")
            + (", stop requested" if st["stop_requested"] and st["running"] else ""))
    rows = [f"{'run':<28} {'state':<9} {'epoch':<12} {'best val':>8} {'test':>7} "
            f"{'img/s':>7} {'ETA':>8}  note"]
    def pct(v: float | None) -> str:
        return f"{100 * v:.2f}%" if v is not None else "-"

    for r in st["runs"]:
        eta = (f"{r.eta_minutes:.0f} min" if r.eta_minutes else "-") if r.state != "done" \
            else "-"
        rows.append(f"{r.name:<28} {r.state:<9} {r.epoch or '-':<12} {pct(r.best_val):>8} "
                    f"{pct(r.test):>7} {r.img_per_s or '-':>7} {eta:>8}  {r.note}")
    return "\n".join([head, *rows])
