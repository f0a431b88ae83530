"""The report's figures, drawn with matplotlib's Agg backend (no display, no network) into PNG bytes.

Chinese labels need a CJK font, which matplotlib's DejaVu Sans lacks. We look for one (Noto Sans CJK,
WenQuanYi, Source Han, Droid Sans Fallback, AR PL) among the fonts matplotlib knows and at the usual
Debian paths (``fonts-noto-cjk``, ``fonts-wqy-microhei``), and use it as a per-glyph fallback behind
DejaVu Sans. Without one, CJK glyphs render as boxes: the figures are still written, the
"Glyph ... missing" warnings are silenced rather than flooding stderr, and the report says so
(its HTML tables carry the same labels, which the browser draws with its own fonts).
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..core.stats import is_cjk_lang

_CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
                 "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK JP", "Droid Sans Fallback",
                 "AR PL UMing CN", "AR PL UKai CN")
_CJK_FILES = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
              "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
              "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf")
COLORS = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb"]


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The family name of a CJK-capable font matplotlib can use, or None."""
    from matplotlib import font_manager

    known = {f.name for f in font_manager.fontManager.ttflist}
    for family in _CJK_FAMILIES:
        if family in known:
            return family
    # installed after matplotlib built its font cache: register the file directly
    for path in _CJK_FILES:
        if Path(path).is_file():
            try:
                font_manager.fontManager.addfont(path)
                return font_manager.FontProperties(fname=path).get_name()
            except (OSError, RuntimeError, ValueError):
                continue
    return None


