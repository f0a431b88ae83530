"""The augment stage's settings: one dataclass of plain types (a YAML config is validated against it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import ConfigError, DataError
from .evol import EVOL_OPS, PARAPHRASE

RULE_OPS = ("rule:template", "rule:keywords")
OPS = EVOL_OPS + (PARAPHRASE,) + RULE_OPS
GROUPS = {"evol": EVOL_OPS, "rule": RULE_OPS, "all": OPS}
LANGS = ("auto", "en", "zh")


@dataclass
class AugmentConfig:
    """What ``sftdata augment`` does; each field is the CLI option of the same name."""

    ops: list[str] = field(default_factory=lambda: ["evol"])
    rounds: int = 1  # with 2 or more, the survivors of a round are augmented again
    lang: str = "auto"  # prompt language; "auto": each record's own (declared or detected)
    seed: int = 0
    limit: int | None = None  # augment only the first N input records (all of them are still compared)
    ops_per_record: int | None = None  # ops drawn per record and round (the paper: 1); None: every op
    keywords: list[str] = field(default_factory=list)  # for rule:keywords
    keywords_file: str | None = None  # one keyword or constraint per line
    rouge_threshold: float = 0.7  # ROUGE-L F above which a new instruction is a near-duplicate
    temperature: float = 0.7
    max_tokens: int = 512  # for answers
    rewrite_max_tokens: int = 256  # for rewritten instructions
    min_words: int = 3  # instruction length: more than min_words, at most max_words (Chinese: characters / 2)
    max_words: int = 150
    no_rule: list[str] = field(default_factory=list)  # filter rules to switch off (as ``sftdata filter``)

    def resolved_ops(self) -> list[str]:
        """The ops in order, groups ("evol", "rule", "all") expanded, duplicates dropped."""
        out: list[str] = []
        for value in self.ops:
            for name in (v.strip().lower() for v in value.split(",")):
                if not name:
                    continue
                if name in ("template", "keywords"):
                    name = f"rule:{name}"
                if name not in OPS and name not in GROUPS:
                    known = ", ".join(list(OPS) + list(GROUPS))
                    raise ConfigError(f"unknown operation '{name}' (known: {known})", "--ops")
                out += [op for op in GROUPS.get(name, (name,)) if op not in out]
        if not out:
            raise ConfigError("name at least one operation", "--ops")
        return out

    def validate(self) -> None:
        ops = self.resolved_ops()
        checks = [
            (self.rounds >= 1, "must be at least 1", "--rounds"),
            (self.lang in LANGS, f"must be one of {', '.join(LANGS)}, got {self.lang!r}", "--lang"),
            (self.limit is None or self.limit >= 1, "must be at least 1", "--limit"),
            (self.ops_per_record is None or 1 <= self.ops_per_record <= len(ops),
             f"must be between 1 and the number of operations ({len(ops)})", "--ops-per-record"),
            (0.0 < self.rouge_threshold <= 1.0, "must be within (0, 1]", "--rouge-threshold"),
            (self.temperature >= 0, "must not be negative", "--temperature"),
            (self.max_tokens >= 1, "must be at least 1", "--max-tokens"),
            (self.rewrite_max_tokens >= 1, "must be at least 1", "--rewrite-max-tokens"),
        ]
        for ok, message, option in checks:
            if not ok:
                raise ConfigError(message, option)
        from .filtering import filter_config

        filter_config(self).validate()  # --min-words, --max-words, --no-rule, as the filter stage
        has_keywords = bool(self.keywords or self.keywords_file)
        if "rule:keywords" in ops and not has_keywords:
            raise ConfigError("rule:keywords needs --keywords FILE or --keyword WORD", "--ops")
        if has_keywords and "rule:keywords" not in ops:
            raise ConfigError("keywords are only used by the rule:keywords operation; add it to --ops",
                              "--keyword" if self.keywords else "--keywords")

    def keyword_list(self) -> list[str]:
        """``keywords`` then the lines of ``keywords_file`` (blank lines and ``#`` comments skipped)."""
        words = [k.strip() for k in self.keywords if k.strip()]
        if self.keywords_file:
            words += read_keywords(self.keywords_file)
        return list(dict.fromkeys(words))


def read_keywords(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "no such keywords file")
    try:
        lines = path.read_bytes().decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(path, None, f"invalid UTF-8 at byte {exc.start}") from None
    words = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not words:
        raise DataError(path, None, "no keywords in file (one keyword or constraint per line)")
    return words
