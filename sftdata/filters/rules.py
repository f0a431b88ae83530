"""Named rules over instructions and instances. Each returns ``(reason, detail)`` or None.

Reasons, as written to ``rejected.jsonl`` (switch one off with ``--no-rule NAME``):

    length               too few or too many words (English) / characters / 2 (Chinese)
    blacklist            names something a text model cannot do (image, file, 视频, ...); data files
                         ``sftdata/data/blacklist_<lang>.txt`` plus ``FilterConfig.blacklist``
    format               starts with punctuation; "Write a program"; English text starting outside Latin script
    language             not in the language asked for (``--lang``)
    empty_output         an instance with no output
    output_equals_input  an instance whose output repeats its input
    ends_with_colon      an output ending in ":" (the model stopped before the answer)
    rouge                (the ROUGE-L novelty index, see ``rouge.py``)
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field

from langdetect import DetectorFactory, LangDetectException, detect

from ..errors import ConfigError
from ..paths import _PACKAGE
from ..records import Record

INSTRUCTION_RULES = ("length", "blacklist", "format", "language")
INSTANCE_RULES = ("empty_output", "output_equals_input", "ends_with_colon")
RULES = ("rouge", *INSTRUCTION_RULES, *INSTANCE_RULES)
LANGS = ("en", "zh")

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
SHORT_TEXT_LETTERS = 20  # below this many letters langdetect guesses; the script decides


@dataclass
class FilterConfig:
    rouge_threshold: float = 0.7  # drop when ROUGE-L F against a kept text is above this (0.7 itself is kept)
    rouge_tokenizer: str = "auto"  # auto | rouge | cjk
    lang: str | None = None  # en | zh: reject instructions in another language
    min_words: int = 3  # keep when words > min_words (English) or characters / 2 > min_words (Chinese)
    max_words: int = 150  # keep when words <= max_words
    disabled: frozenset[str] = frozenset()  # rule names switched off
    blacklist: list[str] = field(default_factory=list)  # extra words, any language

    def validate(self) -> None:
        if not 0.0 <= self.rouge_threshold <= 1.0:
            raise ConfigError(f"must be within [0, 1], got {self.rouge_threshold}", "--rouge-threshold")
        if self.rouge_tokenizer not in ("auto", "rouge", "cjk"):
            raise ConfigError(f"must be auto, rouge or cjk, got {self.rouge_tokenizer!r}", "--rouge-tokenizer")
        if self.lang is not None and self.lang not in LANGS:
            raise ConfigError(f"must be one of {', '.join(LANGS)}, got {self.lang!r}", "--lang")
        if self.min_words < 0:
            raise ConfigError("must not be negative", "--min-words")
        if self.max_words <= self.min_words:
            raise ConfigError(f"must be above --min-words ({self.min_words})", "--max-words")
        unknown = sorted(set(self.disabled) - set(RULES))
        if unknown:
            raise ConfigError(f"unknown rule '{unknown[0]}' (rules: {', '.join(RULES)})", "--no-rule")

    def on(self, rule: str) -> bool:
        return rule not in self.disabled


# ---------------------------------------------------------------- language

def script_of(text: str) -> str | None:
    """The language a text's script alone decides ("zh", "ja", "ko"), "latin", or None (no letters)."""
    han, kana, hangul = len(_HAN.findall(text)), len(_KANA.findall(text)), len(_HANGUL.findall(text))
    latin = len(_LATIN.findall(text))
    if kana and kana + han >= latin:
        return "ja"
    if hangul and hangul >= han and hangul >= latin:
        return "ko"
    # a Chinese sentence with a few Latin words (SQL, Python) is still Chinese
    if han and han >= latin / 4:
        return "zh"
    return "latin" if latin else None


def detect_lang(text: str) -> str:
    """"en", "zh", "ja", "ko", "fr", ... or "unknown"; deterministic.

    The script decides first: CJK scripts are told apart by their characters, which also avoids
    langdetect's habit of calling short simplified Chinese "ko". Latin text shorter than
    ``SHORT_TEXT_LETTERS`` letters is taken as English; longer text goes to langdetect (fixed seed).
    """
    script = script_of(text)
    if script is None:
        return "unknown"
    if script != "latin":
        return script
    if len(_LATIN.findall(text)) < SHORT_TEXT_LETTERS:
        return "en"
    return _langdetect(text)


@functools.lru_cache(maxsize=65536)
def _langdetect(text: str) -> str:
    DetectorFactory.seed = 0
    try:
        return detect(text).split("-")[0]
    except LangDetectException:
        return "unknown"


# ---------------------------------------------------------------- instruction rules

def length_units(text: str, lang: str) -> float:
    if lang in ("zh", "ja", "ko"):
        return sum(1 for c in text if not c.isspace()) / 2
    return len(text.split())


@functools.lru_cache(maxsize=4)
def _blacklist(lang: str) -> tuple[str, ...]:
    path = _PACKAGE / "data" / f"blacklist_{lang}.txt"
    if not path.exists():
        return ()
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def _blacklisted(text: str, extra: list[str]) -> str | None:
    lowered = text.lower()
    for word in (*_blacklist("en"), *extra):
        if re.search(rf"(?<![a-z0-9]){re.escape(word.lower())}(?![a-z0-9])", lowered):
            return word
    for word in _blacklist("zh"):
        if word in text:
            return word
    return None


def _format_problem(text: str, lang: str) -> str | None:
    first = text.lstrip()[:1]
    if not first:
        return "empty"
    if unicodedata.category(first).startswith("P") or unicodedata.category(first).startswith("S"):
        return "starts with punctuation"
    if re.match(r"\s*write a program", text, re.IGNORECASE) or text.lstrip().startswith("编写一个程序"):
        return 'starts with "Write a program"'
    if lang == "en" and first.isalpha() and not _LATIN.match(first):
        return "English text starting outside the Latin script"
    return None


def check_instruction(text: str, config: FilterConfig) -> tuple[str, dict] | None:
    """The first of length, blacklist, format, language that ``text`` fails, with details."""
    lang = detect_lang(text)
    if config.on("length"):
        units = length_units(text, lang)
        if not config.min_words < units <= config.max_words:
            return "length", {"length": units, "min_exclusive": config.min_words, "max": config.max_words}
    if config.on("blacklist"):
        word = _blacklisted(text, config.blacklist)
        if word:
            return "blacklist", {"word": word}
    if config.on("format"):
        problem = _format_problem(text, config.lang or lang)
        if problem:
            return "format", {"problem": problem}
    if config.on("language") and config.lang is not None and lang != config.lang:
        return "language", {"expected": config.lang, "detected": lang}
    return None


# ---------------------------------------------------------------- instance rules

def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).lower() == " ".join(b.split()).lower()


def check_instance(record: Record, config: FilterConfig) -> tuple[str, dict] | None:
    output = record.output.strip()
    if config.on("empty_output") and not output:
        return "empty_output", {}
    if config.on("output_equals_input") and record.input.strip() and _same(output, record.input):
        return "output_equals_input", {}
    if config.on("ends_with_colon") and output.endswith((":", "：")):
        return "ends_with_colon", {"tail": output[-40:]}
    return None
