"""``sftdata pairs``: candidates per instruction, ranked, into prompt / chosen / rejected pairs.

Candidates of an instruction: every record holding it (outputs of several generators, a record's
``meta.output_b``), plus ``--candidates N`` samples from the LLM, one response per
``--candidate-model`` and one per ``--candidate-adapter``. They are ranked by the LLM judge (scores
or pairwise in both orders), a reward model, the scores already in ``meta.judge``, or people
(``feedback.jsonl`` from ``sftdata review``). Writes ``pairs.jsonl`` (TRL's standard columns +
margin + provenance), ``rejected.jsonl`` (ties, low margins, too few candidates, with the reason),
``stats.json``, and the preference exports under ``export/``. LLM requests go through the LLM
layer's cache: a rerun pays for nothing it already asked.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..core.records import Record, read_all, write_jsonl
from .build import NO_VERDICT, TIE, Candidate, Prompt, build_pairs, no_pair, pair_row, round_robin_scores
from .config import PairsConfig


def group_prompts(records: Sequence[Record]) -> list[Prompt]:
    """Records -> prompts (instruction + input + system), each record's output a candidate, in first-seen order."""
    prompts: dict[tuple[str, str, str], Prompt] = {}
    for record in records:
        system = record.meta.get("system", "") if isinstance(record.meta, dict) else ""
        prompt = Prompt(record.instruction, record.input, system or "", record.lang)
        prompt = prompts.setdefault(prompt.key, prompt)
        prompt.candidates.append(Candidate(record.output, f"record:{record.source}", None, {"id": record.id}))
        output_b = record.meta.get("output_b") if isinstance(record.meta, dict) else None
        if isinstance(output_b, str) and output_b.strip():
            prompt.candidates.append(Candidate(output_b, "record:output_b", None, {"id": record.id}))
    return list(prompts.values())


# ---------------------------------------------------------------- candidates from models

def _llm_configs(config: PairsConfig, llm_config: Any) -> list[tuple[str, Any, int]]:
    """(source label, LLM config, samples) for each extra candidate source."""
    sources = []
    if config.candidates:
        sources.append((f"sample:{llm_config.model or 'embedded'}", llm_config, config.candidates))
    sources += [(f"model:{model}", replace(llm_config, model=model), 1) for model in config.candidate_model]
    sources += [(f"adapter:{adapter}", adapter_llm_config(llm_config, adapter), 1) for adapter in config.candidate_adapter]
    return sources


def adapter_llm_config(llm_config: Any, adapter: str) -> Any:
    """The local backend on the adapter's own base (its sftdata_finetune.json), whatever endpoint the
    other candidates come from: an adapter runs here, never at a remote endpoint that would ignore it."""
    from ..finetune.outputs import read_info

    info = read_info(adapter)
    if "base_model" in info:
        base = info["base_model"]  # None: the embedded model
        if base is not None and not Path(base).is_dir():
            base = info.get("base_model_dir") or base  # a relative path given where fine-tuning ran
    else:  # not ours: the run's model when it is a local one
        base = llm_config.model if not llm_config.base_urls else None
    return replace(llm_config, base_urls=[], api_key=None, backend="local", model=base, adapter=adapter)


