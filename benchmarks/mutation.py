"""Mutation testing of the modules users depend on most, with mutmut (``pip install -e
.[dev]``). Not part of CI: it runs each module's own tests once per mutant, which takes
minutes to hours on 2 cores.

For every module named (default: all of ``MODULES``) the script copies the committed tree
(``git archive REV``; default HEAD) to a scratch folder, lets mutmut mutate that copy one
change at a time while the module's tests (``MODULES[module]``) run against it, and writes
``benchmarks/results/mutation/<module>.json``: kill rate, and each survivor's diff. Your
working tree is never touched.

    nice -n 19 python benchmarks/mutation.py infer/output.py web/uploads.py
    nice -n 19 python benchmarks/mutation.py export/package.py --rev main --tag before

``LINES`` restricts a module to line ranges (through mutmut's ``--use-patch-file``): the
int8 path of ``export/package.py`` is what the int8 tests run, the rest of the module is
covered by cheaper tests elsewhere.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import machine_info  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "mutation"

#: module (under src/ekspresi) -> the test files that claim to protect it
MODULES: dict[str, list[str]] = {
    "infer/output.py": ["tests/test_mutation_guards.py::test_output_contract_of_each_format",
                        "tests/test_mutation_guards.py::test_output_formats_follow_the_scores",
                        "tests/test_mutation_guards.py::test_predict_labels_are_the_argmax",
                        "tests/test_csv_safety.py::test_predict_csv_neutralises_a_formula_file_name",
                        "tests/test_predict_cli.py"],
    "export/package.py": ["tests/test_export.py", "tests/test_mutation_guards.py::"
                          "test_int8_figures_come_from_the_int8_graph",
                          "tests/test_mutation_guards.py::"
                          "test_int8_headline_follows_the_runs_own_data_only",
                          "tests/test_mutation_guards.py::"
                          "test_int8_of_a_run_calibrates_on_its_training_source_or_asks_for_one"],
    "web/uploads.py": [f"tests/test_web_api.py::{t}" for t in (
        "test_analyze_multipart_finds_the_face", "test_analyze_raw_body_equals_multipart",
        "test_non_image_is_415_with_message", "test_corrupt_and_empty_uploads_are_422",
        "test_decompression_bomb_is_refused",
        "test_upload_limit_by_content_length_and_by_counting")] + [
        f"tests/test_web_hardening.py::{t}" for t in (
            "test_web_pixel_limit_is_below_the_cli_one_and_checked_first",
            "test_web_refuses_extreme_strips_before_decoding",
            "test_dds_upload_is_415_everywhere_and_the_stream_goes_on",
            "test_content_type_is_matched_case_insensitively")] + [
        f"tests/test_web_attack.py::{t}" for t in (
            "test_a_huge_video_frame_is_refused_from_the_header",
            "test_video_frames_above_the_pixel_or_side_limit_are_refused")] + [
        "tests/test_mutation_guards.py::test_upload_endpoints_document_a_required_image_body"],
    "web/middleware.py": ["tests/test_web_guards.py", "tests/test_web_hardening.py",
                          "tests/test_web_attack.py"],
    "preprocess.py": ["tests/test_preprocess.py"],
    "train/checkpoint.py": ["tests/test_train.py::test_resume_after_kill_equals_uninterrupted",
                            "tests/test_train.py::test_time_budget_stops_resumably",
                            "tests/test_train.py::test_resume_applies_the_checkpoint",
                            "tests/test_checkpoint.py"],
    "train/loop.py": ["tests/test_train.py", "tests/test_mutation_guards.py"],
    "infer/recognizer.py": ["tests/test_infer_engine.py", "tests/test_detect.py"],
    "export/int8.py": ["tests/test_export.py"],
    "export/onnx.py": ["tests/test_export.py", "tests/test_train.py::"
                       "test_onnx_bundle_matches_pytorch"],
}

#: The three mutations the issue-23 audit found surviving the suite, written by hand (mutmut
#: does not make them): (file, text, replacement, tests that must now fail).
NAMED: dict[str, tuple[str, str, str, list[str]]] = {
    "resume-without-state": (
        "train/loop.py", "            tr.load(ckpt.load(last_checkpoint(run_dir)))",
        "            ckpt.load(last_checkpoint(run_dir))",
        ["tests/test_train.py::test_resume_applies_the_checkpoint"]),
    "int8-figures-from-float-graph": (
        "export/package.py", "q8 = _predictions(tmp, bundle", "q8 = _predictions(float_src, bundle",
        ["tests/test_mutation_guards.py::test_int8_figures_come_from_the_int8_graph"]),
    "least-likely-label": (
        "infer/output.py", "*face.box, face.label,",
        "*face.box, min(face.scores, key=face.scores.get),",
        ["tests/test_mutation_guards.py::test_output_formats_follow_the_scores",
         "tests/test_mutation_guards.py::test_predict_labels_are_the_argmax"]),
    "least-likely-label-in-table": (
        "infer/output.py", "            label = f.label\n",
        "            label = min(f.scores, key=f.scores.get)\n",
        ["tests/test_mutation_guards.py::test_output_formats_follow_the_scores",
         "tests/test_mutation_guards.py::test_predict_labels_are_the_argmax"]),
}

#: module -> (first, last) line ranges to mutate; other lines are left alone
LINES: dict[str, list[tuple[int, int]]] = {}


def _int8_block(source: str) -> list[tuple[int, int]]:
    """The lines of ``export()``'s ``if int8:`` block in package.py."""
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "if int8:")
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines) and (not lines[end].strip()
                                or len(lines[end]) - len(lines[end].lstrip()) > indent):
        end += 1
    return [(start + 2, end)]   # 1-based, the body only


