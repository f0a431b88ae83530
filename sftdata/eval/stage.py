"""Held-out evaluation: the base model and each adapter on the same records, side by side.

Per model:
- loss, perplexity and token accuracy on the reference replies, with the prompt masked exactly as
  in fine-tuning (``sftdata.finetune.data.tokenize_example``), summed over tokens (not averaged per
  record, so long replies weigh by their length);
- greedy generation through the local engine (``sftdata.llm.local``: continuous batching, the shared
  prompt prefix prefilled once, LoRA merged into the weights; stopping at EOS / end-of-turn): ROUGE-L F against the
  reference (CJK-aware for Chinese), exact match after normalization, and for classification records
  accuracy and macro precision / recall / F1 over the label set (``sftdata.metrics``); the share of
  generations that ended with EOS and the mean generated length in tokens.

Which records are classification: a record's own ``is_classification`` (Record JSONL, seed tasks)
wins; exported formats (alpaca, sharegpt, messages, prompt-completion) drop that field, so
``labels_from`` (Record JSONL files such as the run's ``accepted.jsonl``) supplies it by instruction
text, as Table 1 does: an instruction is classification when any of its records is. Records still
unknown are scored as generation only and counted in ``unknown_type``. The same files give back each
record's ``lang`` and ``source`` (matched by record id); a language still unknown is detected.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..core.records import Record, read_all
from . import metrics
from .config import EvalConfig

# end-of-turn markers of common chat templates; whichever the vocabulary has stops generation
_STOP_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<end_of_turn>", "<|endoftext|>", "</s>")


EvalOptions = EvalConfig  # the name the library API has always used


@dataclass
class Generation:
    text: str
    tokens: int  # generated tokens before the stop token
    ended_with_eos: bool


# ---------------------------------------------------------------- records

def load_eval_records(paths: Sequence[str | os.PathLike[str]], labels_from: Sequence[str | os.PathLike[str]] = (),
                      limit: int | None = None) -> tuple[list[Record], dict[str, int]]:
    """Records to evaluate on, with ``is_classification`` filled from ``labels_from`` where unknown.

    Records without a reference reply cannot be scored; they are left out and counted, never dropped
    silently. Returns ``(records, counts)``.
    """
    from ..finetune.data import load_rows
    from ..text.lang import detect_lang

    records = load_rows(paths)  # remembers file:line for errors about a record
    task_type: dict[str, bool] = {}
    origin: dict[str, Record] = {}  # by record id: the same record before export dropped its fields
    for rec in read_all(labels_from):
        origin.setdefault(rec.id, rec)
        if rec.is_classification is not None:
            task_type[rec.instruction] = task_type.get(rec.instruction, False) or rec.is_classification
    for rec in records:
        if rec.is_classification is None and rec.instruction in task_type:
            rec.is_classification = task_type[rec.instruction]
        known = origin.get(rec.id)
        if known is not None:
            rec.lang = rec.lang or known.lang
            rec.source = known.source if rec.source == "import" else rec.source
            rec.parent_id = rec.parent_id or known.parent_id
        if rec.lang is None:  # per-language scores need one: "unknown" tells a reader nothing
            rec.lang = detect_lang(rec.instruction)
    kept = [rec for rec in records if rec.output.strip()]
    counts = {"read": len(records), "skipped_no_reference": len(records) - len(kept)}
    if limit is not None:
        kept = kept[:limit]
    counts["evaluated"] = len(kept)
    counts["classification"] = sum(1 for r in kept if r.is_classification)
    counts["unknown_type"] = sum(1 for r in kept if r.is_classification is None)
    return kept, counts


# ---------------------------------------------------------------- model passes

def _batches(order: list[int], size: int) -> list[list[int]]:
    return [order[i:i + size] for i in range(0, len(order), size)]


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="rec", leave=False, disable=None)


def score_references(model: Any, tokenizer: Any, records: Sequence[Record], batch_size: int,
                     max_len: int, desc: str = "loss") -> dict[str, Any]:
    """Token-summed loss, perplexity and next-token accuracy on the reference replies.

    Prompts too long for ``max_len`` are cut as in fine-tuning (``truncated``); a record whose reply
    alone leaves no room is left out of the loss and counted in ``too_long``.
    """
    import torch
    import torch.nn.functional as F

    from ..finetune.batching import collate
    from ..finetune.data import IGNORE, ExampleDropped, tokenize_example

    examples, too_long = [], 0
    for rec in records:
        try:
            examples.append(tokenize_example(tokenizer, rec, max_len))
        except ExampleDropped:  # as fine-tuning would: the reply alone fills max_len; generation still scores it
            too_long += 1
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    pad = tokenizer.pad_token_id  # tokenize_example (prepare_tokenizer) gave it one, EOS if none
    nll, tokens, correct = 0.0, 0, 0
    with _progress(len(examples), desc) as bar, torch.inference_mode():
        for batch in _batches(order, batch_size):
            # right padding, targets shifted as in fine-tuning; positions stay 0..n-1 without help
            tensors = collate(examples, [[i] for i in batch], pad, packed=False)
            logits = model(input_ids=tensors.input_ids, attention_mask=tensors.attention_mask).logits
            # prompt tuning prepends its virtual tokens' positions: the real tokens' logits are last
            logits = logits[:, logits.shape[1] - tensors.input_ids.shape[1]:]
            keep = tensors.targets != IGNORE
            picked, gold = logits[keep].float(), tensors.targets[keep]
            nll += F.cross_entropy(picked, gold, reduction="sum").item()
            correct += (picked.argmax(-1) == gold).sum().item()
            tokens += int(keep.sum())
            bar.update(len(batch))
    loss = nll / tokens if tokens else float("nan")
    return {"loss": loss, "perplexity": metrics.perplexity(loss) if tokens else float("nan"),
            "token_accuracy": correct / tokens if tokens else 0.0, "reference_tokens": tokens,
            "truncated": sum(1 for ex in examples if ex.truncated), "too_long": too_long}


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """EOS plus every end-of-turn token the vocabulary knows."""
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (tokenizer.eos_token_id, configured):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(v for v in value if isinstance(v, int))
    vocab = tokenizer.get_vocab()
    ids.update(vocab[tok] for tok in _STOP_TOKENS if tok in vocab)
    return sorted(ids)


def generate(model: Any, tokenizer: Any, records: Sequence[Record], batch_size: int, max_new_tokens: int,
             desc: str = "generate") -> list[Generation]:
    """Greedy generation through the local engine (the one every other stage generates with: continuous
    batching, shared prompt prefix, growing KV cache), stopping at EOS / end-of-turn; input order kept.

    Prompts are rendered as fine-tuning rendered them (``render_prompt_ids``), not re-templated.
    """
    from ..finetune.data import render_prompt_ids
    from ..llm.local.engine import Engine

    prompts = [render_prompt_ids(tokenizer, rec) for rec in records]
    stops = stop_token_ids(model, tokenizer)
    engine = Engine(model, tokenizer, batch_size=batch_size, stop_ids=stops)
    with _progress(len(prompts), desc) as bar:
        generated = engine.generate_ids(prompts, max_new_tokens)
        bar.update(len(prompts))
    return [_decode(tokenizer, ids, set(stops)) for ids, _finish in generated]


def _decode(tokenizer: Any, new_ids: list[int], stops: set[int]) -> Generation:
    end = next((k for k, tok in enumerate(new_ids) if tok in stops), None)
    kept = new_ids if end is None else new_ids[:end]
    text = tokenizer.decode(kept, skip_special_tokens=True)
    if end is None:  # cut by max_new_tokens, possibly inside a multi-byte character
        text = text.rstrip("\ufffd")
    text = text.strip()
    return Generation(text=text, tokens=len(kept), ended_with_eos=end is not None)


# ---------------------------------------------------------------- metrics per model

def generation_metrics(records: Sequence[Record], gens: Sequence[Generation]) -> dict[str, Any]:
    rouge = [metrics.rouge_l(g.text, r.output) for r, g in zip(records, gens)]
    exact = [float(metrics.exact_match(g.text, r.output)) for r, g in zip(records, gens)]
    out: dict[str, Any] = {
        "rouge_l": metrics.mean(rouge), "exact_match": metrics.mean(exact),
        "eos_rate": metrics.mean([float(g.ended_with_eos) for g in gens]),
        "mean_gen_tokens": metrics.mean([float(g.tokens) for g in gens]),
    }
    by_lang: dict[str, dict[str, float]] = {}
    for lang in sorted({r.lang or "unknown" for r in records}):
        idx = [k for k, r in enumerate(records) if (r.lang or "unknown") == lang]
        by_lang[lang] = {"n": len(idx), "rouge_l": metrics.mean([rouge[k] for k in idx]),
                         "exact_match": metrics.mean([exact[k] for k in idx])}
    out["by_lang"] = by_lang
    cls = [k for k, r in enumerate(records) if r.is_classification]
    if cls:
        scores = metrics.classification_scores([gens[k].text for k in cls], [records[k].output for k in cls])
        out["classification"] = scores.to_dict()
    return out


# the table's rows: (key, label, higher is better)
TABLE_ROWS = [
    ("loss", "loss", False), ("perplexity", "perplexity", False), ("token_accuracy", "token accuracy", True),
    ("rouge_l", "ROUGE-L F", True), ("exact_match", "exact match", True),
    ("cls_accuracy", "cls accuracy", True), ("cls_macro_precision", "cls macro P", True),
    ("cls_macro_recall", "cls macro R", True), ("cls_macro_f1", "cls macro F1", True),
    ("cls_invalid_rate", "cls no-label rate", False),
    ("eos_rate", "ended with EOS", True), ("mean_gen_tokens", "mean gen tokens", None),
]


def flat_metrics(result: dict[str, Any]) -> dict[str, float]:
    flat = {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for key, value in (result.get("classification") or {}).items():
        if isinstance(value, float):
            flat[f"cls_{key}"] = value
    return flat


def evaluate_model(label: str, model_path: str | None, adapter: str | None, records: Sequence[Record],
                   options: EvalOptions, gguf: str | None = None) -> tuple[dict[str, Any], list[Generation]]:
    """``gguf``: a GGUF file evaluated instead of ``model_path`` (read by transformers, dequantized)."""
    from ..finetune.outputs import trained_tokenizer
    from ..llm.local.embedded import display_name, load_model_and_tokenizer

    started = time.perf_counter()
    if gguf is not None:
        from ..export_model.verify import load_gguf

        model, tokenizer = load_gguf(gguf)
    else:
        model, tokenizer = load_model_and_tokenizer(model_path, adapter=adapter)
    if adapter is not None:
        tokenizer = trained_tokenizer(adapter, tokenizer)
    result: dict[str, Any] = {"name": label, "model": gguf or display_name(model_path), "adapter": adapter}
    result.update(score_references(model, tokenizer, records, options.batch_size, options.max_len,
                                   desc=f"{label}: loss"))
    model = _merged_for_generation(model)
    gens = generate(model, tokenizer, records, options.batch_size, options.max_new_tokens,
                    desc=f"{label}: generate")
    result.update(generation_metrics(records, gens))
    result["seconds"] = round(time.perf_counter() - started, 2)
    del model
    gc.collect()
    return result, gens


def _merged_for_generation(model: Any) -> Any:
    """A LoRA-style adapter merged into the weights (in place: the loss is already scored), so the engine
    runs its lean forward; prompt-learning adapters cannot merge and stay wrapped (the engine then
    drives ``model.generate``)."""
    config = getattr(model, "active_peft_config", None)
    if config is None or getattr(config, "is_prompt_learning", False):
        return model
    return model.merge_and_unload()


def resolve_base_model(base_model: str | None, adapters: Sequence[str],
                       log: Callable[[str], None] | None = None) -> str | None:
    """The base model to evaluate: ``--base-model``, else the one the adapters were trained on.

    ``sftdata finetune`` records its base in ``sftdata_finetune.json`` (null: the embedded model).
    Without ``--base-model``, adapters naming different bases are an error: their scores would not
    share a baseline. With it, an adapter naming another base only draws a warning (directories move).
    """
    from ..finetune.outputs import read_info

    named: dict[str, str | None] = {}
    for adapter in adapters:
        info = read_info(adapter)
        if "base_model" in info:
            base = info["base_model"]
            if base is not None and not Path(base).is_dir() and info.get("base_model_dir"):
                base = info["base_model_dir"]  # a relative path given where fine-tuning ran
            named[adapter] = base
    if base_model is None:
        bases = set(named.values())
        if len(bases) > 1:
            listing = "; ".join(f"{a}: {b or 'embedded'}" for a, b in named.items())
            raise ConfigError(f"the adapters were trained on different base models ({listing}); "
                              "evaluate them separately or name one with --base-model", "--adapter")
        return bases.pop() if bases else None
    for adapter, base in named.items():
        if base is None or Path(base).resolve() != Path(base_model).resolve():
            if log:
                log(f"warning: {adapter} was trained on {base or 'the embedded model'}, not {base_model}")
    return base_model


def _labels(adapters: Sequence[str]) -> list[str]:
    names = [Path(a).name or str(a) for a in adapters]
    return [str(Path(a)) if names.count(n) > 1 else n for a, n in zip(adapters, names)]


def evaluate(data: Sequence[str], base_model: str | None = None, adapters: Sequence[str] = (),
             options: EvalOptions | None = None, labels_from: Sequence[str] = (),
             log: Callable[[str], None] | None = None, ggufs: Sequence[str] = ()) -> dict[str, Any]:
    """Evaluate the base model, each adapter and each GGUF file on ``data``; the report of ``eval.json``."""
    options = options or EvalOptions()
    options.validate()
    if base_model is not None and not Path(base_model).is_dir():
        raise ConfigError(f"{base_model}: no such model directory", "--base-model")
    for adapter in adapters:
        if not (Path(adapter) / "adapter_config.json").is_file():
            raise ConfigError(f"{adapter}: not a PEFT adapter directory (no adapter_config.json)", "--adapter")
    for gguf in ggufs:
        if not Path(gguf).is_file() or Path(gguf).suffix.lower() != ".gguf":
            raise ConfigError(f"{gguf}: not a .gguf file", "--gguf")
    base_model = resolve_base_model(base_model, adapters, log)
    records, counts = load_eval_records(data, labels_from, options.limit)
    if not records:
        raise ConfigError("no records with a reference reply to evaluate on", "DATA")
    runs: list[tuple[str, str | None, str | None]] = [("base", None, None)]
    runs += [(label, adapter, None) for label, adapter in zip(_labels(adapters), adapters)]
    runs += [(label, None, gguf) for label, gguf in zip(_labels(ggufs), ggufs)]
    results, generations = [], {}
    for label, adapter, gguf in runs:
        if log:
            log(f"evaluating {label} on {len(records)} records")
        result, gens = evaluate_model(label, base_model, adapter, records, options, gguf=gguf)
        results.append(result)
        generations[label] = gens
    base = flat_metrics(results[0])
    for result in results[1:]:
        mine = flat_metrics(result)
        result["delta"] = {key: mine[key] - base[key] for key, _, _ in TABLE_ROWS if key in mine and key in base}
    return {"data": [str(p) for p in data], "labels_from": [str(p) for p in labels_from],
            "counts": counts, "options": vars(options), "models": results,
            "predictions": _predictions(records, generations)}


def _predictions(records: Sequence[Record], generations: dict[str, list[Generation]]) -> list[dict[str, Any]]:
    return [{"id": rec.id, "instruction": rec.instruction, "input": rec.input, "reference": rec.output,
             "lang": rec.lang, "source": rec.source, "is_classification": rec.is_classification,
             "generations": {label: vars(gens[k]) for label, gens in generations.items()}}
            for k, rec in enumerate(records)]


# ---------------------------------------------------------------- tables and files

def _cell(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    if value != value or value in (float("inf"), float("-inf")):  # nan / inf
        return str(value)
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def comparison_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per metric, a column per model and a difference column per adapter."""
    models = report["models"]
    header = ["metric", models[0]["name"]]
    for result in models[1:]:
        header += [result["name"], f"Δ {result['name']}"]
    flats = [flat_metrics(m) for m in models]
    rows = []
    for key, label, _better in TABLE_ROWS:
        if not any(key in flat for flat in flats):
            continue
        row = [label, _cell(flats[0].get(key))]
        for result, flat in zip(models[1:], flats[1:]):
            row += [_cell(flat.get(key)), _cell(result.get("delta", {}).get(key), signed=True)]
        rows.append(row)
    return header, rows


