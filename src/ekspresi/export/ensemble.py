"""Ensembles and flip test-time augmentation baked into ONE ONNX graph.

Averaging the softmax of several independently trained nets (and of each net on the
mirrored face) is the cheapest accuracy gain a CPU-trained model can get. Doing it inside
the graph, not in Python, keeps the bundle contract unchanged: one input ``input``
(N, 1, S, S) in 0..255, one output ``logits`` (N, C). Every consumer — the classifier, the
web app, ``evaluate`` — gets the ensemble without knowing it is one, and the cost is
measured by the same benchmark as any model.

The output is ``log(mean probability)``: its softmax is exactly the averaged probability,
so it is a valid ``logits`` for everything downstream. With ``tta="flip"`` each member
sees a batch of 2N (the faces and their mirror images) in one run, which is cheaper than
two calls for the 48 px inputs used here.

Members may take different input sizes (a 48 px fer-vgg beside a 64 px EfficientNet). The
ensemble takes the smallest, and a larger member enlarges it inside the graph with the
same bilinear, half-pixel-centre resampling that :func:`ekspresi.preprocess.resize` uses
to enlarge. That is exactly what such a member was trained on for FER2013 (48 px photos
enlarged to 64), so nothing is lost there; on sharper photo crops the larger member sees
48 px detail, and the ensemble's evaluation (not its members') is what its card reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ekspresi.errors import BadInputError, MissingDependencyError, ModelError
from ekspresi.infer.bundle import INPUT_NAME, OUTPUT_NAME, Bundle, write_bundle
from ekspresi.infer.resolve import resolve_model
from ekspresi.metrics_schema import TEST, VAL, Metrics, SplitMetrics, read_metrics

TTA_MODES = ("none", "flip")
#: Floor under the averaged probability before the log (keeps the output finite).
PROB_FLOOR = 1e-12
#: Softmax over one axis (what averaging probabilities needs) has its meaning from opset 13.
MIN_OPSET = 13


@dataclass(frozen=True)
class Member:
    bundle: Bundle
    weight: float = 1.0


def _onnx():
    try:
        import onnx
        from onnx import compose, helper
    except ImportError as exc:  # pragma: no cover - base install without onnx
        raise MissingDependencyError(f"building an ensemble needs the onnx package "
                                     f"(pip install 'ekspresi[train]'): {exc}") from None
    return onnx, compose, helper


def _check_compatible(members: list[Member]) -> None:
    first = members[0].bundle
    for m in members[1:]:
        b = m.bundle
        if b.classes != first.classes:
            raise ModelError(f"{b.path}: classes {list(b.classes)} differ from "
                             f"{first.path}'s {list(first.classes)}")
        if b.input_spec.version != first.input_spec.version:
            raise ModelError(f"{b.path}: preprocessing version {b.input_spec.version} "
                             f"differs from {first.path}'s {first.input_spec.version}")
    if any(m.weight <= 0 for m in members):
        raise BadInputError("weights", "every member weight must be positive")


def _input_spec(members: list[Member]):
    """The smallest member's input spec: its size is the ensemble's (larger members enlarge
    the face); mean and std are applied inside each member's own graph."""
    return min((m.bundle.input_spec for m in members), key=lambda spec: spec.size)