def _function_lines(source: str, names: list[str]) -> list[tuple[int, int]]:
    """The line ranges of the named top-level functions and classes (``Class.method`` for one
    method), decorators left out."""
    import ast

    tree = ast.parse(source)
    nodes = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            nodes[node.name] = node
            if isinstance(node, ast.ClassDef):
                for sub in node.body:
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        nodes[f"{node.name}.{sub.name}"] = sub
    missing = [n for n in names if n not in nodes]
    if missing:
        raise SystemExit(f"no function or class {missing} in the module")
    return sorted((nodes[n].lineno, nodes[n].end_lineno) for n in names)


def _patch(path: str, ranges: list[tuple[int, int]], source: str) -> str:
    """A unified diff that shows ``ranges`` of ``path`` as added lines (what mutmut's
    --use-patch-file reads to restrict itself to them)."""
    lines = source.splitlines()
    out = [f"--- a/{path}", f"+++ b/{path}"]
    for first, last in ranges:
        out.append(f"@@ -{first - 1},0 +{first},{last - first + 1} @@")
        out += ["+" + lines[i - 1] for i in range(first, last + 1)]
    return "\n".join(out) + "\n"


def _killed(counts: dict[str, int]) -> int:
    """Killed mutants: the tests failed (``ok_suspicious``: they failed, but slowly).
    ``bad_timeout`` (the tests ran past 3x their unmutated time) counts as not killed:
    on a loaded machine it is often just slowness, and the report says so."""
    return counts.get("ok_killed", 0) + counts.get("ok_suspicious", 0)


def _survivors(tested: list[dict]) -> list[dict]:
    return [m for m in tested if m["status"] in ("bad_survived", "bad_timeout")]


def compare(before: dict, after: dict) -> dict:
    """Kill rates over the mutants both runs tested (matched by their diff, so line shifts
    between the two commits do not matter)."""
    b = {m["diff"]: m["status"] for m in before["tested"] if m["diff"]}
    a = {m["diff"]: m["status"] for m in after["tested"] if m["diff"]}
    common = sorted(set(b) & set(a))
    killed = ("ok_killed", "ok_suspicious")
    kb = sum(b[d] in killed for d in common)
    ka = sum(a[d] in killed for d in common)
    return {"common_mutants": len(common), "killed_before": kb, "killed_after": ka,
            "kill_rate_before": round(kb / len(common), 4) if common else None,
            "kill_rate_after": round(ka / len(common), 4) if common else None,
            "still_surviving": [{"diff": d, "status": a[d]} for d in common
                                if a[d] not in killed]}


