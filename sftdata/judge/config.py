"""The judge stage's settings, declared once with :func:`sftdata.core.settings.setting`."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from ..core.errors import ConfigError
from ..core.settings import setting

RUBRICS = ("self-instruct", "score", "pairwise")
LANGS = ("auto", "en", "zh")
# environment fallbacks of the judge's own endpoint (then the generic OPENAI_* / SFTDATA_MODEL ones)
ENV_MODEL, ENV_BASE_URL, ENV_API_KEY = "SFTDATA_JUDGE_MODEL", "SFTDATA_JUDGE_BASE_URL", "SFTDATA_JUDGE_API_KEY"


@dataclass
class JudgeConfig:
    """What ``sftdata judge`` (and the ``judge`` stage of ``sftdata run``) does."""

    rubric: str = setting("score", choices=RUBRICS,
                          help="self-instruct: the paper's three review questions and its A-D rating; "
                               "score: an integer 1-10 (helpfulness, correctness, fit), AlpaGasus-style; "
                               "pairwise: which of two responses is better, asked in both orders.")
    lang: str = setting("auto", choices=LANGS,
                        help="Prompt language; auto: each record's own (declared, else detected).")
    judge_model: str | None = setting(None, help="The judge's model name (default: --model). "
                                                 f"[env: {ENV_MODEL}]")
    judge_base_url: list[str] = setting(list, help="The judge's endpoint (default: --base-url; none at all: the "
                                                   f"embedded model). [env: {ENV_BASE_URL}]", metavar="URL")
    temperature: float = setting(0.0, help="Judge sampling temperature (0: the same reply every time).")
    max_tokens: int = setting(512, help="Longest judge reply, in tokens (reasoning models need more).")
    retry_unparsable: bool = setting(True, help="Ask once more, with a stricter instruction, when a reply "
                                                "holds no verdict (then the raw text is recorded, no score).")
    seed: int = setting(0, help="Request seed.")
    limit: int | None = setting(None, help="Judge only the first N records.")
    gold: str | None = setting(None, path=True, help="Human-labelled records (labels in meta.human, or in a feedback.jsonl "
                                          "beside FILE from `sftdata review`): judge them and print agreement "
                                          "(calibration.json).",
                               metavar="FILE")

    def validate(self) -> None:
        checks = [
            (self.rubric in RUBRICS, f"must be one of {', '.join(RUBRICS)}, got {self.rubric!r}", "--rubric"),
            (self.lang in LANGS, f"must be one of {', '.join(LANGS)}, got {self.lang!r}", "--lang"),
            (self.temperature >= 0, "must not be negative", "--temperature"),
            (self.max_tokens >= 16, "must be at least 16", "--max-tokens"),
            (self.limit is None or self.limit >= 1, "must be at least 1", "--limit"),
        ]
        for ok, message, option in checks:
            if not ok:
                raise ConfigError(message, option)


def judge_llm_config(config: JudgeConfig, generic, api_key: str | None = None):
    """The judge's :class:`~sftdata.llm.client.LLMConfig`: ``generic`` (the usual LLM options) with the
    judge's own model / endpoint / key on top. Precedence: ``judge_*`` setting > ``SFTDATA_JUDGE_*``
    environment > the generic option. The generic API key is reused only when the judge talks to the
    generic endpoint (a key is never sent to a host it was not given for)."""
    model = config.judge_model or os.environ.get(ENV_MODEL) or None
    urls = list(config.judge_base_url) or os.environ.get(ENV_BASE_URL, "").replace(",", " ").split()
    key = api_key or os.environ.get(ENV_API_KEY) or None
    resolved = replace(generic)
    if urls:
        if key is None and urls == list(generic.base_urls):
            key = generic.api_key  # same endpoint: its key; another host never gets it
        resolved = replace(resolved, base_urls=urls, api_key=key, model=model or generic.model)
    elif key is not None:
        resolved = replace(resolved, api_key=key)
    if model:
        resolved = replace(resolved, model=model)
    resolved.validate()
    return resolved