@contextmanager
def plotting(use_cjk: bool = True) -> Iterator[Any]:
    """pyplot with Agg and our style in a local rc context; global rcParams stay untouched."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    font = cjk_font() if use_cjk else None
    # an explicit family list: matplotlib falls back glyph by glyph along it (not through "sans-serif")
    rc = {"font.family": ["DejaVu Sans"] + ([font] if font else []),
          "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": 100, "savefig.dpi": 100,
          "axes.titlesize": 11, "axes.titleweight": "bold", "axes.grid": True, "grid.alpha": 0.3,
          "axes.axisbelow": True}
    font_logger = logging.getLogger("matplotlib.font_manager")
    level = font_logger.level
    with plt.rc_context(rc), warnings.catch_warnings():
        # without a CJK font every missing glyph warns once per draw; the report notes it instead
        warnings.filterwarnings("ignore", message=r".*Glyph .* missing from.*")
        warnings.filterwarnings("ignore", message=r".*findfont.*")
        font_logger.setLevel(logging.ERROR)
        try:
            yield plt
        finally:
            font_logger.setLevel(level)


def png_bytes(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _integer_axis(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _bar_labels(ax: Any, bars: Any, values: Sequence[float]) -> None:
    for bar, value in zip(bars, values):
        ax.annotate(f"{value:g}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                    va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")


def table1(plt: Any, rows: Sequence[tuple[str, str]]) -> Any:
    fig, ax = plt.subplots(figsize=(6.4, 0.32 * len(rows) + 0.6))
    ax.axis("off")
    table = ax.table(cellText=[list(r) for r in rows], colLabels=["statistic", "value"], loc="center",
                     cellLoc="left", colLoc="left", colWidths=[0.72, 0.28])
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1, 1.25)
    ax.set_title("Table 1: dataset statistics (Self-Instruct)")
    return fig


def rouge_histogram(plt: Any, scores: Sequence[float], basis: str) -> Any:
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    bins = [i / 20 for i in range(21)]
    ax.hist(scores, bins=bins, color=COLORS[0], edgecolor="white")
    ax.set_xlim(0, 1)
    if scores:
        mean = sum(scores) / len(scores)
        ax.axvline(mean, color=COLORS[1], linestyle="--", linewidth=1.2, label=f"mean {mean:.2f}")
        ax.legend(frameon=False)
    against = "most similar seed" if basis == "seeds" else "most similar earlier instruction (filter's rouge_max)"
    ax.set_title("ROUGE-L to the " + ("most similar seed" if basis == "seeds" else "pool (meta.rouge_max)"))
    ax.set_xlabel(f"ROUGE-L F vs {against}")
    ax.set_ylabel("# instructions")
    _integer_axis(ax.yaxis)
    return fig


def length_histograms(plt: Any, lengths: dict[str, dict[str, list[int]]]) -> Any:
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, fld in zip(axes, ("instruction", "input", "output")):
        every = [v for values in lengths.values() for v in values[fld]]
        if not every:
            continue
        # one set of integer-aligned bin edges for all languages, so the bars line up
        low, high = min(every), max(every) + 1
        step = max(1, -(-(high - low) // 30))
        edges = list(range(low, high + step, step))
        for k, (lang, values) in enumerate(sorted(lengths.items())):
            if values[fld]:
                unit = "chars" if is_cjk_lang(lang) else "words"
                ax.hist(values[fld], bins=edges, alpha=0.6, color=COLORS[k % len(COLORS)],
                        label=f"{lang} ({unit}, n={len(values[fld])})")
        ax.set_title(f"{fld} length" + (" (non-empty)" if fld == "input" else ""))
        ax.set_xlabel("length")
        _integer_axis(ax.yaxis)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False, fontsize=8)
    axes[0].set_ylabel("count")
    fig.tight_layout()
    return fig


def leading_words(plt: Any, groups: dict[str, list[tuple[str, int]]]) -> Any:
    fig, axes = plt.subplots(1, len(groups), figsize=(5.2 * len(groups), 0.26 * max(
        len(v) for v in groups.values()) + 1.2), squeeze=False)
    for k, (ax, (lang, items)) in enumerate(zip(axes[0], groups.items())):
        words = [w for w, _ in items][::-1]
        counts = [c for _, c in items][::-1]
        ax.barh(words, counts, color=COLORS[k % len(COLORS)])
        ax.set_title(f"leading {'words' if is_cjk_lang(lang) else 'verbs'} ({lang})")
        ax.set_xlabel("# instructions")
        ax.grid(axis="y", visible=False)
        _integer_axis(ax.xaxis)
    fig.tight_layout()
    return fig


def rejections(plt: Any, table: dict[str, dict[str, int]]) -> Any:
    items = [(stage, reason, n) for stage, reasons in table.items() for reason, n in reasons.items()]
    fig, ax = plt.subplots(figsize=(7.5, 0.3 * len(items) + 1.2))
    stages = list(table)
    labels = [f"{stage}: {reason}" for stage, reason, _ in items][::-1]
    values = [n for _, _, n in items][::-1]
    colors = [COLORS[stages.index(stage) % len(COLORS)] for stage, _, _ in items][::-1]
    ax.barh(labels, values, color=colors)
    for y, value in enumerate(values):
        ax.annotate(str(value), (value, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_title("rejected records per stage and reason")
    ax.set_xlabel("# records")
    _integer_axis(ax.xaxis)
    ax.grid(axis="y", visible=False)
    return fig


def counts(plt: Any, title: str, values: dict[str, int], xlabel: str = "# records") -> Any:
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * len(values) + 2), 3.2))
    names = list(values)
    bars = ax.bar(names, [values[n] for n in names], color=[COLORS[k % len(COLORS)] for k in range(len(names))])
    _bar_labels(ax, bars, [values[n] for n in names])
    ax.set_title(title)
    ax.set_ylabel(xlabel)
    ax.grid(axis="x", visible=False)
    _integer_axis(ax.yaxis)
    if len(names) > 4 or sum(len(n) for n in names) > 8 * len(names):
        plt.setp(ax.get_xticklabels(), rotation=25, ha="right")
    return fig


def token_usage(plt: Any, usage: dict[str, dict[str, Any]]) -> Any:
    stages = list(usage)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 * len(stages) + 2), 3.2))
    prompt = [usage[s]["prompt_tokens"] for s in stages]
    completion = [usage[s]["completion_tokens"] for s in stages]
    ax.bar(stages, prompt, color=COLORS[0], label="prompt tokens")
    ax.bar(stages, completion, bottom=prompt, color=COLORS[1], label="completion tokens")
    ax.set_title("token usage per stage")
    ax.set_ylabel("tokens")
    ax.legend(frameon=False)
    ax.grid(axis="x", visible=False)
    return fig


def loss_curves(plt: Any, curves: dict[str, list[tuple[float, float]]]) -> Any:
    fig, ax = plt.subplots(figsize=(6.8, 3.6))
    for k, (name, points) in enumerate(curves.items()):
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker="o" if len(points) < 30 else None, markersize=3, label=name,
                color=COLORS[k % len(COLORS)])
    ax.set_title("fine-tuning loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(frameon=False)
    return fig


def _has_cjk(stats: dict[str, Any]) -> bool:
    from ..core.stats import is_cjk_lang

    return any(is_cjk_lang(lang) for lang in stats["languages"]) or any(
        is_cjk_lang(group) for group in stats["leading_words"])


def draw(stats: dict[str, Any], raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Every figure the statistics allow, as ``report_html.Figure`` by name; plus notes for the reader."""
    from .html import Figure, table1_rows

    notes: list[str] = []
    if _has_cjk(stats) and cjk_font() is None:
        notes.append("No CJK font found for the figures (install fonts-noto-cjk or fonts-wqy-microhei): "
                     "Chinese labels in the PNGs show as boxes; the tables carry them readably.")
    figs: dict[str, Figure] = {}

    def add(name: str, title: str, fig: Any, caption: str = "") -> None:
        figs[name] = Figure(name, title, png_bytes(fig), caption)

    with plotting() as plt:
        add("table1", "Table 1", table1(plt, table1_rows(stats["table1"])))
        rouge = stats["rouge_vs_seeds"]
        if raw["rouge"]:
            add("rouge_vs_seeds", "ROUGE-L to the most similar seed",
                rouge_histogram(plt, raw["rouge"], rouge["basis"]),
                f"{rouge['instructions']} distinct generated instructions; basis: {rouge['basis']}")
        if raw["lengths"]:
            add("lengths", "Lengths", length_histograms(plt, raw["lengths"]),
                "words for English, characters for Chinese")
        if stats["leading_words"]:
            add("leading_words", "Leading words", leading_words(plt, stats["leading_words"]))
        add("languages", "Languages", counts(plt, "language mix", stats["languages"]))
        add("sources", "Sources", counts(plt, "records by source", stats["lineage"]["sources"]))
        if stats["rejections"]:
            add("rejections", "Rejections", rejections(plt, stats["rejections"]))
        usage = {k: v for k, v in stats["usage"].items() if v["prompt_tokens"] or v["completion_tokens"]}
        if usage:
            add("token_usage", "Token usage", token_usage(plt, usage))
        for number, (directory, curves) in enumerate(raw["curves"].items()):
            name = "loss" if number == 0 else f"loss_{number + 1}"
            add(name, "Fine-tuning loss", loss_curves(plt, curves), directory)
    return figs, notes