def _opset(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def build_graph(members: list[Member], tta: str = "none"):
    """The ensemble's ``onnx.ModelProto`` (see module doc)."""
    onnx, compose, helper = _onnx()
    if tta not in TTA_MODES:
        raise BadInputError("tta", f"unknown mode {tta!r}; choose from {list(TTA_MODES)}")
    if not members:
        raise BadInputError("members", "an ensemble needs at least one model bundle")
    _check_compatible(members)
    protos = [onnx.load(str(m.bundle.onnx_path)) for m in members]
    opsets = {_opset(p) for p in protos}
    if len(opsets) != 1 or min(opsets) < MIN_OPSET:
        raise ModelError(f"members have ONNX opsets {sorted(opsets)}; an ensemble needs one "
                         f"opset >= {MIN_OPSET} (re-export the runs with this ekspresi)")
    opset = opsets.pop()
    n_classes = len(members[0].bundle.classes)
    total = sum(m.weight for m in members)
    TP = onnx.TensorProto
    nodes, inits, sub_nodes, sub_inits = [], [], [], []
    feed = INPUT_NAME
    if tta == "flip":
        inits += [helper.make_tensor("flip_starts", TP.INT64, [1], [-1]),
                  helper.make_tensor("flip_ends", TP.INT64, [1], [-(2 ** 63)]),
                  helper.make_tensor("flip_axes", TP.INT64, [1], [3]),
                  helper.make_tensor("flip_steps", TP.INT64, [1], [-1]),
                  helper.make_tensor("pair_shape", TP.INT64, [3], [2, -1, n_classes])]
        nodes += [helper.make_node("Slice", [INPUT_NAME, "flip_starts", "flip_ends",
                                             "flip_axes", "flip_steps"], ["mirrored"]),
                  helper.make_node("Concat", [INPUT_NAME, "mirrored"], ["with_mirrored"],
                                   axis=0)]
        feed = "with_mirrored"
        if opset >= 18:                      # ReduceMean takes its axes as an input there
            inits.append(helper.make_tensor("axis0", TP.INT64, [1], [0]))
    size = _input_spec(members).size
    if any(m.bundle.input_spec.size != size for m in members):
        # Resize wants the full output shape: (batch, 1) of the feed, then a member's side
        inits += [helper.make_tensor("zero", TP.INT64, [1], [0]),
                  helper.make_tensor("two", TP.INT64, [1], [2])]
        nodes += [helper.make_node("Shape", [feed], ["feed_shape"]),
                  helper.make_node("Slice", ["feed_shape", "zero", "two"], ["batch_channels"])]
    weighted = []
    for i, (m, proto) in enumerate(zip(members, protos)):
        prefix = f"m{i}_"
        meta = m.bundle.metadata.get("onnx", {})
        src_in, src_out = meta.get("input", INPUT_NAME), meta.get("output", OUTPUT_NAME)
        graph = compose.add_prefix(proto, prefix).graph
        own = m.bundle.input_spec.size
        if own != size:                      # enlarge as preprocess.resize would
            inits.append(helper.make_tensor(prefix + "side", TP.INT64, [2], [own, own]))
            sub_nodes += [
                helper.make_node("Concat", ["batch_channels", prefix + "side"],
                                 [prefix + "sizes"], axis=0),
                helper.make_node("Resize", [feed, "", "", prefix + "sizes"],
                                 [prefix + src_in], mode="linear",
                                 coordinate_transformation_mode="half_pixel")]
        else:
            sub_nodes.append(helper.make_node("Identity", [feed], [prefix + src_in]))
        sub_nodes.extend(graph.node)
        sub_inits.extend(graph.initializer)
        probs = f"{prefix}probs"
        sub_nodes.append(helper.make_node("Softmax", [prefix + src_out], [probs], axis=1))
        if tta == "flip":
            sub_nodes += [helper.make_node("Reshape", [probs, "pair_shape"], [probs + "_pair"]),
                          helper.make_node("ReduceMean", [probs + "_pair"],
                                           [probs + "_tta"], axes=[0], keepdims=0)
                          if opset < 18 else
                          helper.make_node("ReduceMean", [probs + "_pair", "axis0"],
                                           [probs + "_tta"], keepdims=0)]
            probs += "_tta"
        w = f"{prefix}weight"
        inits.append(helper.make_tensor(w, TP.FLOAT, [], [m.weight / total]))
        sub_nodes.append(helper.make_node("Mul", [probs, w], [probs + "_w"]))
        weighted.append(probs + "_w")
    tail = [helper.make_node("Sum", weighted, ["mean_probs"]) if len(weighted) > 1
            else helper.make_node("Identity", weighted, ["mean_probs"])]
    inits.append(helper.make_tensor("prob_floor", TP.FLOAT, [], [PROB_FLOOR]))
    tail += [helper.make_node("Max", ["mean_probs", "prob_floor"], ["floored"]),
             helper.make_node("Log", ["floored"], [OUTPUT_NAME])]
    graph = helper.make_graph(
        nodes + sub_nodes + tail, "ekspresi_ensemble",
        [helper.make_tensor_value_info(INPUT_NAME, TP.FLOAT, ["batch", 1, size, size])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TP.FLOAT, ["batch", n_classes])],
        initializer=inits + sub_inits)  # members' value_info dropped: with flip TTA
    # they see 2N faces, so their symbolic ``batch`` would contradict the ensemble's
    domains = {}
    for proto in protos:
        for o in proto.opset_import:
            domains[o.domain] = max(domains.get(o.domain, 0), o.version)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v)
                                                    for d, v in domains.items()],
                              producer_name="ekspresi ensemble")
    model.ir_version = max(p.ir_version for p in protos)
    onnx.checker.check_model(model)
    return model


