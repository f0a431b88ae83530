"""The judge stage: an LLM judge (AI feedback) that scores records by a rubric.

Library API (stable: the pairs / reward-model / DPO stage builds on it)::

    from sftdata.judge import JudgeConfig, judge_records, judge_files
    summary = judge_records(records, JudgeConfig(rubric="score"), llm_config, "out/judge")

    # inside an async stage round, with an LLM from sftdata.llm.client.make_llm:
    from sftdata.judge import Candidates, score_candidates, compare_pairs, Pair
    judgements = await score_candidates(llm, [Candidates("Name a colour.", ["Red.", "Maybe."])], config)
    verdicts = await compare_pairs(llm, [Pair("Name a colour.", "Red.", "Maybe.")], config)

``meta.judge`` (what :func:`judge_records` adds to every record; :meth:`Judgement.to_dict`)::

    {"rubric": "self-instruct" | "score" | "pairwise",
     "score": float | None,       # self-instruct: A=4 B=3 C=2 D=1; score: 1-10; pairwise: 1 A wins,
                                  # 0 B wins, 0.5 tie. None when no verdict could be read: never a default
     "rating": "A".."D",          # self-instruct only
     "verdicts": {...},           # self-instruct: {"valid_instruction": bool, "appropriate_input": bool,
                                  #   "correct_output": bool} (a question the reply skipped is absent);
                                  # score: {"helpfulness": int, "correctness": int, "fit": int} when given;
                                  # pairwise: {"ab": "A"|"B"|"tie"|None, "ba": ...} in the ORIGINAL labels
     "winner": "A" | "B" | "tie", # pairwise only; orders that disagree are a tie
     "position_consistent": bool, # pairwise only: both orders named the same winner
     "rationale": str,            # the judge's short reason ("" when it gave none)
     "model": str,                # the judge model
     "lang": "en" | "zh",         # the prompt language
     "attempts": 1 | 2,           # 2: the first reply held no verdict and the stricter prompt was sent
     "raw": str,                  # only when no verdict was read: the last raw reply
     "error": str}                # only then: "unparsable" | "request_failed" | "budget"

A pairwise record holds response A in ``output`` and response B in ``meta.output_b``.

``feedback.jsonl`` (what the review page appends, one action per line; :mod:`sftdata.judge.feedback`)::

    {"time": "2026-12-04T17:00:00Z", "file": "accepted.jsonl", "index": 3, "id": "<record id>",
     "action": "keep" | "reject" | "score" | "edit" | "choose" | "undo",
     "score": int,            # action "score": 1-10
     "output": str,           # action "edit": the new output
     "choice": "A"|"B"|"tie", # action "choose" (pairs)
     "reviewer": str}         # optional
    The last action of each kind per record id wins; :func:`human_labels` folds the file into
    ``{id: HumanLabel(keep, score, output, choice)}``, which ``select`` and ``judge --gold`` read.
"""

from __future__ import annotations

from ..core.lazy import lazy_names
from ..core.stage import StageSpec
from .config import RUBRICS, JudgeConfig, judge_llm_config

# loaded on first use: the registry imports this package for SPEC alone (`sftdata --help`)
__getattr__, __dir__ = lazy_names(__name__, {
    **dict.fromkeys(("HumanLabel", "append_feedback", "human_labels", "read_feedback"), ".feedback"),
    **dict.fromkeys(("Candidates", "Judgement", "Pair", "PairVerdict"), ".judgement")})


def judge_records(*args, **kwargs):
    """Judge ``records`` into ``out_dir``; see :func:`sftdata.judge.api.judge_records`."""
    from .api import judge_records as run

    return run(*args, **kwargs)


def judge_files(*args, **kwargs):
    """Judge the records of files into ``out_dir``; see :func:`sftdata.judge.api.judge_files`."""
    from .api import judge_files as run

    return run(*args, **kwargs)


async def score_candidates(llm, items, config):
    """Judge each candidate response of each item; see :func:`sftdata.judge.api.score_candidates`."""
    from .api import score_candidates as run

    return await run(llm, items, config)


async def compare_pairs(llm, pairs, config):
    """Compare two responses in both orders; see :func:`sftdata.judge.api.compare_pairs`."""
    from .api import compare_pairs as run

    return await run(llm, pairs, config)


def _run(ctx, config):
    from .api import run_in_pipeline

    return run_in_pipeline(ctx, config)


def _estimate(config: JudgeConfig, lang: str, records: int) -> tuple[int, int, int, int]:
    from .estimate import estimate_judge

    guess = estimate_judge(records or 200, 600, config, lang)
    return guess["requests"], guess["prompt_tokens"], guess["completion_tokens"], records


SPEC = StageSpec(name="judge", config=JudgeConfig, run=_run, uses_llm=True, enabled_by_default=False,
                 estimate=_estimate,
                 help="LLM judge: score each record by a rubric (self-instruct, score, pairwise) into meta.judge",
                 summary_keys=("records", "judged", "unparsable", "mean_score", "seconds"))

__all__ = ["SPEC", "RUBRICS", "JudgeConfig", "judge_llm_config", "judge_records", "judge_files",
           "score_candidates", "compare_pairs", "Candidates", "Pair", "Judgement", "PairVerdict",
           "HumanLabel", "human_labels", "read_feedback", "append_feedback"]
