"""The report as one self-contained HTML page: inline CSS, images as base64 PNG, no script, no network."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

_NUMERIC = re.compile(r"^[+-]?[\d,]*\.?\d+(e[+-]?\d+)?$|^[+-]?(inf|nan)$")

_CSS = """
body{font-family:"DejaVu Sans","Noto Sans CJK SC","WenQuanYi Micro Hei",system-ui,sans-serif;margin:0;
color:#222;background:#f6f7f9;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px 32px 48px;background:#fff}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.2em;border-bottom:2px solid #4477aa;padding-bottom:3px;
margin-top:32px}
.sub{color:#666;font-size:.9em;margin:0 0 8px}
table{border-collapse:collapse;margin:8px 0 12px;font-size:.9em}
th,td{border:1px solid #d8dce2;padding:3px 9px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:10px 0 16px}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.85em;margin-top:4px}
.grid{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.note{background:#fff8e1;border-left:4px solid #ccbb44;padding:6px 10px;margin:6px 0;font-size:.9em}
code{background:#f1f1f1;padding:0 3px}
"""


@dataclass
class Figure:
    name: str
    title: str
    png: bytes
    caption: str = ""


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return escape(str(value))


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for value in row:
            numeric = (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
                isinstance(value, str) and _NUMERIC.match(value) is not None)
            cells.append(f'<td class="num">{_num(value)}</td>' if numeric else f"<td>{_num(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure(fig: Figure | None) -> str:
    if fig is None:
        return ""
    data = base64.b64encode(fig.png).decode("ascii")
    caption = f"<figcaption>{escape(fig.caption)}</figcaption>" if fig.caption else ""
    return (f'<figure id="fig-{escape(fig.name)}"><img src="data:image/png;base64,{data}" '
            f'alt="{escape(fig.title)}">{caption}</figure>')


def section(title: str, *parts: str) -> str:
    body = "".join(p for p in parts if p)
    return f"<section><h2>{escape(title)}</h2>{body}</section>" if body else ""


def paragraph(text: str, cls: str = "sub") -> str:
    return f'<p class="{cls}">{escape(text)}</p>'


def page(title: str, subtitle: str, sections: Sequence[str], notes: Sequence[str]) -> str:
    note_html = "".join(f'<div class="note">{escape(n)}</div>' for n in notes)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>"
            f"<h1>{escape(title)}</h1>{paragraph(subtitle)}{note_html}{''.join(sections)}"
            "</main></body></html>\n")


def table1_rows(t1: dict[str, Any]) -> list[tuple[str, str]]:
    """The rows of the Self-Instruct paper's Table 1, in its order."""
    sub = "\u2003- "  # an em space keeps the paper's indentation in HTML and in the PNG
    rows = [("# of instructions", t1["instructions"]),
            (sub + "# of classification instructions", t1["classification_instructions"]),
            (sub + "# of non-classification instructions", t1["non_classification_instructions"])]
    if t1.get("unknown_type_instructions"):
        rows.append((sub + "# of instructions of unknown type", t1["unknown_type_instructions"]))
    rows += [("# of instances", t1["instances"]),
             (sub + "# of instances with empty input", t1["instances_with_empty_input"]),
             ("ave. instruction length", t1["avg_instruction_length"]),
             ("ave. non-empty input length", t1["avg_nonempty_input_length"]),
             ("ave. output length", t1["avg_output_length"])]
    return [(label, _num(value)) for label, value in rows]


def _rouge_section(stats: dict[str, Any], figs: dict[str, Figure]) -> str:
    rouge = stats["rouge_vs_seeds"]
    if rouge["basis"] == "none":
        return section("Similarity to the seeds (Figure 3)", paragraph(
            "No seeds found (--seeds, the run's config.json, source: seed records) and no meta.rouge_max: "
            "nothing to compare against."))
    if rouge["basis"] == "seeds":
        text = (f"ROUGE-L F between each of {rouge['instructions']} distinct generated instructions and its "
                f"most similar of {rouge['seeds']} seed instructions (seeds: {rouge['seed_origin']}); "
                f"mean {rouge['mean']}, median {rouge['median']}. Low values mean new tasks, not paraphrases.")
    else:
        text = ("No seed file found: this shows the filter's meta.rouge_max, the ROUGE-L to the most similar "
                "instruction in the pool at filter time (seeds and earlier instructions), which runs higher "
                f"than the paper's Figure 3. Mean {rouge['mean']}, median {rouge['median']}.")
    return section("Similarity to the seeds (Figure 3)", paragraph(text), figure(figs.get("rouge_vs_seeds")))


def _lengths_section(stats: dict[str, Any], figs: dict[str, Figure]) -> str:
    rows = [(lang, fld, d.get("n", 0), d.get("mean", "-"), d.get("median", "-"), d.get("p90", "-"),
             d.get("max", "-")) for lang, fields in stats["lengths"].items() for fld, d in fields.items()]
    return section("Lengths", figure(figs.get("lengths")),
                   table(["language", "field", "n", "mean", "median", "p90", "max"], rows))


def _leading_section(stats: dict[str, Any], figs: dict[str, Figure]) -> str:
    groups = stats["leading_words"]
    if not groups:
        return ""
    tables = "".join(f"<div>{table(['#', f'leading word ({lang})', 'instructions'], [(k + 1, w, n) for k, (w, n) in enumerate(items)])}</div>"
                     for lang, items in groups.items())
    return section("Leading verbs and words", paragraph(
        "The first word of each distinct instruction (English, after please/kindly) or its first two "
        "Han characters (Chinese, after 请): a view of task diversity."),
        figure(figs.get("leading_words")), f'<div class="grid">{tables}</div>')


def _lineage_section(stats: dict[str, Any], figs: dict[str, Figure]) -> str:
    lin = stats["lineage"]
    depth = table(["derivation depth", "records"], [(k, v) for k, v in lin["depth"].items()])
    return section("Languages, sources and lineage",
                   f'<div class="grid">{figure(figs.get("languages"))}{figure(figs.get("sources"))}</div>',
                   table(["source", "records"], list(lin["sources"].items())),
                   paragraph(f"{lin['with_parent']} records derive from another (parent_id); depth counts "
                             "steps back along parent_id within this dataset."), depth)


def _rejections_section(stats: dict[str, Any], figs: dict[str, Figure]) -> str:
    rows = [(stage, reason, n) for stage, reasons in stats["rejections"].items() for reason, n in reasons.items()]
    if not rows:
        return section("Rejections", paragraph("No rejected.jsonl in the inputs."))
    return section("Rejections", paragraph(f"{stats['rejected_total']} rejected records in all."),
                   figure(figs.get("rejections")), table(["stage", "reason", "records"], rows))


def _usage_section(stats: dict[str, Any], figs: dict[str, Figure]) -> str:
    usage = stats["usage"]
    if not usage:
        return ""
    rows = [(stage, u.get("model", "-"), u["requests"], u["prompt_tokens"], u["completion_tokens"],
             round(u["cost_usd"], 4)) for stage, u in usage.items()]
    total = [sum(r[k] for r in rows) for k in (2, 3, 4, 5)]
    rows.append(("total", "", total[0], total[1], total[2], round(total[3], 4)))
    return section("Token usage and cost", table(
        ["stage", "model", "requests", "prompt tokens", "completion tokens", "cost (USD)"], rows),
        figure(figs.get("token_usage")))


def _finetune_section(stats: dict[str, Any], figs: dict[str, Figure]) -> str:
    rows = [(d, name, s["points"], s["first"], s["last"], s["min"])
            for d, curves in stats["finetune"].items() for name, s in curves.items()]
    if not rows:
        return ""
    images = "".join(figure(f) for name, f in figs.items() if name.startswith("loss"))
    return section("Fine-tuning", images, table(["directory", "series", "points", "first", "last", "min"], rows))


def _eval_section(raw_evals: list[Any]) -> str:
    from ..eval.stage import comparison_rows

    parts = []
    for report in raw_evals:
        try:
            header, rows = comparison_rows(report)
        except (KeyError, TypeError, IndexError):
            continue  # an eval.json from another version: skipped rather than misread
        parts.append(table(header, rows))
    return section("Evaluation", *parts) if parts else ""


def _judge_section(stats: dict[str, Any]) -> str:
    from .judge import render

    return render(stats.get("judge"))


def render_page(stats: dict[str, Any], figs: dict[str, Figure], raw: dict[str, Any]) -> str:
    t1 = stats["table1"]
    subtitle = (f"{t1['instances']} records, {t1['instructions']} distinct instructions, from "
                f"{', '.join(stats['data_files'])}. Lengths in {t1['length_unit']}.")
    sections = [
        section("Table 1: dataset statistics", table(["statistic", "value"], table1_rows(t1))),
        _rouge_section(stats, figs), _lengths_section(stats, figs), _leading_section(stats, figs),
        _lineage_section(stats, figs), _rejections_section(stats, figs), _usage_section(stats, figs),
        _judge_section(stats), _finetune_section(stats, figs), _eval_section(raw.get("eval", [])),
    ]
    return page("sftdata report", subtitle, sections, stats["notes"])