def render_table(report: dict[str, Any], markdown: bool = False) -> str:
    header, rows = comparison_rows(report)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(r[c]) for r in [header] + rows) for c in range(len(header))]
    fmt = lambda row: "  ".join(cell.ljust(w) if c == 0 else cell.rjust(w)  # noqa: E731
                                for c, (cell, w) in enumerate(zip(row, widths)))
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(row) for row in rows])


def render_markdown(report: dict[str, Any]) -> str:
    counts = report["counts"]
    lines = ["# Evaluation", "",
             f"Data: {', '.join(report['data'])}  ",
             f"Records evaluated: {counts['evaluated']} (classification: {counts['classification']}, "
             f"type unknown: {counts['unknown_type']}, skipped without reference: "
             f"{counts['skipped_no_reference']})  ",
             f"Greedy decoding, max {report['options']['max_new_tokens']} new tokens; loss on reference "
             "reply tokens with the prompt masked as in fine-tuning.", "",
             render_table(report, markdown=True), ""]
    for result in report["models"]:
        adapter = f" + adapter `{result['adapter']}`" if result.get("adapter") else ""
        lines.append(f"- **{result['name']}**: `{result['model']}`{adapter} ({result['seconds']} s)")
    return "\n".join(lines) + "\n"


def write_outputs(report: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, str]:
    """``eval.json`` (metrics), ``eval.md`` (the table), ``predictions.jsonl`` (every generation)."""
    import json

    from ..core.records import write_jsonl

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = json_safe({k: v for k, v in report.items() if k != "predictions"})
    (out / "eval.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2, default=str) + "\n",
                                   encoding="utf-8")
    (out / "eval.md").write_text(render_markdown(report), encoding="utf-8")
    write_jsonl(out / "predictions.jsonl", report["predictions"])
    return {name: str(out / name) for name in ("eval.json", "eval.md", "predictions.jsonl")}


def json_safe(value: Any) -> Any:
    """NaN / infinity as null: strict JSON has neither (a diverged model's perplexity is inf)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value
