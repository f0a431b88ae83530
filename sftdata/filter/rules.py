"""The filter stage's named rules. Each rule's name is the ``reason`` written to rejected.jsonl.

Instruction rules, checked in this order by check_instruction:

    length               English: 3 < words <= 150 (len(text.split()), as Alpaca counts);
                         Chinese / Japanese / Korean: the same bounds (or --min-chars/--max-chars)
                         counted in CJK characters plus Latin words
    blacklist            a keyword a text-only model cannot act on (image, graph, file, map, draw,
                         plot, go to, video, audio, music, flowchart, diagram; 图片, 图像, 文件, 图表,
                         视频, 音频, 链接 ...): English words match whole, case-insensitive, Chinese ones
                         as substrings; lists in sftdata/data/blacklist_{en,zh}.txt, plus --blacklist
    format               starts with punctuation (an opening quote or bracket is fine); starts with
                         "Write a program" / "编写一个程序"; English text whose first character is not ASCII
    language             the detected language differs from the expected one (--lang, else the
                         record's own lang); skipped when neither is known

Instance rules (Self-Instruct's), checked by check_instance:

    empty_output         the output is empty or blank
    output_equals_input  the output repeats the (non-empty) input
    ends_with_colon      the input or the output ends with ":" / "：" (a cut-off generation)

Stage rules, applied by stage.filter_records:

    rouge                ROUGE-L F > threshold (0.7) against a kept instruction or an --against text
    duplicate            a kept record has the same instruction and input (another output for the
                         same prompt); records sharing only the instruction are one task's instances

Language detection (:func:`detect_lang`) is deterministic: the script decides first (CJK text by
Han / kana / hangul, short Latin text is taken as English since langdetect is unreliable on a few
words, English function words settle most longer English text), and langdetect, with its own
seeded factory, decides the rest.
"""

from __future__ import annotations

import re
import string
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..core.records import Record
from .config import CJK_LANGS, INSTANCE_RULES, INSTRUCTION_RULES, LANGS, RULES, STAGE_RULES, FilterConfig  # noqa: F401
from .tokenize import cjk_count, has_cjk, tokenize_cjk

__all__ = [
    "FilterConfig", "RULES", "INSTRUCTION_RULES", "INSTANCE_RULES", "STAGE_RULES", "LANGS",
    "check_instruction", "check_instance", "detect_lang", "is_cjk_text", "count_units", "known_langs",
]

_DATA = Path(__file__).resolve().parent.parent / "data"


# ---------------------------------------------------------------- scripts and language

_KANA_RE = re.compile("[\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff\uff66-\uff9d]")
_HANGUL_RE = re.compile("[\u1100-\u11ff\u3131-\u318e\uac00-\ud7a3]")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+")
_SHORT_WORDS = 6  # Latin text with fewer words: too short for langdetect
# quoted material is often in another language ('Translate "你好" into English'): judged without it
_QUOTED = re.compile('"[^"\n]*"|\u201c[^\u201d\n]*\u201d|\u2018[^\u2019\n]*\u2019|\u300c[^\u300d\n]*\u300d|'
                     '\u300e[^\u300f\n]*\u300f')
# words that mark English and are rare as words in other Latin-script languages
_ENGLISH = frozenset("""the and of to is are was were be been being this that these those what which who whom
whose how why when where with from for into about your you it its they them their there than then
would could should will shall can does did do has have had not but or an any some each every all
write give describe explain list make create provide find generate summarize translate tell""".split())


def _unquoted(text: str) -> str:
    rest = _QUOTED.sub(" ", text)
    return rest if any(ch.isalpha() for ch in rest) else text


