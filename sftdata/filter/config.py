"""The filter stage's settings (FilterConfig) and the names of its rules; no heavy imports."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import ConfigError
from ..core.settings import setting
from ..text.lang import CJK_LANGS, LANGS, known_langs  # noqa: F401 (re-exported)

INSTRUCTION_RULES = ("length", "blacklist", "format", "language")
INSTANCE_RULES = ("empty_output", "output_equals_input", "ends_with_colon")
STAGE_RULES = ("rouge", "duplicate")
RULES = ("rouge", *INSTRUCTION_RULES, *INSTANCE_RULES, "duplicate")
# the keys of filter.tokenize.TOKENIZERS, in its order (named here so that checking a config does not
# import the tokenizers and compile their patterns; tests/unit/test_cli_lazy.py keeps the two equal)
TOKENIZERS = ("rouge", "cjk", "auto")


@dataclass
class FilterConfig:
    """Settings of the filter stage (CLI options, or the ``filter:`` section of a pipeline config)."""

    rouge_threshold: float = setting(0.7, help="Reject an instruction whose ROUGE-L F against a kept one is "
                                               "above this (0.7 itself is kept).")
    rouge_tokenizer: str = setting("auto", choices=("auto", "rouge", "cjk"),
                                   help="rouge: rouge-score's tokens exactly (Chinese gets none); cjk: one token "
                                        "per CJK character; auto: per text, identical to rouge on text without "
                                        "CJK characters.")
    rouge_blocking: str = setting("exact", choices=("exact", "lsh"),
                                  help="exact: every decision is rouge-score's (prefix-filter index). lsh: "
                                       "MinHash-LSH candidates, each verified with exact ROUGE-L: bounded cost per "
                                       "instruction at tens of millions, a measured recall below 1 "
                                       "(docs/cluster.md).")
    lsh_bands: int = setting(32, help="With --rouge-blocking lsh: LSH bands (more: higher recall, more candidates).")
    lsh_rows: int = setting(6, help="With --rouge-blocking lsh: MinHash rows per band (more: fewer false "
                                    "candidates, lower recall).")
    lang: str | None = setting(None, help="Expected language (en, zh, ...): others are rejected. Default: each "
                                          "record's own lang field; no language rule for records without one.")
    min_words: int = setting(3, help="An instruction needs more than this many words (CJK text: characters).")
    max_words: int = setting(150, help="... and at most this many.")
    min_chars: int | None = setting(None, help="CJK text: a separate lower bound in characters "
                                               "(default: --min-words).")
    max_chars: int | None = setting(None, help="CJK text: a separate upper bound in characters "
                                               "(default: --max-words).")
    disabled: frozenset[str] = setting(frozenset, option="--no-rule", metavar="NAME",
                                       help=f"Switch a rule off (repeatable or comma-separated): {', '.join(RULES)}.")
    blacklist: tuple[str, ...] = setting(tuple, metavar="WORD",
                                         help="Another blacklisted word or phrase (repeatable or comma-separated).")
    instance_rules: bool | None = setting(None, flag="--instance-rules/--no-instance-rules",
                                          help="Apply the instance rules (empty_output, output_equals_input, "
                                               "ends_with_colon). Default: yes, unless no input record has an "
                                               "output yet.")

    def __post_init__(self) -> None:
        self.disabled = frozenset(self.disabled)
        self.blacklist = tuple(self.blacklist)
        if isinstance(self.lang, str):
            self.lang = self.lang.lower()

    def validate(self) -> FilterConfig:
        if not 0.0 <= self.rouge_threshold <= 1.0:
            raise ConfigError(f"must be within [0, 1], got {self.rouge_threshold}", "--rouge-threshold")
        if self.rouge_tokenizer not in TOKENIZERS:
            raise ConfigError(f"must be one of {', '.join(TOKENIZERS)}, got {self.rouge_tokenizer!r}",
                              "--rouge-tokenizer")
        if self.rouge_blocking not in ("exact", "lsh"):
            raise ConfigError(f"must be exact or lsh, got {self.rouge_blocking!r}", "--rouge-blocking")
        for name in ("lsh_bands", "lsh_rows"):
            if getattr(self, name) < 1:
                raise ConfigError(f"must be at least 1, got {getattr(self, name)}", f"--{name.replace('_', '-')}")
        if self.lang is not None and self.lang not in known_langs():
            raise ConfigError(f"unknown language {self.lang!r} (e.g. {', '.join(LANGS)})", "--lang")
        for name, low, high in (("words", self.min_words, self.max_words), ("chars", self.min_chars, self.max_chars)):
            if low is not None and low < 0:
                raise ConfigError(f"must not be negative, got {low}", f"--min-{name}")
            if high is not None and high < 1:
                raise ConfigError(f"must be at least 1, got {high}", f"--max-{name}")
            if low is not None and high is not None and low >= high:
                raise ConfigError(f"must be above --min-{name} ({low}), got {high}", f"--max-{name}")
        unknown = sorted(self.disabled - set(RULES))
        if unknown:
            raise ConfigError(f"unknown rule {', '.join(unknown)} (rules: {', '.join(RULES)})", "--no-rule")
        if any(not isinstance(w, str) or not w.strip() for w in self.blacklist):
            raise ConfigError("blacklisted words must be non-empty strings", "--blacklist")
        return self

    def enabled(self, rule: str) -> bool:
        return rule not in self.disabled
