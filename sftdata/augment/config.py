"""The augment stage's settings: one dataclass of plain types (a YAML config is validated against it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ConfigError, DataError
from ..core.settings import click_path, setting
from ..filter.config import RULES, FilterConfig

# the operations (evol.py's rewrites, a paraphrase, the rules) are named here, without importing evol's
# patterns: `sftdata --help` and `sftdata run --dry-run` import this module
EVOL_OPS = ("constraints", "deepen", "concretize", "reasoning", "complicate-input", "breadth")
PARAPHRASE = "paraphrase"
RULE_OPS = ("rule:template", "rule:keywords")
OPS = EVOL_OPS + (PARAPHRASE,) + RULE_OPS
GROUPS = {"evol": EVOL_OPS, "rule": RULE_OPS, "all": OPS}
LANGS = ("auto", "en", "zh")


@dataclass
class AugmentConfig:
    """What ``sftdata augment`` does; each field is the CLI option of the same name."""

    ops: list[str] = setting(lambda: ["evol"], cli=False, metavar="OPS",
                             help=f"Operations: {', '.join(OPS)}; groups: evol, rule, all.")
    rounds: int = setting(1, help="Rounds of augmentation: from round 2 on, the survivors of the previous round "
                                  "evolve again.")
    lang: str = setting("auto", choices=LANGS, help="Prompt language; auto: each record's own (declared, else "
                                                    "detected).")
    seed: int = setting(0, help="Seed of every random choice and request.")
    limit: int | None = setting(None, help="Augment only the first N input records (all of them are still "
                                           "compared).")
    ops_per_record: int | None = setting(None, help="Draw this many of the operations for each record and round "
                                                    "(Evol-Instruct draws 1). Default: every operation.")
    keywords: list[str] = setting(list, option="--keyword", metavar="WORD", split=False,
                                  help="rule:keywords: a keyword (repeatable).")
    keywords_file: str | None = setting(None, option="--keywords", path=True, click_type=click_path(dir_okay=False),
                                        help="rule:keywords: a file with one keyword per line; a line that ends "
                                             "like a sentence (\"Answer in under 100 words.\") is a constraint, "
                                             "appended as it is.")
    rouge_threshold: float = setting(0.7, help="A new instruction whose ROUGE-L F against any input or accepted "
                                               "instruction is above this is a near-duplicate and rejected "
                                               "(complicate-input: instruction and input together). Recast "
                                               "templates and short keywords often are: raise it to keep more of "
                                               "them.")
    temperature: float = setting(0.7, help="Sampling temperature.")
    max_tokens: int = setting(512, help="Longest answer, in tokens.")
    rewrite_max_tokens: int = setting(256, help="Longest rewritten instruction, in tokens.")
    min_words: int = setting(3, help="Shortest new instruction (words; Chinese: characters / 2).")
    max_words: int = setting(150, help="Longest new instruction.")
    no_rule: list[str] = setting(list, metavar="NAME",
                                 help=f"Switch a filter rule off for new records (repeatable or comma-separated): "
                                      f"{', '.join(RULES)}.")

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
        self.filter_config().validate()  # --min-words, --max-words, --no-rule, as the filter stage
        has_keywords = bool(self.keywords or self.keywords_file)
        if "rule:keywords" in ops and not has_keywords:
            raise ConfigError("rule:keywords needs --keywords FILE or --keyword WORD", "--ops")
        if has_keywords and "rule:keywords" not in ops:
            raise ConfigError("keywords are only used by the rule:keywords operation; add it to --ops",
                              "--keyword" if self.keywords else "--keywords")

    def filter_config(self) -> FilterConfig:
        """The filter stage's settings for new records; the expected language is given per record."""
        return FilterConfig(rouge_threshold=self.rouge_threshold, rouge_tokenizer="auto", lang=None,
                            min_words=self.min_words, max_words=self.max_words, disabled=frozenset(self.no_rule))

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
