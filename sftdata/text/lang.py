"""Language detection, deterministic: the script decides first, langdetect the rest.

CJK text is told apart by Han / kana / hangul (outside quotes, one CJK character against one Latin
word); short Latin text is taken as English since langdetect is unreliable on a few words; English
function words settle most longer English text; langdetect, with its own seeded factory, decides
the rest. Quoted material is left out ('Translate "你好" into English' is English).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from .cjk import CJK_LANGS, cjk_count, pattern

LANGS = ("en", "zh")  # languages with prompts and blacklists; detection knows many more

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
    kana = len(pattern("KANA_CHAR").findall(text)) if cjk else 0
    hangul = len(pattern("HANGUL_CHAR").findall(text)) if cjk else 0
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
    from importlib.util import find_spec

    # langdetect.detector_factory.PROFILES_DIRECTORY, found without importing langdetect (a config's
    # check runs this on `sftdata run --dry-run`, and the import would cost it tens of milliseconds)
    profiles = Path(find_spec("langdetect").origin).parent / "profiles"
    names = {p.name.split("-")[0] for p in profiles.iterdir() if not p.name.startswith(".")}
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


