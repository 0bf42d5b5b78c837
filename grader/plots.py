"""Plots for the report, drawn with matplotlib as inline SVG.

Okabe-Ito colours (distinguishable with the common colour-vision
deficiencies), and line styles as well as colours, so that a printed grey copy
still reads.  Every plot has labelled axes; captions are in the template.
"""
from __future__ import annotations

import io
import re

OKABE_ITO = {"blue": "#0072B2", "orange": "#E69F00", "green": "#009E73",
             "vermillion": "#D55E00", "purple": "#CC79A7", "grey": "#7F7F7F"}


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: inline in HTML
    # Inline SVG needs no namespace declarations or RDF metadata, and without them the
    # report holds no URL at all (they are identifiers, but a reader cannot tell).
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    return re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)


def _setup():
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.hashsalt": "grader", "font.size": 9,
                                "axes.spines.top": False, "axes.spines.right": False})
    import matplotlib.pyplot as plt
    return plt


def learning_curves(history: dict, reference_val: list[float] | None = None,
                    threshold: float | None = None, others: dict | None = None) -> str:
    """Accuracy and loss per epoch: training, validation, the reference's validation
    accuracy, and optionally other tasks' validation accuracy (for comparisons)."""
    from .results import percent

    plt = _setup()
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(8.4, 3.0))
    c = OKABE_ITO
    longest = max((len(v or []) for v in history.values()), default=0)
    # One epoch (a quick check) is a point, drawn large enough to see, on a readable axis.
    marker = 7 if longest == 1 else 3
    for key, label, colour, style in (("accuracy", "training", c["blue"], "-"),
                                      ("val_accuracy", "validation", c["orange"], "--")):
        values = history.get(key) or []
        if values:
            ax_acc.plot(range(1, len(values) + 1), values, style, color=colour, label=label,
                        marker="o", markersize=marker)
    if reference_val:
        ax_acc.plot(range(1, len(reference_val) + 1), reference_val, ":", color=c["grey"],
                    label="reference (validation)", linewidth=2)
    for i, (name, values) in enumerate((others or {}).items()):
        if values:
            colour = (c["green"], c["purple"], c["vermillion"])[i % 3]
            ax_acc.plot(range(1, len(values) + 1), values, "-.", color=colour,
                        label=f"{name} (validation)")
    if threshold is not None:
        ax_acc.axhline(threshold, color=c["vermillion"], linewidth=1, linestyle=(0, (1, 1)),
                       label=f"threshold {percent(threshold)}")
    from matplotlib.ticker import MaxNLocator
    for ax in (ax_acc, ax_loss):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1)
    if ax_acc.get_legend_handles_labels()[0]:  # a history without accuracy has no lines
        ax_acc.legend(loc="lower right", fontsize=7, frameon=False)
    for key, label, colour, style in (("loss", "training", c["blue"], "-"),
                                      ("val_loss", "validation", c["orange"], "--")):
        values = [v for v in history.get(key) or []]
        if values:
            ax_loss.plot(range(1, len(values) + 1), values, style, color=colour, label=label,
                         marker="o", markersize=marker)
    if longest == 1 and not reference_val:
        for ax in (ax_acc, ax_loss):
            ax.set_xlim(0.5, 1.5)
            ax.set_xticks([1])
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    if ax_loss.get_legend_handles_labels()[0]:
        ax_loss.legend(loc="upper right", fontsize=7, frameon=False)
    fig.tight_layout()
    return _svg(fig)


def bars(labels: list[str], series: dict[str, list[float | None]], ylabel: str) -> str:
    """Grouped bars, e.g. training / validation / test accuracy of two models side by side."""
    plt = _setup()
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(labels), 2.6))
    colours = [OKABE_ITO[k] for k in ("blue", "orange", "green", "purple")]
    hatches = ["", "//", "..", "xx"]
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [j + i * width for j in range(len(labels))]
        heights = [v if v is not None else 0 for v in values]
        bars_ = ax.bar(xs, heights, width, label=name, color=colours[i % 4],
                       hatch=hatches[i % 4], edgecolor="white")
        for bar, v in zip(bars_, values):
            if v is not None:
                ax.annotate(f"{v:.1%}", (bar.get_x() + bar.get_width() / 2, v), ha="center",
                            va="bottom", fontsize=7)
    ax.set_xticks([j + width * (len(series) - 1) / 2 for j in range(len(labels))], labels)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.08)
    ax.legend(fontsize=7, frameon=False, loc="upper left", ncols=len(series))
    fig.tight_layout()
    return _svg(fig)


def histogram(values: list[float], xlabel: str, threshold: float | None = None,
              bins: int = 20, upper: float = 1.0, ylabel_integer: bool = True) -> str:
    """How a class's values (accuracies, points) spread, with the threshold marked."""
    from .results import percent
    from matplotlib.ticker import MaxNLocator

    plt = _setup()
    fig, ax = plt.subplots(figsize=(4.2, 2.4))
    ax.hist(values, bins=bins, range=(0, upper), color=OKABE_ITO["blue"],
            edgecolor="white")
    if threshold is not None:
        ax.axvline(threshold, color=OKABE_ITO["vermillion"], linestyle="--",
                   label=f"threshold {percent(threshold)}")
        ax.legend(fontsize=7, frameon=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("students")
    if ylabel_integer:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return _svg(fig)
