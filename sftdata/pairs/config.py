"""The pairs stage's settings, declared once with :func:`sftdata.core.settings.setting`."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import ConfigError
from ..core.settings import setting
from ..export.config import PREFERENCE_FORMATS

RANK_BY = ("judge", "pairwise", "reward", "meta", "human")


@dataclass
class PairsConfig:
    """What ``sftdata pairs`` (and the ``pairs`` stage of ``sftdata run``) does."""

    rank_by: str = setting("judge", choices=RANK_BY,
                           help="judge: an LLM judge scores each candidate 1-10; pairwise: the judge compares "
                                "candidates two at a time, in both orders (disagreement = tie); reward: a reward "
                                "model (--reward-model); meta: the scores already in meta.judge (score, reward or "
                                "a pairwise verdict), no requests; human: a review page's feedback.jsonl "
                                "(A/B choices, score differences, edits).")
    candidates: int = setting(0, help="Sample N more responses per instruction from the LLM (the usual LLM "
                                      "options) besides the records' own outputs.")
    candidate_model: list[str] = setting(list, help="Also one response from each of these models (same endpoint).",
                                         metavar="MODEL")
    candidate_adapter: list[str] = setting(list, path=True, help="Also one response from the embedded/local base with each "
                                                      "of these adapters (e.g. the SFT adapter against the base).",
                                           metavar="DIR")
    temperature: float = setting(0.9, help="Sampling temperature of the extra candidates.")
    max_tokens: int = setting(512, help="Longest candidate response, in tokens.")
    min_margin: float = setting(0.0, help="A pair whose chosen-minus-rejected score is below this goes to "
                                          "rejected.jsonl (reason margin_below_min); an exact tie always does.")
    reward_model: str | None = setting(None, path=True, help="--rank-by reward: a `sftdata finetune --method reward` directory.",
                                       metavar="DIR")
    feedback: str | None = setting(None, path=True, help="--rank-by human: the review page's feedback.jsonl (default: the "
                                              "one beside the first input).", metavar="FILE")
    rubric: str = setting("score", choices=("score", "self-instruct"),
                          help="The judge rubric for --rank-by judge.")
    format: list[str] = setting(lambda: ["trl"], choices=PREFERENCE_FORMATS,
                                help="Preference exports written beside pairs.jsonl (export/<format>/<split>.jsonl, "
                                     "dataset_info.json, README.md).", metavar="FORMAT")
    split: str = setting("0.9,0.05,0.05", help="train,validation,test fractions of the exports (leak-free by prompt).")
    seed: int = setting(0, help="Sampling seed of the candidates and of the export split.")
    limit: int | None = setting(None, help="Only the first N instructions.")

    def validate(self) -> None:
        checks = [
            (self.rank_by in RANK_BY, f"must be one of {', '.join(RANK_BY)}", "--rank-by"),
            (self.candidates >= 0, "must not be negative", "--candidates"),
            (self.temperature >= 0, "must not be negative", "--temperature"),
            (self.min_margin >= 0, "must not be negative", "--min-margin"),
            (self.rank_by != "reward" or bool(self.reward_model), "--rank-by reward needs --reward-model DIR",
             "--reward-model"),
            (self.limit is None or self.limit >= 1, "must be at least 1", "--limit"),
        ]
        for ok, message, option in checks:
            if not ok:
                raise ConfigError(message, option)