def _diff(source: str, line: str, index: int, line_number: int) -> str:
    """The one-line change of a mutant, computed with mutmut's own mutator."""
    from mutmut import Context, RelativeMutationID, mutate

    ctx = Context(source=source, mutation_id=RelativeMutationID(line, index, line_number))
    mutated, n = mutate(ctx)
    if not n:
        return ""
    return "\n".join(d for d in difflib.unified_diff(source.split("\n"), mutated.split("\n"),
                                                     lineterm="", n=0)
                     if d.startswith(("+", "-")) and not d.startswith(("+++", "---")))


def _results(copy: Path, source: str) -> tuple[dict[str, int], list[dict]]:
    db = sqlite3.connect(copy / ".mutmut-cache")
    rows = db.execute("select Mutant.id, Mutant.status, Mutant.`index`, Line.line_number, "
                      "Line.line from Mutant join Line on Mutant.line = Line.id").fetchall()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[1]] = counts.get(row[1], 0) + 1
    tested = []
    for mid, status, index, number, line in rows:
        if status == "untested":
            continue
        tested.append({"id": mid, "status": status, "line": number + 1,
                       "source": line.strip(), "diff": _diff(source, line, index, number)})
    return counts, tested


def _checkout(rev: str, dest: Path) -> Path:
    """The repository at ``rev`` written into ``dest`` (``git archive``), with ``data/``
    linked to the checkout's datasets."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    if (ROOT / "data").exists():
        (dest / "data").symlink_to((ROOT / "data").resolve())
    return dest


def run_module(module: str, rev: str, tag: str, timeout_mult: float,
               tests: list[str] | None = None, functions: list[str] | None = None) -> dict:
    src = f"src/ekspresi/{module}"
    tests = tests or MODULES[module]
    with tempfile.TemporaryDirectory(prefix="ekspresi-mutation-") as tmp:
        copy = _checkout(rev, Path(tmp))
        present = [t for t in tests if (copy / t.split("::")[0]).is_file()]
        # mutmut 2 counts only exit code 1 as "killed"; a mutant that breaks an import makes
        # pytest exit 2 (collection error), which would count as survived: map any failure
        # to 1
        pytest = (f"{sys.executable} -m pytest -x -q -p no:cacheprovider -p no:randomly "
                  + " ".join(present))
        runner = f"/bin/sh -c '{pytest} || exit 1'"
        args = [sys.executable, "-m", "mutmut", "run", "--paths-to-mutate", src,
                "--tests-dir", "tests", "--runner", runner, "--simple-output", "--no-progress",
                "-m", str(timeout_mult)]
        source = (copy / src).read_text()
        ranges = (_function_lines(source, functions) if functions else LINES.get(module)
                  or (_int8_block(source) if module == "export/package.py" else None))
        if ranges:
            (copy / "lines.patch").write_text(_patch(src, ranges, source))
            args += ["--use-patch-file", "lines.patch"]
        env = dict(os.environ, PYTHONPATH=str(copy / "src"), OMP_NUM_THREADS="1")
        started = time.time()
        proc = subprocess.run(args, cwd=copy, env=env, capture_output=True, text=True)
        seconds = time.time() - started
        if not (copy / ".mutmut-cache").is_file():
            raise SystemExit(f"{module}: mutmut did not run:\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}")
        counts, tested = _results(copy, source)
    total = sum(counts.values())
    killed = _killed(counts)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", rev], capture_output=True,
                            text=True).stdout.strip()
    return {"module": module, "tag": tag, "rev": rev, "commit": commit, "tests": present,
            "lines": ranges, "mutants": total, "killed": killed,
            "kill_rate": round(killed / total, 4) if total else None, "statuses": counts,
            "complete": True, "survivors": _survivors(tested), "tested": tested,
            "seconds": round(seconds, 1),
            "functions": functions,
            "command": " ".join(["nice -n 19 python benchmarks/mutation.py", module,
                                 "--rev", rev, "--tag", tag]
                                + (["--functions", ",".join(functions)] if functions else [])
                                + (["--tests", *tests] if tests != MODULES[module] else [])),
            "machine": machine_info()}


def recheck(before: dict, rev: str, tag: str, tests: list[str] | None = None) -> dict:
    """Run the tests of ``rev`` against each survivor of an earlier run (``before``), one
    mutant at a time, applying its recorded diff to a scratch copy. Only for a module whose
    source is the same at both commits: the tests of ``rev`` include the earlier ones, so
    the mutants they killed are still killed, and only the survivors need running again."""
    module = before["module"]
    src = f"src/ekspresi/{module}"
    show = ["git", "-C", str(ROOT), "show"]
    base = before.get("commit") or before["rev"]    # a partial run records its rev only
    old = subprocess.run([*show, f"{base}:{src}"], capture_output=True,
                         text=True, check=True).stdout
    new = subprocess.run([*show, f"{rev}:{src}"], capture_output=True, text=True,
                         check=True).stdout
    if old != new:
        raise SystemExit(f"{module} changed between {base[:7]} and {rev}: "
                         "run the whole module again")
    tests = tests or MODULES[module]
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", rev], capture_output=True,
                            text=True).stdout.strip()   # before the archive: what is tested
    rechecked = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="ekspresi-recheck-") as tmp:
        copy = _checkout(commit, Path(tmp))
        env = dict(os.environ, PYTHONPATH=str(copy / "src"), OMP_NUM_THREADS="1")
        path = copy / src
        for m in before["survivors"]:
            minus = [d[1:] for d in m["diff"].split("\n") if d.startswith("-")]
            plus = [d[1:] for d in m["diff"].split("\n") if d.startswith("+")]
            lines = new.split("\n")
            first = m["line"] - 1
            assert lines[first:first + len(minus)] == minus, (m["id"], "diff does not apply")
            path.write_text("\n".join(lines[:first] + plus + lines[first + len(minus):]))
            try:
                proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p",
                                       "no:cacheprovider", "-p", "no:randomly", *tests],
                                      cwd=copy, env=env, capture_output=True, text=True)
            finally:
                path.write_text(new)
            failed = re.findall(r"^FAILED (\S+)", proc.stdout, re.M)
            status = "bad_survived" if proc.returncode == 0 else "ok_killed"
            rechecked.append(dict(m, status=status, killed_by=failed))
            print(f"  mutant {m['id']} (line {m['line']}): {status} {' '.join(failed)}",
                  flush=True)
    new_kills = sum(m["status"] == "ok_killed" for m in rechecked)
    killed = before["killed"] + new_kills
    total = before.get("n_tested", before["mutants"])
    return {"module": module, "tag": tag, "rev": rev, "commit": commit,
            "rechecked_from": {"tag": before["tag"], "commit": base},
            "tests": tests, "lines": before.get("lines"), "functions": before.get("functions"),
            "mutants": total, "killed": killed,
            "kill_rate": round(killed / total, 4) if total else None,
            "killed_before": before["killed"], "killed_now_of_the_survivors": new_kills,
            "survivors": [m for m in rechecked if m["status"] != "ok_killed"],
            "rechecked": rechecked, "seconds": round(time.time() - started, 1),
            "command": " ".join(["nice -n 19 python benchmarks/mutation.py --recheck",
                                 f"benchmarks/results/mutation/<module>.{before['tag']}.json",
                                 "--rev", rev, "--tag", tag]),
            "machine": machine_info()}


def run_named(rev: str) -> dict:
    """Apply each NAMED mutation to a scratch copy of ``rev`` and run its tests: each must
    fail (exit code 1)."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="ekspresi-named-") as tmp:
        copy = Path(tmp)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(copy)], input=archive, check=True)
        env = dict(os.environ, PYTHONPATH=str(copy / "src"), OMP_NUM_THREADS="1")
        for name, (module, old, new, tests) in NAMED.items():
            path = copy / "src" / "ekspresi" / module
            original = path.read_text()
            assert original.count(old) == 1, (name, "the text to mutate is not there once")
            path.write_text(original.replace(old, new))
            try:
                proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p",
                                       "no:cacheprovider", *tests], cwd=copy, env=env,
                                      capture_output=True, text=True)
            finally:
                path.write_text(original)
            failed = re.findall(r"^FAILED (\S+)", proc.stdout, re.M)
            out[name] = {"module": module, "tests": tests, "exit_code": proc.returncode,
                         "caught": proc.returncode == 1, "failed": failed}
            print(f"{name}: {'caught' if proc.returncode == 1 else 'NOT CAUGHT'} by "
                  f"{', '.join(failed) or '-'}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help=f"default: {', '.join(MODULES)}")
    ap.add_argument("--rev", default="HEAD", help="commit to mutate (default HEAD)")
    ap.add_argument("--tag", default="after", help="name of this measurement (before/after)")
    ap.add_argument("--timeout-multiplier", type=float, default=3.0)
    ap.add_argument("--from-cache", type=Path, metavar="DIR",
                    help="summarise the .mutmut-cache of an interrupted run's scratch copy "
                         "DIR (one module) instead of running; untested mutants are counted")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                    help="kill rates of two result files over the mutants both tested")
    ap.add_argument("--tests", nargs="+", metavar="TEST",
                    help="run these pytest node ids instead of MODULES[module] (one module)")
    ap.add_argument("--functions", metavar="NAMES",
                    help="mutate only these comma-separated top-level functions or classes "
                         "(Class.method for one method) of the module")
    ap.add_argument("--recheck", type=Path, metavar="BEFORE",
                    help="run the tests of --rev against the survivors of the result file "
                         "BEFORE only (the module's source must be unchanged)")
    ap.add_argument("--named", action="store_true",
                    help="apply the audit's three hand-written mutations (NAMED) instead")
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if a.compare:
        before, after = (json.loads(p.read_text()) for p in a.compare)
        doc = compare(before, after)
        doc.update(module=before["module"], before=str(a.compare[0].name),
                   after=str(a.compare[1].name))
        print(json.dumps(doc, indent=2))
        return
    if a.recheck is not None:
        doc = recheck(json.loads(a.recheck.read_text()), a.rev, a.tag, a.tests)
        name = re.sub(r"[^A-Za-z0-9]+", "_", doc["module"].removesuffix(".py"))
        path = OUT / f"{name}.{a.tag}.json"
        path.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"{doc['module']} [{a.tag}]: {doc['killed']}/{doc['mutants']} killed "
              f"({doc['kill_rate']}), {len(doc['survivors'])} survivors -> "
              f"{path.relative_to(ROOT)}")
        return
    if a.named:
        doc = {"rev": a.rev, "commit": subprocess.run(
                   ["git", "-C", str(ROOT), "rev-parse", a.rev], capture_output=True,
                   text=True).stdout.strip(),
               "mutations": run_named(a.rev), "machine": machine_info()}
        (OUT / "named.json").write_text(json.dumps(doc, indent=2) + "\n")
        raise SystemExit(0 if all(m["caught"] for m in doc["mutations"].values()) else 1)
    if a.from_cache is not None:
        (module,) = a.modules
        src = a.from_cache / f"src/ekspresi/{module}"
        bak = src.with_name(src.name + ".bak")      # mutmut's copy while a mutant is applied
        source = (bak if bak.is_file() else src).read_text()
        counts, tested_list = _results(a.from_cache, source)
        tested = sum(v for k, v in counts.items() if k != "untested")
        killed = _killed(counts)
        doc = {"module": module, "tag": a.tag, "rev": a.rev, "complete": False,
               "mutants": sum(counts.values()), "n_tested": tested, "killed": killed,
               "kill_rate_of_tested": round(killed / tested, 4) if tested else None,
               "statuses": counts, "survivors": _survivors(tested_list), "tested": tested_list,
               "machine": machine_info()}
        name = re.sub(r"[^A-Za-z0-9]+", "_", module.removesuffix(".py"))
        (OUT / f"{name}.{a.tag}.json").write_text(json.dumps(doc, indent=2) + "\n")
        print(f"{module} [{a.tag}, partial]: {killed}/{tested} tested mutants killed")
        return
    if (a.tests or a.functions) and len(a.modules) != 1:
        raise SystemExit("--tests and --functions need exactly one module")
    for module in a.modules or list(MODULES):
        if module not in MODULES:
            raise SystemExit(f"unknown module {module}; choose from {', '.join(MODULES)}")
        doc = run_module(module, a.rev, a.tag, a.timeout_multiplier, a.tests,
                         a.functions.split(",") if a.functions else None)
        name = re.sub(r"[^A-Za-z0-9]+", "_", module.removesuffix(".py"))
        path = OUT / f"{name}.{a.tag}.json"
        path.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"{module} [{a.tag}]: {doc['killed']}/{doc['mutants']} killed "
              f"({doc['kill_rate']}), {len(doc['survivors'])} survivors, "
              f"{doc['seconds']:.0f} s -> {path.relative_to(ROOT)}", flush=True)


if __name__ == "__main__":
    main()