def add_model_candidates(prompts: Sequence[Prompt], config: PairsConfig, llm_config: Any, out: Path) -> int:
    from ..llm.base import Request
    from ..llm.client import make_llm

    added = 0
    for label, source_config, samples in _llm_configs(config, llm_config):
        requests = [Request.chat(p.messages()[-1]["content"], system=p.system or None, temperature=config.temperature,
                                 max_tokens=config.max_tokens, seed=config.seed + k, tag="pairs:candidate")
                    for p in prompts for k in range(samples)]
        llm = make_llm(source_config, cache_path=out / "cache.sqlite")
        done = llm.complete_sync(requests)
        for index, completion in enumerate(done):
            prompt = prompts[index // samples]
            if completion.ok and completion.text.strip():
                prompt.candidates.append(Candidate(completion.text.strip(), label, None,
                                                   {"seed": config.seed + index % samples}))
                added += 1
    return added


# ---------------------------------------------------------------- ranking

def rank_by_judge(prompts: Sequence[Prompt], config: PairsConfig, judge_config: Any, llm_config: Any,
                  out: Path) -> None:
    from ..judge import Candidates, score_candidates
    from ..llm.client import make_llm

    judge_config = replace(judge_config, rubric=config.rubric)
    items = [Candidates(p.instruction, [c.response for c in p.candidates], p.input, p.lang) for p in prompts]
    llm = make_llm(llm_config, cache_path=out / "cache.sqlite")
    judgements = asyncio.run(_closing(llm, score_candidates(llm, items, judge_config)))
    for prompt, scored in zip(prompts, judgements):
        for candidate, judgement in zip(prompt.candidates, scored):
            candidate.score = judgement.score
            candidate.detail["judge"] = {"score": judgement.score, "rationale": judgement.rationale,
                                         "model": judgement.model, **({"error": judgement.error}
                                                                      if judgement.error else {})}


async def _closing(llm: Any, work: Any) -> Any:
    try:
        return await work
    finally:
        await llm.aclose()


def rank_by_pairwise(prompts: Sequence[Prompt], judge_config: Any, llm_config: Any, out: Path) -> None:
    """Every two candidates compared in both orders; a candidate's score is its share of wins."""
    from ..judge import Pair, compare_pairs
    from ..llm.client import make_llm

    judge_config = replace(judge_config, rubric="pairwise")
    games, where = [], []
    for p_index, prompt in enumerate(prompts):
        for i in range(len(prompt.candidates)):
            for j in range(i + 1, len(prompt.candidates)):
                games.append(Pair(prompt.instruction, prompt.candidates[i].response, prompt.candidates[j].response,
                                  prompt.input, prompt.lang))
                where.append((p_index, i, j))
    llm = make_llm(llm_config, cache_path=out / "cache.sqlite")
    verdicts = asyncio.run(_closing(llm, compare_pairs(llm, games, judge_config)))
    results: dict[int, list[tuple[int, int, str | None]]] = {}
    for (p_index, i, j), verdict in zip(where, verdicts):
        results.setdefault(p_index, []).append((i, j, verdict.winner))
    for p_index, prompt in enumerate(prompts):
        for candidate, score in zip(prompt.candidates, round_robin_scores(len(prompt.candidates),
                                                                          results.get(p_index, []))):
            candidate.score = score


def rank_by_reward(prompts: Sequence[Prompt], model_dir: str) -> None:
    from ..finetune.preference import PreferencePair
    from ..finetune.reward import load_reward_model, score_replies

    model, tokenizer = load_reward_model(model_dir)
    flat = [(c, PreferencePair(p.messages(), c.response, c.response)) for p in prompts for c in p.candidates]
    for (candidate, _), score in zip(flat, score_replies(model, tokenizer, [pair for _, pair in flat])):
        candidate.score = round(score, 6)


def rank_by_meta(prompts: Sequence[Prompt], records: Sequence[Record]) -> tuple[list[dict], list[dict]]:
    """Scores already in meta.judge (``reward`` wins over ``score``); pairwise verdicts make pairs directly."""
    by_id = {r.id: r for r in records}
    direct, rejected = [], []
    for prompt in prompts:
        for candidate in prompt.candidates:
            judge = by_id[candidate.detail["id"]].meta.get("judge") if "id" in candidate.detail else None
            if not isinstance(judge, dict) or judge.get("rubric") == "pairwise":
                continue
            value = judge.get("reward", judge.get("score"))
            candidate.score = float(value) if isinstance(value, (int, float)) else None
        for record_id in {c.detail.get("id") for c in prompt.candidates}:
            judge = by_id[record_id].meta.get("judge") if record_id in by_id else None
            if isinstance(judge, dict) and judge.get("rubric") == "pairwise":
                pair, reject = _choice_pair(prompt, by_id[record_id], judge.get("winner"), "judge-pairwise",
                                            {"position_consistent": judge.get("position_consistent")})
                (direct if pair else rejected).append(pair or reject)
                prompt.decided = True
                for candidate in prompt.candidates:  # decided here: not again by scores
                    if candidate.detail.get("id") == record_id:
                        candidate.score = None
    return direct, rejected


def _choice_pair(prompt: Prompt, record: Record, winner: str | None, ranked_by: str,
                 extra: dict[str, Any]) -> tuple[dict | None, dict | None]:
    a = next(c for c in prompt.candidates if c.detail.get("id") == record.id and c.source != "record:output_b")
    b = next((c for c in prompt.candidates if c.detail.get("id") == record.id and c.source == "record:output_b"),
             None)
    if b is None:
        return None, no_pair(prompt, NO_VERDICT, {"detail": "a choice on a record without meta.output_b"})
    if winner not in ("A", "B"):
        return None, no_pair(prompt, TIE if winner == "tie" else NO_VERDICT, {"winner": winner, **extra})
    chosen, other = (a, b) if winner == "A" else (b, a)
    return pair_row(prompt, chosen, other, 1.0, ranked_by, {"winner": winner, **extra}), None


def rank_by_human(prompts: Sequence[Prompt], records: Sequence[Record],
                  feedback: str | os.PathLike[str]) -> tuple[list[dict], list[dict]]:
    """feedback.jsonl: an A/B choice makes a pair; an edited output beats the original (margin 1);
    human scores rank the outputs of one instruction like judge scores do."""
    from ..judge import human_labels

    labels = human_labels(feedback)
    by_id = {r.id: r for r in records}
    direct, rejected = [], []
    for prompt in prompts:
        for record_id in dict.fromkeys(c.detail.get("id") for c in prompt.candidates):
            label = labels.get(record_id)
            if label is None:
                continue
            record = by_id[record_id]
            if label.choice is not None:
                pair, reject = _choice_pair(prompt, record, label.choice, "human-choice", {})
                (direct if pair else rejected).append(pair or reject)
                prompt.decided = True
            if label.output and label.output.strip() != record.output.strip():
                edited = Candidate(label.output, "human-edit", None, {"id": record_id})
                original = Candidate(record.output, f"record:{record.source}", None, {"id": record_id})
                direct.append(pair_row(prompt, edited, original, 1.0, "human-edit"))
                prompt.decided = True
            if label.score is not None:
                for candidate in prompt.candidates:
                    if candidate.detail.get("id") == record_id and candidate.source != "record:output_b":
                        candidate.score = float(label.score)
    return direct, rejected


# ---------------------------------------------------------------- the stage

def make_pairs(records: Sequence[Record], config: PairsConfig, out_dir: str | os.PathLike[str], *,
               llm_config: Any = None, judge_config: Any = None, judge_llm: Any = None,
               feedback_default: Path | None = None) -> dict[str, Any]:
    """Build pairs from ``records`` into ``out_dir``; returns the summary (also stats.json)."""
    config.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prompts = group_prompts(records)[: config.limit] if config.limit else group_prompts(records)
    needs_llm = bool(config.candidates or config.candidate_model or config.candidate_adapter)
    added = add_model_candidates(prompts, config, llm_config, out) if needs_llm else 0
    direct: list[dict] = []
    rejected: list[dict] = []
    if config.rank_by == "judge":
        rank_by_judge(prompts, config, judge_config, judge_llm, out)
    elif config.rank_by == "pairwise":
        rank_by_pairwise(prompts, judge_config, judge_llm, out)
    elif config.rank_by == "reward":
        rank_by_reward(prompts, str(config.reward_model))
    elif config.rank_by == "meta":
        direct, rejected = rank_by_meta(prompts, records)
    else:
        feedback = Path(config.feedback) if config.feedback else feedback_default
        if feedback is None or not feedback.is_file():
            raise ConfigError(f"no feedback file {feedback}: give --feedback FILE (sftdata review writes it)",
                              "--feedback")
        direct, rejected = rank_by_human(prompts, records, feedback)
    # a prompt decided by a choice (a pair or a tie) is not also ranked by scores unless it has some
    scored = [p for p in prompts if not p.decided or any(c.score is not None for c in p.candidates)]
    pairs, low = build_pairs(scored, config.min_margin, "human-score" if config.rank_by == "human"
                             else "judge-pairwise" if config.rank_by == "pairwise"
                             else "judge-score" if config.rank_by == "judge" else config.rank_by)
    pairs = direct + pairs
    rejected += low
    write_jsonl(out / "pairs.jsonl", pairs)
    write_jsonl(out / "rejected.jsonl", rejected)
    summary = {"prompts": len(prompts), "candidates_added": added, "pairs": len(pairs), "rejected": len(rejected),
               "rank_by": config.rank_by, "min_margin": config.min_margin,
               "reasons": _count(r["reason"] for r in rejected), "out": str(out)}
    if pairs and config.format:
        from ..export.preference import export_pairs
        from ..finetune.preference import pair_from_obj

        exported = export_pairs([_with_meta(pair_from_obj(p), p) for p in pairs], out / "export", config.format,
                                split=config.split, seed=config.seed)
        summary["export"] = {"splits": exported["splits"], "files": exported["files"]}
    (out / "stats.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def _with_meta(pair: Any, row: dict[str, Any]) -> Any:
    """The pair read back from its row, keeping margin / provenance / lang for the export's card."""
    pair.meta.update({k: row[k] for k in ("margin", "provenance", "lang") if k in row})
    return pair


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def pairs_from_files(paths: Sequence[str | os.PathLike[str]], config: PairsConfig, out_dir: str | os.PathLike[str],
                     **kwargs: Any) -> dict[str, Any]:
    if not paths:
        raise ConfigError("give at least one input file", "INPUTS")
    records = read_all(paths)
    feedback_default = Path(paths[0]).parent / "feedback.jsonl"
    return make_pairs(records, config, out_dir, feedback_default=feedback_default, **kwargs)