def _letters(text: str) -> tuple[int, int, int, list[str], int]:
    """(CJK chars, kana, hangul, Latin words, other-script letters) of the text outside quotes."""
    text = _unquoted(text)
    cjk = cjk_count(text)
    latin = _LATIN_WORD.findall(text)
    other = 0
    if not text.isascii():
        covered = cjk + sum(map(len, latin))
        other = max(0, sum(1 for ch in text if ch.isalpha()) - covered)
    kana = len(_KANA_RE.findall(text)) if cjk else 0
    hangul = len(_HANGUL_RE.findall(text)) if cjk else 0
    return cjk, kana, hangul, latin, other


def _cjk_dominant(cjk: int, latin: list[str], other: int) -> bool:
    # a CJK character against a Latin word: "解释 Python 中 list 和 tuple 的区别" is Chinese,
    # "What does 加油 mean?" English
    return cjk > 0 and cjk >= max(len(latin), other)


def is_cjk_text(text: str) -> bool:
    """Mostly written in CJK characters (outside quotes, one character against one Latin word)."""
    cjk, _, _, latin, other = _letters(text)
    return _cjk_dominant(cjk, latin, other)


@lru_cache(maxsize=1)
def _detector_factory():
    # our own factory rather than langdetect's global one: a fixed seed without touching global state
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.seed = 0
    return factory


@lru_cache(maxsize=1)
def known_langs() -> frozenset[str]:
    """Language codes detect_lang can return (langdetect's, with zh-cn / zh-tw folded into zh)."""
    from langdetect.detector_factory import PROFILES_DIRECTORY

    names = {p.name.split("-")[0] for p in Path(PROFILES_DIRECTORY).iterdir() if not p.name.startswith(".")}
    return frozenset(names | set(LANGS) | set(CJK_LANGS))


def _langdetect(text: str) -> str:
    from langdetect.lang_detect_exception import LangDetectException

    detector = _detector_factory().create()
    detector.append(text)
    try:
        return detector.detect().split("-")[0]
    except LangDetectException:
        return "unknown"


def detect_lang(text: str) -> str:
    """"en", "zh", "ja", "ko", ... or "unknown" (no letters). Deterministic."""
    cjk, kana, hangul, latin, other = _letters(text)
    if _cjk_dominant(cjk, latin, other):
        if hangul * 2 > cjk:
            return "ko"
        if kana * 10 >= cjk:  # Japanese mixes kana into nearly every sentence; Chinese has none
            return "ja"
        return "zh"
    if not latin and not other:
        return "unknown"
    if len(latin) >= other:
        hits = sum(w.lower() in _ENGLISH for w in latin)
        if hits >= 2 and hits * 5 >= len(latin):
            return "en"
        if len(latin) < _SHORT_WORDS and (hits or all(w.isascii() for w in latin)):
            return "en"  # a few plain ASCII words: langdetect guesses at random there
    return _langdetect(_unquoted(text))


def count_units(text: str) -> tuple[int, str]:
    """The length rule's measure: ("words", whitespace-separated) or ("chars", CJK characters + Latin words)."""
    if is_cjk_text(text):
        return len(tokenize_cjk(text)), "chars"
    return len(text.split()), "words"


# ---------------------------------------------------------------- instruction rules

@lru_cache(maxsize=8)
def _blacklist(extra: tuple[str, ...]) -> tuple[re.Pattern | None, tuple[str, ...]]:
    """(regex for whole-word Latin entries, substrings for CJK entries)."""
    words: list[str] = list(extra)
    for name in ("blacklist_en.txt", "blacklist_zh.txt"):
        for line in (_DATA / name).read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                words.append(line)
    latin = sorted({w.lower() for w in words if not has_cjk(w)}, key=len, reverse=True)
    cjk = tuple(sorted({w for w in words if has_cjk(w)}))
    # ASCII word boundaries: \b would see no boundary between 画 and "graph" (both are \w)
    pattern = None
    if latin:
        alternatives = "|".join(r"\s+".join(map(re.escape, w.split())) for w in latin)
        pattern = re.compile(rf"(?<![a-z0-9])(?:{alternatives})(?![a-z0-9])")
    return pattern, cjk