def _member_record(m: Member) -> dict[str, Any]:
    b = m.bundle
    own = read_metrics(b.metrics, str(b.path))   # the headline numbers, not whole blocks
    metrics = Metrics(splits={k: SplitMetrics(**own.splits[k].model_dump(
        include={"n_samples", "accuracy", "fp32_accuracy"}, exclude_none=True))
        for k in (VAL, TEST) if k in own.splits}).to_dict()
    return {"name": b.name, "sha256": b.sha256, "weight": m.weight,
            "training": b.metadata.get("training", {}), "metrics": metrics,
            **({"quantization": b.metadata["quantization"]}
               if "quantization" in b.metadata else {})}


def _copy_member_evidence(sources: list[tuple[Bundle, Path | None]], out: Path) -> None:
    """Each member's training log and metrics go to ``out/members/NAME/`` (the shipped
    ensemble keeps the evidence of how every part of it was made)."""
    from ekspresi.export.package import MEMBERS_DIR, copy_run_files

    for b, run in sources:
        dst = out / MEMBERS_DIR / b.name
        dst.mkdir(parents=True, exist_ok=True)
        if not copy_run_files(run if run is not None else b.path, dst):
            dst.rmdir()


def build_ensemble(members: list[str | Path | Bundle], out_dir: str | Path, *,
                   tta: str = "none", weights: list[float] | None = None,
                   name: str | None = None) -> Bundle:
    """Write an ensemble bundle of ``members`` (bundles or MODEL arguments) to
    ``out_dir``. Its ``training`` record lists every member's own record; its metrics
    start empty: evaluate the ensemble, then ``ekspresi export ENSEMBLE --evaluation``."""
    resolved = [resolve_model(m.path if isinstance(m, Bundle) else m) for m in members]
    sources = [(r.load(), r.run_dir) for r in resolved]
    bundles = [b for b, _ in sources]
    if weights is not None and len(weights) != len(bundles):
        raise BadInputError("weights", f"{len(weights)} weights for {len(bundles)} members")
    ms = [Member(b, float(w)) for b, w in zip(bundles, weights or [1.0] * len(bundles))]
    model = build_graph(ms, tta)
    out = Path(out_dir)
    if any(out.resolve() == b.path.resolve() for b in bundles):
        raise BadInputError(str(out), "is one of the members; choose another -o folder")
    out.mkdir(parents=True, exist_ok=True)
    training = {"ensemble": {"tta": tta, "combine": "weighted mean of softmax probabilities",
                             "members": [_member_record(m) for m in ms]}}
    _copy_member_evidence(sources, out)
    return write_bundle(out, model.SerializeToString(),
                        name=name or "+".join(b.name for b in bundles) + (
                            "-flip" if tta == "flip" else ""),
                        classes=bundles[0].classes, input_spec=_input_spec(ms),
                        training=training)
