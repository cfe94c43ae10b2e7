"""The About page's model card, built from a bundle's metadata (``model.json``).

Bundles written by ``ekspresi export`` carry ``training`` (data, split, config) and
``metrics`` (:class:`ekspresi.metrics_schema.Metrics`: a block per split or test set). The
card shows what is there and says plainly what is not, instead of inventing numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ekspresi.errors import BadInputError
from ekspresi.infer.bundle import CARD_PLOTS, META_NAME, Bundle
from ekspresi.metrics_schema import Metrics, load_metrics, read_metrics
from ekspresi.runs import FINAL_NAME

#: Images a bundle folder may ship next to model.json that the About page shows (written by
#: ``ekspresi export --evaluation``).
CARD_IMAGES = tuple(CARD_PLOTS)

#: Said on every card, whatever the model: what FER models trained on these data can't do
#: (message keys; the texts are in ``messages/*.json``).
GENERAL_LIMITATIONS = ("card.lim_categories", "card.lim_fer2013", "card.lim_disgust",
                       "card.lim_small", "card.lim_decisions")

DATASET_CITATIONS = (
    ("FER2013", "Goodfellow et al., “Challenges in Representation Learning: A report on "
                "three machine learning contests”, ICML 2013 workshop; Neural Networks 64, "
                "2015."),
    ("FER+", "Barsoum et al., “Training Deep Networks for Facial Expression Recognition "
             "with Crowd-Sourced Label Distribution”, ICMI 2016."),
    ("CK+", "Lucey et al., “The Extended Cohn-Kanade Dataset (CK+)”, CVPR Workshops 2010."),
    ("JAFFE", "Lyons, Akamatsu, Kamachi, Gyoba, “Coding Facial Expressions with Gabor "
              "Wavelets”, FG 1998."),
    ("KDEF", "Lundqvist, Flykt, Öhman, “The Karolinska Directed Emotional Faces”, "
             "Karolinska Institutet, 1998."),
)

PAPER_CITATIONS = (
    "P1 — Multi-category facial expression recognition with transfer learning "
    "(MobileNetV2, FER2013 happy/sad/surprise), thesis.",
    "P2 — ResNet50 vs VGG19 with data balancing on FER2013, thesis.",
    "P3 — “Deteksi Emosi Menggunakan Citra Ekspresi Wajah Secara Otomatis”, thesis, "
    "Universitas Islam Indonesia, 2021.",
    "P4 — CNN for human facial expressions with a Flask web app (home, image testing, "
    "real-time, step testing, about), journal article, 2020.",
    "P5 — MobileNetV2 for facial expression classification on FER2013, journal article.",
)


#: Training-record keys shown unfolded on the About page, in this order, with the message
#: key of the words a reader sees instead of the config key (for an ensemble: its own keys,
#: then the same keys for each member). The full record, keys and all, stays folded below.
SUMMARY_LABELS = {
    "ensemble.tta": "card.s.tta",
    "ensemble.combine": "card.s.combine",
    "config.data.sources": "card.s.sources",
    "config.data.classes": "card.s.classes",
    "config.data.split": "card.s.split",
    "config.model.name": "card.s.model",
    "config.model.options.widths": "card.s.widths",
    "config.train.optimizer.name": "card.s.optimizer",
    "config.train.optimizer.lr": "card.s.lr",
    "config.train.batch_size": "card.s.batch",
    "epochs": "card.s.epochs",
    "best_epoch": "card.s.best_epoch",
    "train_time_seconds": "card.s.time",
    "weights": "card.s.weights",
    "run": "card.s.run",
}
SUMMARY_KEYS = tuple(SUMMARY_LABELS)

#: Heading and caption (message keys) of each plot a bundle may ship (CARD_IMAGES), in
#: display order.
PLOT_TEXT = {name: (f"plot.{name[:-4]}.title", f"plot.{name[:-4]}.caption")
             for name in ("confusion_matrix.png", "confusion_matrix_normalized.png",
                          "per_class.png", "reliability.png", "learning_curves.png")}


@dataclass
class TestSet:
    name: str
    metrics: dict[str, Any]   # a SplitMetrics block as JSON (the template reads its keys)

    @property
    def classes(self) -> list[str]:
        return list(self.metrics.get("classes") or self.metrics.get("per_class", {}).keys())

    @property
    def per_class(self) -> list[tuple[str, dict[str, Any]]]:
        pc = self.metrics.get("per_class") or {}
        return [(c, pc[c]) for c in self.classes if c in pc]

    @property
    def confusion(self) -> list[list[int]] | None:
        cm = self.metrics.get("confusion_matrix")
        return cm if isinstance(cm, list) and cm and isinstance(cm[0], list) else None

    @property
    def confusion_rows(self) -> list[tuple[str, list[Cell]]]:
        """(true class, cells) for the HTML heat-map table."""
        cm = self.confusion or []
        rows = []
        for name, row in zip(self.classes, cm):
            total = sum(row) or 1
            rows.append((name, [cell(int(v), v / total) for v in row]))
        return rows


@dataclass
class ModelCard:
    name: str
    path: str
    classes: list[str]
    input_size: int
    created: str | None
    sha256: str
    onnx_bytes: int | None
    training: dict[str, Any]
    test_sets: list[TestSet]
    images: list[str]
    limitations: list[str]
    intended_use: str | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def plots(self) -> list[Plot]:
        """The bundle's pictures, in PLOT_TEXT's order, each with a heading and caption."""
        order = [n for n in PLOT_TEXT if n in self.images] + \
            [n for n in self.images if n not in PLOT_TEXT]
        return [Plot(n, *PLOT_TEXT.get(n, (n.rsplit(".", 1)[0].replace("_", " ").capitalize(),
                                           "")))
                for n in order]

    @property
    def training_items(self) -> list[tuple[str, str]]:
        """Flat (key, value) pairs of the training record for a definition list."""
        return list(_flatten(self.training))

    @property
    def training_summary(self) -> list[tuple[str, str]]:
        """The few training facts a reader looks for first (the full config is folded)."""
        return _summary(self.training)

    @property
    def members(self) -> list[MemberCard]:
        """The models an ensemble bundle averages (empty for a single model)."""
        out = []
        for m in (self.training.get("ensemble") or {}).get("members") or []:
            acc = read_metrics(m.get("metrics") or {}, "model.json: ensemble member").test
            out.append(MemberCard(str(m.get("name", "?")), float(m.get("weight", 1.0)),
                                  _summary(m.get("training") or {}), acc.accuracy))
        return out


@dataclass
class MemberCard:
    """One model of an ensemble bundle (``ekspresi ensemble``), from its own record."""
    name: str
    weight: float
    summary: list[tuple[str, str]]
    test_accuracy: float | None


def _duration(seconds: str) -> str:
    try:
        total = round(float(seconds))
    except ValueError:
        return seconds
    hours, rest = divmod(total, 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"


def _summary(training: dict[str, Any]) -> list[tuple[str, str]]:
    """(message key of the label, value) of the SUMMARY_LABELS keys the record has."""
    items = dict(_flatten(training))
    out = []
    for key, label in SUMMARY_LABELS.items():
        if key in items:
            value = items[key]
            out.append((label, _duration(value) if key == "train_time_seconds" else value))
    return out


@dataclass
class Plot:
    """One picture of the bundle folder with the heading and caption the page gives it
    (message keys, or the file's name for a picture the catalogue does not know)."""
    file: str
    title: str
    caption: str


@dataclass
class Cell:
    """One confusion-matrix cell: its count, its share of the row, and colours chosen so the
    number keeps a WCAG contrast of at least 4.5:1 on any shade."""
    count: int
    share: float
    background: str
    color: str


#: The confusion matrix' darkest shade (a share of 1.0), over white.
CELL_SHADE = "#4f46e5"


def cell(count: int, share: float) -> Cell:
    from ekspresi.infer.draw import ink

    share = min(1.0, max(0.0, share))
    r, g, b = (int(CELL_SHADE[i:i + 2], 16) for i in (1, 3, 5))
    mix = [round(255 + (c - 255) * share) for c in (r, g, b)]
    background = "#{:02x}{:02x}{:02x}".format(*mix)
    return Cell(count, share, background, ink(background))


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and len(out) < 200:
            out.extend(_flatten(v, key + "."))
        elif isinstance(v, (list, tuple)) and v and all(isinstance(x, dict) for x in v):
            for i, x in enumerate(v):                     # e.g. an ensemble's members
                out.extend(_flatten(x, f"{key}.{i}."))
        elif isinstance(v, (list, tuple)):
            text = ", ".join(str(x) for x in v[:20]) + (" …" if len(v) > 20 else "")
            out.append((key, text))
        else:
            out.append((key, str(v)))
    return out


def _test_sets(metrics: Metrics) -> list[TestSet]:
    return [TestSet(name, m.model_dump(exclude_none=True))
            for name, m in metrics.test_sets.items()]


def build_card(bundle: Bundle) -> ModelCard:
    meta = bundle.metadata
    limitations = meta.get("limitations")
    if isinstance(limitations, str):
        limitations = [limitations]
    test_sets = _test_sets(read_metrics(bundle.metrics, str(bundle.path / META_NAME)))
    final = Path(bundle.path) / FINAL_NAME  # copied in by `ekspresi export`
    if not test_sets and final.is_file():
        try:
            test_sets = _test_sets(load_metrics(final))
        except BadInputError:   # the card says it has no metrics rather than failing
            pass
    images = [n for n in CARD_IMAGES if (Path(bundle.path) / n).is_file()]
    return ModelCard(
        name=bundle.name, path=str(bundle.path), classes=list(bundle.classes),
        input_size=bundle.input_spec.size, created=meta.get("created"),
        sha256=bundle.sha256, onnx_bytes=(meta.get("onnx") or {}).get("bytes"),
        training=meta.get("training") or {}, test_sets=test_sets,
        images=images, limitations=list(limitations or []),
        intended_use=meta.get("intended_use"),
    )