def _blacklisted(text: str, config: FilterConfig) -> str | None:
    pattern, cjk_words = _blacklist(config.blacklist)
    if pattern is not None:
        found = pattern.search(text.lower())
        if found:
            return found.group(0)
    return next((w for w in cjk_words if w in text), None)


# an opening quote or bracket may start an instruction: "《红楼梦》的作者是谁？", '"Carpe diem" means?'
_OPENERS = set("\"'([{<`") | {"\u201c", "\u2018", "\u300a", "\u300c", "\u300e", "\u3010", "\uff08", "\u3008"}
_PROGRAM_PREFIXES = ("write a program", "编写一个程序", "写一个程序", "编写程序", "写程序")


def _format_problem(text: str, lang: str | None) -> dict[str, Any] | None:
    stripped = text.lstrip()
    if not stripped:
        return {"rule": "empty"}
    first = stripped[0]
    if (first in string.punctuation or unicodedata.category(first).startswith("P")) and not _opener(first):
        return {"rule": "starts_with_punctuation", "char": first}
    if stripped.lower().startswith(_PROGRAM_PREFIXES):
        return {"rule": "write_a_program"}
    # Alpaca's "first character not ASCII" for English, after any opening quote; a text in a CJK
    # script is left to the language rule, which names the problem better
    start = next((ch for ch in stripped if not _opener(ch)), "")
    if start and not start.isascii() and not is_cjk_text(stripped):
        if lang == "en" or (lang is None and detect_lang(stripped) == "en"):
            return {"rule": "non_ascii_start", "char": start}
    return None


def _opener(ch: str) -> bool:
    return ch in _OPENERS or unicodedata.category(ch) in ("Ps", "Pi")


def _expected(config: FilterConfig, expected_lang: str | None) -> str | None:
    if config.lang:
        return config.lang
    lang = expected_lang.split("-")[0].lower() if expected_lang else None
    return lang if lang in known_langs() else None  # a record's "unknown" or "English" sets nothing


def check_instruction(text: str, config: FilterConfig,
                      expected_lang: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """The first failing instruction rule as (reason, detail), or None.

    ``expected_lang``: the record's declared language, used when ``config.lang`` is not set.
    """
    lang = _expected(config, expected_lang)
    if config.enabled("length"):
        count, unit = count_units(text)
        low = config.min_words if unit == "words" or config.min_chars is None else config.min_chars
        high = config.max_words if unit == "words" or config.max_chars is None else config.max_chars
        if not low < count <= high:
            return "length", {"count": count, "unit": unit, "min_exclusive": low, "max": high}
    if config.enabled("blacklist"):
        word = _blacklisted(text, config)
        if word is not None:
            return "blacklist", {"word": word}
    if config.enabled("format"):
        problem = _format_problem(text, lang)
        if problem is not None:
            return "format", problem
    if config.enabled("language") and lang is not None:
        detected = detect_lang(text)
        if detected != lang:
            return "language", {"detected": detected, "expected": lang}
    return None


# ---------------------------------------------------------------- instance rules

def check_instance(record: Record, config: FilterConfig) -> tuple[str, dict[str, Any]] | None:
    """The first failing instance rule as (reason, detail), or None."""
    output, input_ = record.output.strip(), record.input.strip()
    if config.enabled("empty_output") and not output:
        return "empty_output", {}
    if config.enabled("output_equals_input") and input_ and output == input_:
        return "output_equals_input", {}
    if config.enabled("ends_with_colon"):
        for name, value in (("input", input_), ("output", output)):
            if value.endswith((":", "\uff1a")):
                return "ends_with_colon", {"field": name}
    return None


def describe_rules() -> str:
    """The rule list of the module docstring, for ``sftdata filter --help`` (click keeps each
    paragraph marked with \\b as it is)."""
    doc = __doc__ or ""
    paragraphs = doc[doc.index("Instruction rules"):doc.index("Language detection")].strip().split("\n\n")
    return "\n\n".join("\b\n" + p for p in paragraphs)
