"""What the pairs stage will ask of the LLM, for ``sftdata run --dry-run``: candidate requests (LLM
samples and other models, at the run's endpoint) and judge requests (one per candidate, or two per
candidate pair for ``pairwise``). Adapter candidates are generated here, never at the endpoint
(:func:`.stage.adapter_llm_config`): they are reported apart and not counted as requests or cost.
Arithmetic on the config, like every stage's estimate: replies use their whole ``max_tokens``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..estimate import CHARS_PER_TOKEN, tokens

CANDIDATE_PROMPT_CHARS = 600  # an instruction (+ input) as the seeds and generated records hold them
RECORD_CHARS = 600            # a record's own output, judged beside the generated candidates


def estimate(config: Any, lang: str, records: int, stages: dict[str, Any] | None = None
             ) -> tuple[int, int, int, int, dict[str, Any]]:
    """(requests, prompt tokens, completion tokens, records made: 0, detail). ``stages``: the run's
    sections (None: off), which decide the candidates the stage adds in ``sftdata run`` (the base's
    sample and the SFT adapter's answer when a finetune stage runs and no source is named)."""
    from ..judge import JudgeConfig
    from ..judge.estimate import estimate_judge

    stages = stages or {}
    prompts = min(records, config.limit) if config.limit is not None else records
    samples, models, adapters = config.candidates, len(config.candidate_model), len(config.candidate_adapter)
    if stages.get("finetune") is not None and not (samples or models or adapters):
        samples, adapters = 1, 1  # what pairs.step adds: one base sample, one SFT adapter answer
    endpoint = prompts * (samples + models)
    local = prompts * adapters
    per_prompt = 1 + samples + models + adapters  # the record's own output counts (one record per prompt)
    judge_requests = judge_prompt = judge_completion = 0
    if config.rank_by in ("judge", "pairwise"):
        judge_config = stages.get("judge") or JudgeConfig()
        rubric = "pairwise" if config.rank_by == "pairwise" else config.rubric
        games = per_prompt * (per_prompt - 1) // 2 if rubric == "pairwise" else per_prompt
        generated_chars = config.max_tokens * CHARS_PER_TOKEN.get(lang, 4.0)
        reply_chars = (RECORD_CHARS + (per_prompt - 1) * generated_chars) / per_prompt
        guess = estimate_judge(prompts * games, reply_chars, replace(judge_config, rubric=rubric), lang)
        judge_requests, judge_prompt, judge_completion = (guess["requests"], guess["prompt_tokens"],
                                                          guess["completion_tokens"])
    requests = endpoint + judge_requests
    prompt_tokens = endpoint * tokens(CANDIDATE_PROMPT_CHARS, lang) + judge_prompt
    completion = endpoint * config.max_tokens + judge_completion
    detail = {"prompts": prompts, "candidates_per_prompt": per_prompt, "candidate_requests": endpoint,
              "local_adapter_generations": local, "judge_requests": judge_requests, "rank_by": config.rank_by}
    return requests, prompt_tokens, completion, 0, detail

