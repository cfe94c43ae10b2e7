"""Dataset summaries for ``ekspresi data inspect``: what a loader produced, so counts can be
checked against the published ones and bad files or duplicates are visible before training.
"""

from __future__ import annotations

from collections import Counter

from ekspresi.data.records import SPLITS, SampleSet
from ekspresi.data.splits import find_duplicates

#: How many duplicate groups to list by path (all are counted).
MAX_DUPLICATE_EXAMPLES = 10


def inspect(ss: SampleSet) -> dict:
    """JSON-ready summary. ``splits`` always maps train/val/test to {class: count} over the
    classes present in ``ss``; samples without an official split are under ``unsplit``."""
    classes = ss.present_classes()
    out: dict = {
        "total": len(ss),
        "classes": ss.class_counts(classes),
        "splits": {s: ss.where(split=s).class_counts(classes) for s in SPLITS},
        "split_totals": {s: int((ss.splits == s).sum()) for s in SPLITS},
    }
    if (ss.splits == "").any():
        out["unsplit"] = ss.where(split="").class_counts(classes)
        out["split_totals"]["unsplit"] = int((ss.splits == "").sum())
    out["sizes"] = _sizes(ss)
    subjects = {s for s in ss.subjects if s}
    if subjects:
        out["subjects"] = len(subjects)
    out["soft_labels"] = ss.soft is not None
    out["duplicates"] = _duplicates(ss)
    out["bad"] = [{"path": p, "problem": q} for p, q in ss.report.bad]
    out["dropped"] = dict(ss.report.dropped)
    return out


def _sizes(ss: SampleSet) -> dict[str, int]:
    if ss.uniform:
        return {f"{ss.images.shape[2]}x{ss.images.shape[1]}": len(ss)} if len(ss) else {}
    c = Counter(f"{im.shape[1]}x{im.shape[0]}" for im in ss.images)
    return dict(c.most_common())


def _duplicates(ss: SampleSet) -> dict:
    groups = find_duplicates(ss)
    cross = [g for g in groups if len(set(ss.splits[g])) > 1]
    label_conflicts = [g for g in groups if len(set(ss.labels[g].tolist())) > 1]
    return {
        "groups": len(groups),
        "images": int(sum(len(g) for g in groups)),
        "cross_split_groups": len(cross),
        "label_conflict_groups": len(label_conflicts),
        "examples": [[str(p) for p in ss.paths[g]] for g in groups[:MAX_DUPLICATE_EXAMPLES]],
    }


def inspect_many(sets: dict[str, SampleSet]) -> dict:
    """Summary of the combination plus one per dataset (keyed by the spec given)."""
    combined = SampleSet.concat(list(sets.values()))
    out = inspect(combined)
    if len(sets) > 1:
        out["datasets"] = {spec: {"source": ",".join(sorted(set(s.sources))), **inspect(s)}
                           for spec, s in sets.items()}
    return out


def format_text(summary: dict) -> str:
    """Human-readable table of a summary from :func:`inspect`."""
    classes = list(summary["classes"])
    cols = [s for s in ("train", "val", "test") if summary["split_totals"][s]]
    if "unsplit" in summary:
        cols.append("unsplit")
    table = {**summary["splits"], **({"unsplit": summary["unsplit"]}
                                     if "unsplit" in summary else {})}
    w = max([len(c) for c in classes] + [5])
    lines = [f"{'class':<{w}} " + " ".join(f"{c:>8}" for c in cols) + f" {'total':>8}"]
    for cls in classes:
        lines.append(f"{cls:<{w}} " + " ".join(f"{table[c][cls]:>8}" for c in cols)
                     + f" {summary['classes'][cls]:>8}")
    lines.append(f"{'total':<{w}} " + " ".join(f"{summary['split_totals'][c]:>8}"
                                               for c in cols) + f" {summary['total']:>8}")
    lines.append("image sizes: " + ", ".join(f"{k} ({v})" for k, v in summary["sizes"].items()))
    if "subjects" in summary:
        lines.append(f"subjects: {summary['subjects']}")
    d = summary["duplicates"]
    lines.append(f"exact duplicates: {d['groups']} groups ({d['images']} images), "
                 f"{d['cross_split_groups']} groups across splits, "
                 f"{d['label_conflict_groups']} groups with conflicting labels")
    for reason, n in summary["dropped"].items():
        lines.append(f"dropped: {n} ({reason})")
    if summary["bad"]:
        lines.append(f"bad inputs skipped: {len(summary['bad'])}")
        lines.extend(f"  {b['path']}: {b['problem']}" for b in summary["bad"])
    for spec, sub in summary.get("datasets", {}).items():
        lines.append(f"-- {spec} ({sub['source']}): {sub['total']} samples, "
                     + ", ".join(f"{s} {n}" for s, n in sub["split_totals"].items() if n))
    return "\n".join(lines)

